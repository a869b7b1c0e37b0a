"""Where contract files are read from: the working tree, or a git revision (``git:REF:PATH``).

The loader follows ``include:`` through the same source as the file that includes it, so
``git:origin/main:contracts/ecommerce.yaml`` merges ``base/org.yaml`` as it was on ``origin/main``,
not as it is in the working tree.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from otel_contract.contract.yaml_source import MAX_YAML_BYTES

GIT_PREFIX = "git:"

# `git show` of one blob; bounded so that a hung git (a lock, a credential prompt) fails the command.
_GIT_TIMEOUT_SECONDS = 60


class ContractFileError(Exception):
    """A contract file or git revision cannot be read; the message says which and why."""


class ContractFiles(Protocol):
    """Read access to the files a contract and its includes live in."""

    def read_bytes(self, path: Path) -> bytes: ...

    def is_file(self, path: Path) -> bool: ...

    def display(self, path: Path) -> str:
        """How findings name ``path``."""
        ...


class WorkingTree:
    """Files on disk, named relative to the current directory."""

    def read_bytes(self, path: Path) -> bytes:
        try:
            with path.open("rb") as file:
                # Read one byte past the YAML limit: a 2 GB file is refused without being read whole.
                data = file.read(MAX_YAML_BYTES + 1)
        except OSError as error:
            raise ContractFileError(f"cannot read contract: {error.strerror or error}") from None
        if len(data) > MAX_YAML_BYTES:
            raise ContractFileError(f"larger than {MAX_YAML_BYTES // 2**20} MiB, the most a YAML input may be")
        return data

    def is_file(self, path: Path) -> bool:
        return path.is_file()

    def display(self, path: Path) -> str:
        try:
            return os.path.relpath(path)
        except ValueError:  # another drive on Windows
            return str(path)


@dataclass(frozen=True, slots=True)
class GitRevision:
    """Files as they are at ``ref`` in the repository whose top level is ``toplevel``."""

    ref: str
    toplevel: Path

    def _object(self, path: Path) -> str:
        return f"{self.ref}:{path.relative_to(self.toplevel).as_posix()}"

    def read_bytes(self, path: Path) -> bytes:
        try:
            relative = self._object(path)
        except ValueError:
            raise ContractFileError(f"{path} is outside the git repository at {self.toplevel}") from None
        return run_git(self.toplevel, "show", relative)

    def is_file(self, path: Path) -> bool:
        try:
            kind = run_git(self.toplevel, "cat-file", "-t", self._object(path))
        except (ValueError, ContractFileError):
            return False
        return kind.strip() == b"blob"

    def display(self, path: Path) -> str:
        try:
            return f"{GIT_PREFIX}{self._object(path)}"
        except ValueError:
            return str(path)


def run_git(cwd: Path, *args: str) -> bytes:
    """The output of ``git ARGS`` in ``cwd``; ``ContractFileError`` with git's last line of complaint."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise ContractFileError("git is not installed (needed for git:REF:PATH)") from None
    except subprocess.TimeoutExpired:
        raise ContractFileError(f"git {' '.join(args)} did not finish in {_GIT_TIMEOUT_SECONDS} s") from None
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ContractFileError(
            reason[-1].removeprefix("fatal: ") if reason else f"git {' '.join(args)} exited {result.returncode}"
        )
    return result.stdout


def resolve(spec: str) -> tuple[ContractFiles, Path]:
    """The source and the path that a command-line ``CONTRACT`` argument names.

    ``git:REF:PATH`` reads PATH as committed at REF, PATH taken relative to the current directory
    (like ``git show REF:./PATH``); anything else is a path in the working tree.
    Raises ``ContractFileError`` for a malformed spec or a directory that is not in a git repository.
    """
    if not spec.startswith(GIT_PREFIX):
        return WorkingTree(), Path(spec).resolve()
    ref, sep, path = spec[len(GIT_PREFIX) :].partition(":")
    if not sep or not ref or not path:
        raise ContractFileError(f"{spec}: expected git:REF:PATH, e.g. git:origin/main:contracts/ecommerce.yaml")
    cwd = Path.cwd()
    toplevel = Path(run_git(cwd, "rev-parse", "--show-toplevel").decode().strip())
    try:
        run_git(toplevel, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    except ContractFileError:
        raise ContractFileError(f"{spec}: {ref!r} is not a commit in the git repository at {toplevel}") from None
    target = (cwd / path).resolve()
    if not target.is_relative_to(toplevel.resolve()):
        raise ContractFileError(f"{spec}: {path} is outside the git repository at {toplevel}")
    return GitRevision(ref, toplevel.resolve()), target
