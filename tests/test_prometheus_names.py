"""One answer to "which Prometheus series does a contract metric yield" (issue 17, bug 2): the usage scan,
the compat shims, ``check`` and the invariants agree; and naming costs no start-up import of the
OpenTelemetry Prometheus exporter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from google.protobuf import json_format

from otel_contract.loading import lint_contract, load_contract
from otel_contract.shims import shim_inputs
from otel_contract.usage import series_names
from tests.conftest import REPO, TODAY, run_cli
from tests.otlp_builders import counter, gauge, histogram, hpoint, metrics_request

_METRICS = """\
contract: naming
version: 1.0.0
metrics:
  - {name: app_requests, type: sum, monotonic: true, unit: '{request}', description: Requests}
  - {name: app_memory, type: gauge, unit: By, description: Resident memory}
  - {name: app_latency, type: histogram, unit: ms, description: Latency}
  - {name: app_rpc_latency, type: summary, unit: s, description: RPC latency}
  - {name: app_size, type: exponential_histogram, unit: By, description: Payload size}
  - name: app_queue
    type: gauge
    unit: '1'
    description: Queue fill
    aliases: [{name: legacy.queue.fill}]
"""

# Written out rather than taken from the code under test: each metric's classic names (as written)
# and those of the default strategy (UnderscoreEscapingWithSuffixes: unit word, _total), each with the
# series of its type.
EXPECTED = {
    "app_requests": {"app_requests", "app_requests_total"},
    "app_memory": {"app_memory", "app_memory_bytes"},
    "app_latency": {
        *(f"app_latency{s}" for s in ("", "_bucket", "_count", "_sum")),  # "": Prometheus 3's native histogram
        *(f"app_latency_milliseconds{s}" for s in ("", "_bucket", "_count", "_sum")),
    },
    "app_rpc_latency": {
        *(f"app_rpc_latency{s}" for s in ("", "_count", "_sum")),
        *(f"app_rpc_latency_seconds{s}" for s in ("", "_count", "_sum")),
    },
    "app_size": {
        *(f"app_size{s}" for s in ("", "_bucket", "_count", "_sum")),
        *(f"app_size_bytes{s}" for s in ("", "_bucket", "_count", "_sum")),
    },
    "app_queue": {"app_queue", "app_queue_ratio"},
}
# Aliases name what arrives before normalization: dashboards not yet migrated read them, the stream
# after the engine (shims, invariants) never carries them. Prometheus 3 keeps the dots
# (NoUTF8EscapingWithSuffixes), which a contract name of classic characters cannot show.
ALIAS_SERIES = {"legacy.queue.fill", "legacy_queue_fill", "legacy_queue_fill_ratio", "legacy.queue.fill_ratio"}
# Names that look close but no metric yields.
NOT_SERIES = {
    "app_requests_count",
    "app_memory_total",
    "app_memory_bytes_total",
    "app_latency_seconds_bucket",
    "app_rpc_latency_bucket",
    "app_queue_total",
    "app_size_bytes_total",
}
ALL_SERIES = set().union(*EXPECTED.values())


def _contract(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "naming.yaml"
    path.write_text(_METRICS + extra, "utf-8")
    return path


def test_usage_reads_every_strategy_and_the_aliases(tmp_path: Path) -> None:
    metrics = load_contract(_contract(tmp_path), today=TODAY).contract.metrics
    found = {metric.name: set(series_names(metric)) for metric in metrics}
    assert found == {**EXPECTED, "app_queue": EXPECTED["app_queue"] | ALIAS_SERIES}


def test_shims_read_the_same_series(tmp_path: Path) -> None:
    contract = load_contract(_contract(tmp_path), today=TODAY).contract
    inputs = shim_inputs(contract)
    assert set(inputs) == ALL_SERIES
    assert {name: kind.metric for name, (kind, _) in inputs.items()} == {
        name: metric for metric, names in EXPECTED.items() for name in names
    }


def test_check_accepts_a_shim_on_exactly_the_same_series(tmp_path: Path) -> None:
    probes = sorted(ALL_SERIES | ALIAS_SERIES | NOT_SERIES)
    shims = "".join(
        f"  - {{record: probe_{i}, expr: 'sum({{__name__=\"{name}\"}})', expires: 2099-01-01,"
        " owner: sre, reason: probe}\n"
        for i, name in enumerate(probes)
    )
    result = lint_contract(_contract(tmp_path, "compat:\n" + shims), today=TODAY)

    def probed(slug: str) -> set[str]:
        return {probes[int(str(f.metric).removeprefix("probe_"))] for f in result.findings if f.rule.slug == slug}

    assert set(probes) - probed("shim-input") == ALL_SERIES
    # Series the stream cannot give: native histograms, and an exponential histogram's le buckets.
    assert probed("shim-unsupported") == {
        "app_latency",
        "app_latency_milliseconds",
        "app_size",
        "app_size_bytes",
        "app_size_bucket",
        "app_size_bytes_bucket",
    }


def test_invariants_resolve_exactly_the_same_series(tmp_path: Path) -> None:
    probes = sorted(ALL_SERIES | ALIAS_SERIES | NOT_SERIES)
    invariants = "".join(f"  - {{name: probe-{i}, present: '{name}'}}\n" for i, name in enumerate(probes))
    contract = _contract(tmp_path, "invariants:\n" + invariants)
    point = {"timeUnixNano": "1700000000000000000", "count": "1", "sum": 0.5}
    request = metrics_request(
        counter("app_requests", [({}, 1.0)]),
        gauge("app_memory", [({}, 1.0)], unit="By"),
        histogram("app_latency", [hpoint({}, [1.0], [1, 0], 0.5)], unit="ms"),
        {"name": "app_rpc_latency", "unit": "s", "summary": {"dataPoints": [point]}},
        {
            "name": "app_size",
            "unit": "By",
            "exponentialHistogram": {
                "aggregationTemporality": 2,
                "dataPoints": [{**point, "scale": 0, "positive": {"offset": 0, "bucketCounts": ["1"]}}],
            },
        },
        gauge("app_queue", [({}, 0.5)], unit="1"),
    )
    capture = tmp_path / "capture.json"
    capture.write_text(json_format.MessageToJson(request), "utf-8")
    result = run_cli("validate", "-c", str(contract), "--format", "json", "--fail-on", "none", str(capture))
    assert result.returncode == 0, result.stderr
    absent = {
        probes[int(finding["message"].split(":")[0].removeprefix("invariant probe-"))]
        for finding in json.loads(result.stdout)["findings"]
        if finding["rule"] == "invariant"
    }
    assert set(probes) - absent == ALL_SERIES


def test_render_queries_a_name_usage_counts() -> None:
    """What render adapter writes for a counter is among the names usage reads it under."""
    contract = load_contract(REPO / "contracts" / "hpa-app.yaml", today=TODAY).contract
    [consume] = [metric for metric in contract.metrics if metric.name == "hpa_app_consume_count"]
    adapter = run_cli("render", "adapter", "-c", str(REPO / "contracts" / "hpa-app.yaml"))
    assert adapter.returncode == 0, adapter.stderr
    assert "hpa_app_consume_count_total" in adapter.stdout
    assert "hpa_app_consume_count_total" in series_names(consume)


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


def test_names_are_the_exporters_without_importing_the_metrics_sdk() -> None:
    """The exporter's mapping module is loaded alone: its package would import the whole metrics SDK
    into every ``check`` and ``validate``; the names are still the exporter's own."""
    code = (
        "import sys\n"
        "from otel_contract.prometheus_names import escape_name\n"
        "names = ['http.server.duration', 'a-b c', '0lead', 'ok_name', 'ünï']\n"
        "ours = [escape_name(n) for n in names]\n"
        "assert 'opentelemetry.sdk.metrics' not in sys.modules, 'the SDK was imported'\n"
        "from opentelemetry.exporter.prometheus._mapping import sanitize_full_name\n"
        "assert ours == [sanitize_full_name(n) for n in names], ours\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
