from __future__ import annotations

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


def run_cli(*args: str, cwd: Path = REPO, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command line the way a user does: a separate process, real exit code."""
    return subprocess.run(
        [sys.executable, "-m", "otel_contract", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a contract file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write
