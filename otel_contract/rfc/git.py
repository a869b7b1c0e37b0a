"""The base a contract change is judged against: a git revision, and the contract version there."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from otel_contract.contract import ContractUnreadable
from otel_contract.contract.files import GIT_PREFIX, ContractFileError, resolve, run_git
from otel_contract.loading import lint_contract

DEFAULT_TARGET = "origin/main"


def default_ref(env: Mapping[str, str], cwd: Path) -> str:
    """Where the change will merge: ``origin/$CHANGE_TARGET`` in a Jenkins change request, else
    ``origin/main`` when it exists, else ``HEAD`` (uncommitted changes against the last commit)."""
    target = env.get("CHANGE_TARGET")
    if target:
        return f"origin/{target}"
    if _is_commit(cwd, DEFAULT_TARGET):
        return DEFAULT_TARGET
    return "HEAD"


def _is_commit(cwd: Path, ref: str) -> bool:
    try:
        run_git(cwd, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    except ContractFileError:
        return False
    return True


def spec(ref: str, path: str) -> str:
    """The ``git:REF:PATH`` argument that names ``path`` at ``ref``."""
    return f"{GIT_PREFIX}{ref}:{path}"


def exists_at(ref: str, path: str) -> bool:
    """Whether ``path`` (relative to the current directory) is a file at ``ref``; ``ContractFileError``
    when ``ref`` is not a commit or the directory is not in a git repository."""
    files, target = resolve(spec(ref, path))
    return files.is_file(target)


def version_at(ref: str, path: str) -> str | None:
    """The version of the contract at ``path`` as committed at ``ref``, None when it is not there (a new
    contract). ``ContractFileError`` says why it cannot be told."""
    files, target = resolve(spec(ref, path))
    if not files.is_file(target):
        return None
    try:
        result = lint_contract(target, files=files)
    except ContractUnreadable as error:
        reason = error.findings[0].message if error.findings else "unreadable"
        raise ContractFileError(f"{spec(ref, path)}: {reason}") from None
    if result.contract is None:
        raise ContractFileError(f"{spec(ref, path)} is not schema-valid, so its version cannot be compared")
    return result.contract.version


def author(cwd: Path) -> str | None:
    """``git config user.name``, the default author of a new RFC; None when it is not set."""
    try:
        name = run_git(cwd, "config", "user.name").decode("utf-8", "replace").strip()
    except ContractFileError:
        return None
    return name or None
