"""The ``promtool`` fixture: the path of a real promtool, installed by pipelines/ci/install-promtool.sh if missing.

When promtool cannot be installed the tests that compare against it fail in CI (``CI`` set: a parity
test that silently skips would let ``validate`` drift from promtool) and skip elsewhere, saying what
to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO

INSTALL_SCRIPT = REPO / "pipelines" / "ci" / "install-promtool.sh"

# apt-get update and a package install over a slow mirror; bounded so a hung mirror fails the session.
_INSTALL_TIMEOUT_SECONDS = 900


@pytest.fixture(scope="session", name="promtool")
def promtool_fixture() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    command = f"bash {INSTALL_SCRIPT.relative_to(REPO)}"
    try:
        result = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)],
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
    found = shutil.which("promtool")
    if found:
        return found
    message = f"promtool is not installed and {command} could not install it ({outcome}); run {command}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
