"""The ``promtool`` fixture: the path of a real promtool, installed by pipelines/ci/install-promtool.sh if missing
(failing in CI, skipping elsewhere: tests/system_packages.py)."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import REPO
from tests.system_packages import installed_by

INSTALL_SCRIPT = REPO / "pipelines" / "ci" / "install-promtool.sh"


@pytest.fixture(scope="session", name="promtool")
def promtool_fixture() -> str:
    return installed_by(INSTALL_SCRIPT, lambda: shutil.which("promtool"), "promtool is")
