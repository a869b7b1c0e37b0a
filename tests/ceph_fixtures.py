"""The ``ceph_fixtures`` fixture: Debian's Ceph dashboards and alert rules, installed by
pipelines/ci/install-ceph-fixtures.sh if missing.

They are real dashboards and rules that nobody on the team wrote, so ``usage`` meets Grafana JSON as
it exists. When they cannot be installed the tests that read them fail in CI and skip elsewhere
(tests/system_packages.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.system_packages import installed_by

INSTALL_SCRIPT = REPO / "pipelines" / "ci" / "install-ceph-fixtures.sh"
# Where the packages put them (dpkg -L ceph-grafana-dashboards ceph-prometheus-alerts).
DASHBOARDS = Path("/etc/grafana/dashboards/ceph-dashboard")
ALERTS = Path("/etc/prometheus/ceph/ceph_default_alerts.yml")


@dataclass(frozen=True)
class CephFixtures:
    dashboards: Path  # a directory of Grafana dashboard JSON
    alerts: Path  # a Prometheus rule file


def _find() -> CephFixtures | None:
    present = ALERTS.is_file() and DASHBOARDS.is_dir() and any(DASHBOARDS.glob("*.json"))
    return CephFixtures(DASHBOARDS, ALERTS) if present else None


@pytest.fixture(scope="session", name="ceph_fixtures")
def ceph_fixtures_fixture() -> CephFixtures:
    return installed_by(INSTALL_SCRIPT, _find, "the Ceph dashboards are")
