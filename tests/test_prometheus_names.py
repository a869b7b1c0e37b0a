"""Prometheus naming of contract metrics (``otel_contract.prometheus_names``) costs no start-up import of
the OpenTelemetry Prometheus exporter."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_the_cli_does_not_import_the_prometheus_exporter_at_start_up() -> None:
    """The exporter's package imports the SDK's metrics and prometheus-client: ~135 ms on every command."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['otel-contract', '--help']\n"
        "try:\n"
        "    runpy.run_module('otel_contract', run_name='__main__', alter_sys=True)\n"
        "except SystemExit:\n"
        "    pass\n"
        "import otel_contract.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.exporter.prometheus')), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "[]"
