from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONTRACTS = REPO / "contracts"
EXAMPLES = sorted(CONTRACTS.glob("*.yaml"))
BROKEN = REPO / "tests" / "contracts" / "broken"
# A fixed "today" keeps the example contracts' shim expiry out of the tests' way.
TODAY = date(2026, 11, 22)


def run_cli(
    *args: str, cwd: Path = REPO, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the command line the way a user does: a separate process, real exit code."""
    return subprocess.run(
        [sys.executable, "-m", "otel_contract", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def git(cwd: Path, *args: str, when: str | None = None) -> str:
    """Run git in a test repository with a fixed identity (and commit date ``when``, YYYY-MM-DD)."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}
    if when:
        env |= {"GIT_AUTHOR_DATE": f"{when}T12:00:00+00:00", "GIT_COMMITTER_DATE": f"{when}T12:00:00+00:00"}
    result = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a contract file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write
