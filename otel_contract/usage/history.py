"""When each metric's ``since`` version was reached, from the git history of the file that defines it.

``since`` is a contract version, not a date. The date of version V of a file is the committer date of
the first commit (oldest first) in which the file's top-level ``version`` is V or later. A metric
without ``since``, a file outside a git work tree or without commits, or a history that never
reaches ``since`` gives no date, and such a metric is not an archive candidate (the report says
why). In a shallow clone the oldest commit stands in for older ones, so dates come out later and
fewer metrics are candidates, never more.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

from otel_contract.contract.files import ContractFileError, run_git
from otel_contract.contract.model import Contract
from otel_contract.contract.yaml_source import YamlSyntaxError, parse_yaml
from otel_contract.diff.version import SemanticVersion, version_key
from otel_contract.usage.analysis import Introduced

# Commits whose diff touches a top-level version line (the file's first commit adds it).
_VERSION_LINE = r"""^["']?version["']?[[:space:]]*:"""


def introduced_dates(contract: Contract, defining: Mapping[str, Path]) -> dict[str, Introduced]:
    dates: dict[str, Introduced] = {}
    histories: dict[Path, list[tuple[date, str]] | str] = {}
    for metric in contract.metrics:
        path = defining.get(metric.name)
        if metric.since is None:
            dates[metric.name] = Introduced(None, "it has no since")
        elif path is None:
            dates[metric.name] = Introduced(None, "the file that defines it was not found")
        else:
            resolved = path.resolve()
            if resolved not in histories:
                histories[resolved] = _version_history(resolved)
            dates[metric.name] = _reached(path, metric.since, histories[resolved])
    return dates


def _reached(path: Path, since: str, history: list[tuple[date, str]] | str) -> Introduced:
    wanted = _key(since)
    if wanted is None:
        return Introduced(None, f"since {since!r} is not a semantic version")
    if isinstance(history, str):
        return Introduced(None, history)
    for when, version in history:
        key = _key(version)
        if key is not None and key >= wanted:
            return Introduced(when, f"{path.name} reached {version} on {when.isoformat()}")
    return Introduced(None, f"no commit of {path.name} has version {since} or later")


def _key(version: str) -> SemanticVersion | None:
    try:
        return version_key(version)
    except ValueError:
        return None


def _version_history(path: Path) -> list[tuple[date, str]] | str:
    """(committer date, version) oldest first, or why there is no history."""
    log = _git(path.parent, "log", "--reverse", "--format=%H %cs", "-G", _VERSION_LINE, "--", path.name)
    if log is None:
        return f"{path.name} is not in a git work tree (or git is not installed)"
    history = []
    for line in log.splitlines():
        commit, _, day = line.partition(" ")
        text = _git(path.parent, "show", f"{commit}:./{path.name}")
        try:
            document, _ = parse_yaml(text or "", f"{commit}:{path.name}")
        except YamlSyntaxError:
            continue
        version = document.get("version") if isinstance(document, dict) else None
        if isinstance(version, str):
            history.append((date.fromisoformat(day), version))
    return history or f"{path.name} has no committed version in git"


def _git(cwd: Path, *args: str) -> str | None:
    try:
        return run_git(cwd, *args).decode("utf-8", "replace")
    except ContractFileError:
        return None
