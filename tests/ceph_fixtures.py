"""The ``ceph_fixtures`` fixture: Debian's Ceph dashboards and alert rules, installed by
pipelines/ci/install-ceph-fixtures.sh if missing.

They are real dashboards and rules that nobody on the team wrote, so ``usage`` meets Grafana JSON as
it exists. When they cannot be installed the tests that read them fail in CI (``CI`` set) and skip
elsewhere, saying what to run.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

INSTALL_SCRIPT = REPO / "pipelines" / "ci" / "install-ceph-fixtures.sh"
# Where the packages put them (dpkg -L ceph-grafana-dashboards ceph-prometheus-alerts).
DASHBOARDS = Path("/etc/grafana/dashboards/ceph-dashboard")
ALERTS = Path("/etc/prometheus/ceph/ceph_default_alerts.yml")

_INSTALL_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class CephFixtures:
    dashboards: Path  # a directory of Grafana dashboard JSON
    alerts: Path  # a Prometheus rule file


def _present() -> bool:
    return ALERTS.is_file() and DASHBOARDS.is_dir() and any(DASHBOARDS.glob("*.json"))


@pytest.fixture(scope="session", name="ceph_fixtures")
def ceph_fixtures_fixture() -> CephFixtures:
    if _present():
        return CephFixtures(DASHBOARDS, ALERTS)
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
    if _present():
        return CephFixtures(DASHBOARDS, ALERTS)
    message = f"the Ceph dashboards are not installed and {command} could not install them ({outcome}); run {command}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
