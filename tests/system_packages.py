"""Fixtures on Debian packages that a project script installs when they are missing.

When the package cannot be installed, the tests that need it fail in CI (``CI`` set: a test that
silently skips would let the code drift from the real tool or data) and skip elsewhere, saying what
to run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import REPO

T = TypeVar("T")

# apt-get update and a package install over a slow mirror; bounded so a hung mirror fails the session.
_INSTALL_TIMEOUT_SECONDS = 900


def installed_by(script: Path, find: Callable[[], T | None], what: str) -> T:
    """What ``find`` finds, running ``script`` first when it finds nothing; fail (CI) or skip otherwise."""
    found = find()
    if found is not None:
        return found
    command = f"bash {script.relative_to(REPO)}"
    try:
        result = subprocess.run(
            ["bash", str(script)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_INSTALL_TIMEOUT_SECONDS,
            check=False,
        )
        outcome = f"exit {result.returncode}: {(result.stderr or result.stdout).strip()[-500:]}"
    except subprocess.TimeoutExpired:
        outcome = f"no answer within {_INSTALL_TIMEOUT_SECONDS} s"
    found = find()
    if found is not None:
        return found
    message = f"{what} not installed, and {command} did not change that ({outcome}); run {command}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
