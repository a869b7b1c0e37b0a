"""Reading dashboards and rule files from directories: the I/O around ``grafana`` and ``rules``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from otel_contract.contract.yaml_source import YamlSyntaxError, parse_yaml_documents
from otel_contract.usage.grafana import NotADashboard, scan_dashboard
from otel_contract.usage.model import Scan
from otel_contract.usage.rules import NotARuleFile, scan_rule_documents

DASHBOARD_SUFFIXES = (".json",)
RULE_SUFFIXES = (".yml", ".yaml")


class UsageInputError(Exception):
    """A directory that does not exist, or a file that cannot be read or parsed (exit 2)."""


def scan_files(dashboards: Sequence[str], rules: Sequence[str]) -> Scan:
    """Every dashboard (``*.json``) and rule file (``*.yml``, ``*.yaml``) under the given paths.

    A path may be a directory (searched recursively, in sorted order) or one file. JSON or YAML
    that is not a dashboard or rule file is skipped and listed in ``Scan.skipped``; a file that is
    not JSON/YAML at all raises ``UsageInputError`` naming the file and line.
    """
    scan = Scan()
    for path in _files(dashboards, DASHBOARD_SUFFIXES, "--dashboards"):
        scan += _dashboard(path)
    for path in _files(rules, RULE_SUFFIXES, "--rules"):
        scan += _rule_file(path)
    return scan


def _files(roots: Iterable[str], suffixes: tuple[str, ...], option: str) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        path = Path(root)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        else:
            raise UsageInputError(f"{option} {root}: no such file or directory")
    return found


def _text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageInputError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UsageInputError(f"{path}:{line}: not UTF-8") from None


def _dashboard(path: Path) -> Scan:
    try:
        document = json.loads(_text(path))
    except json.JSONDecodeError as error:
        raise UsageInputError(f"{path}:{error.lineno}:{error.colno}: not JSON: {error.msg}") from None
    except RecursionError:
        raise UsageInputError(f"{path}: not a dashboard: JSON nested too deeply to read") from None
    try:
        return scan_dashboard(document, str(path))
    except NotADashboard as error:
        return Scan(skipped=(str(error),))
    except RecursionError:
        raise UsageInputError(f"{path}: not a dashboard: panels nested too deeply to read") from None


def _rule_file(path: Path) -> Scan:
    try:
        documents = parse_yaml_documents(_text(path), str(path))
    except YamlSyntaxError as error:
        raise UsageInputError(f"{error.location}: not YAML: {error.reason}") from None
    try:
        return scan_rule_documents(documents, str(path))
    except NotARuleFile as error:
        return Scan(skipped=(str(error),))
