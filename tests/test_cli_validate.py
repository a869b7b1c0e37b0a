"""`validate` and `normalize` run the engine the sidecar runs: same rules, same counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otel_contract import load_contract
from otel_contract.engine import CardinalityState, process_metrics
from otel_contract.inputs.otlp import read_captures, write_capture
from otel_contract.otlp import parse_otlp_json, to_otlp_json

from .conftest import CONTRACTS, TODAY, run_cli
from .otlp_builders import (
    all_metrics,
    counter,
    done_when_request,
    gauge,
    histogram,
    hpoint,
    metrics_request,
    point_attrs,
)

ECOMMERCE = "contracts/ecommerce.yaml"
# Judged over the whole run rather than per request: the engine alone never reports them.
WHOLE_RUN_RULES = {"invariant"}


@pytest.mark.parametrize("name", ["capture.json", "capture.jsonl", "capture.metrics.pb"])
def test_validate_reports_what_the_engine_reports(tmp_path: Path, name: str) -> None:
    request = done_when_request()
    path = tmp_path / name
    write_capture(path, [request])
    engine = process_metrics(
        request.SerializeToString(), load_contract(CONTRACTS / "ecommerce.yaml", today=TODAY), state=CardinalityState()
    )
    result = run_cli("validate", "-c", ECOMMERCE, str(path), "--format", "json", "--today", "2026-11-22")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    per_request = [f for f in report["findings"] if f["rule"] not in WHOLE_RUN_RULES]
    assert {(f["rule"], f["metric"], f["attribute"], f["count"]) for f in per_request} == {
        (f.rule.slug, f.metric, f.attribute, f.count) for f in engine.findings
    }
    assert report["summary"]["data_points"] == engine.items == 3
    assert report["summary"]["rejected_data_points"] == engine.rejected == 1
    assert report["findings"][0]["source"] in (str(path), f"{path}:1")  # JSON lines name the line


def test_counts_add_up_over_several_inputs(tmp_path: Path) -> None:
    write_capture(tmp_path / "a.jsonl", [done_when_request(), done_when_request()])
    write_capture(tmp_path / "b.json", [done_when_request()])
    result = run_cli(
        "validate", "-c", ECOMMERCE, str(tmp_path / "a.jsonl"), str(tmp_path / "b.json"), "--format", "json"
    )
    report = json.loads(result.stdout)
    counts = {f["rule"]: f["count"] for f in report["findings"] if f["rule"] not in WHOLE_RUN_RULES}
    assert counts == {"unknown-metric": 3, "deprecated-metric": 6, "missing-attribute": 3}
    assert report["summary"]["data_points"] == 9 and report["summary"]["rejected_data_points"] == 3


def test_compliant_capture_exits_0(tmp_path: Path) -> None:
    good = {"http.method": "GET", "http.status_code": 200}
    duration = histogram("http_server_duration_seconds", [hpoint(good, [0.1], [1, 0], 0.05)])
    write_capture(tmp_path / "ok.json", [metrics_request(counter("http_requests_total", [(good, 1.0)]), duration)])
    result = run_cli("validate", "-c", ECOMMERCE, str(tmp_path / "ok.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "" and "no findings" in result.stderr


def test_text_report_and_fail_on(tmp_path: Path) -> None:
    write_capture(tmp_path / "c.json", [metrics_request(gauge("checkout_cart_items", [({}, 1.0)]))])
    flagged = run_cli("validate", "-c", ECOMMERCE, str(tmp_path / "c.json"))
    assert flagged.returncode == 0  # unknown-metric is a warning
    assert "warning[unknown-metric]" in flagged.stdout
    assert run_cli("validate", "-c", ECOMMERCE, str(tmp_path / "c.json"), "--fail-on", "warning").returncode == 1


def test_audit_mode_rejects_nothing(tmp_path: Path) -> None:
    write_capture(tmp_path / "c.json", [done_when_request()])
    result = run_cli("validate", "-c", ECOMMERCE, str(tmp_path / "c.json"), "--format", "json", "--audit")
    assert json.loads(result.stdout)["summary"]["rejected_data_points"] == 0


def test_stdin(tmp_path: Path) -> None:
    write_capture(tmp_path / "c.jsonl", [done_when_request()])
    result = run_cli("validate", "-c", ECOMMERCE, "-", "--format", "json", stdin=(tmp_path / "c.jsonl").read_text())
    assert json.loads(result.stdout)["summary"]["data_points"] == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ('{"resourceMetrics": [}', "invalid JSON"),
        ('{"something": []}', "resourceMetrics"),
    ],
)
def test_unreadable_inputs_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content)
    result = run_cli("validate", "-c", ECOMMERCE, str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr and message in result.stderr


def test_invalid_contract_exits_2_with_every_reason(tmp_path: Path) -> None:
    write_capture(tmp_path / "c.json", [done_when_request()])
    result = run_cli("validate", "-c", "tests/contracts/broken/invalid-budget.yaml", str(tmp_path / "c.json"))
    assert result.returncode == 2
    assert result.stderr.count("error[invalid-budget]") == 2


def test_normalize_writes_what_the_sidecar_would_forward(tmp_path: Path) -> None:
    write_capture(tmp_path / "in.json", [done_when_request()])
    out = tmp_path / "out.pb"
    result = run_cli("normalize", "-c", ECOMMERCE, str(tmp_path / "in.json"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "error[missing-attribute]" in result.stderr
    [capture] = list(read_captures(out))
    duration, _unknown = all_metrics(capture.request)
    assert duration.name == "http_server_duration_seconds" and duration.unit == "s"
    [point] = duration.histogram.data_points
    assert point_attrs(point) == {"http.method": "GET", "http.status_code": 503}
    assert list(point.explicit_bounds) == [0.1, 0.5]
    again = run_cli("validate", "-c", ECOMMERCE, str(out), "--format", "json")
    assert {f["rule"] for f in json.loads(again.stdout)["findings"]} - WHOLE_RUN_RULES == {"unknown-metric"}


def test_normalize_does_not_write_a_request_with_nothing_left_to_forward(tmp_path: Path) -> None:
    # As the sidecar, which forwards nothing for it; written as {}, validate could not read the file back.
    forbidden = {"http.method": "GET", "http.status_code": 200, "user.id": "u-1"}
    rejected = metrics_request(counter("http_requests_total", [(forbidden, 1.0)], unit="{request}"))
    write_capture(tmp_path / "in.jsonl", [done_when_request(), rejected])
    out = tmp_path / "out.jsonl"
    result = run_cli("normalize", "-c", ECOMMERCE, str(tmp_path / "in.jsonl"), "-o", str(out))
    assert "wrote 1 requests (1 left nothing to forward, not written)" in result.stderr, result.stderr
    assert len(out.read_text("utf-8").splitlines()) == 1
    again = run_cli("validate", "-c", ECOMMERCE, str(out))
    assert again.returncode in (0, 1), again.stderr


def test_normalize_to_stdout(tmp_path: Path) -> None:
    write_capture(tmp_path / "in.json", [done_when_request()])
    result = run_cli("normalize", "-c", ECOMMERCE, str(tmp_path / "in.json"), "-o", "-")
    assert result.returncode == 0
    assert json.loads(result.stdout.splitlines()[0])["resourceMetrics"][0]["scopeMetrics"]


# ---------------------------------------------------------------------------
# Large inputs: memory does not follow the input's size
# ---------------------------------------------------------------------------

# Peak RSS of one command, read in a process of its own: getrusage(RUSAGE_CHILDREN) of pytest would
# also count every earlier child.
_PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def _padded_document(path: Path, megabytes: float) -> int:
    """One OTLP/JSON document of done_when_request's resource record, repeated, each copy padded with an
    unknown field (many small JSON values, which receivers ignore) so that the file is large while the
    requests stay cheap to check. Returns the number of records."""
    (record,) = to_otlp_json(done_when_request())["resourceMetrics"]
    text = json.dumps({**record, "padding": [{"k": k} for k in range(400)]})
    count = int(megabytes * 1_000_000 / len(text)) + 1
    path.write_text('{"resourceMetrics": [\n' + ",\n".join([text] * count) + "\n]}\n")
    return count


def _peak_kib(*args: str) -> int:
    command = [sys.executable, "-m", "otel_contract", *args]
    result = subprocess.run([sys.executable, "-c", _PEAK_RSS, *command], capture_output=True, text=True, timeout=120)
    code, peak = result.stdout.split()
    assert code == "1", result.stderr  # done_when_request's findings
    return int(peak) // (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB elsewhere


def test_a_large_document_streams_in_bounded_memory(tmp_path: Path) -> None:
    small, large = tmp_path / "small.json", tmp_path / "large.json"
    _padded_document(small, 5)
    _padded_document(large, 13)
    grown = _peak_kib("validate", "-c", ECOMMERCE, str(large)) - _peak_kib("validate", "-c", ECOMMERCE, str(small))
    # Read whole, 8 MB more of JSON took about 13 times that in memory; streamed, the peak stays put.
    assert grown < 12_000, f"peak RSS grew by {grown} KiB for 8 MB more input"


def test_a_streamed_document_reports_what_the_whole_one_does(tmp_path: Path) -> None:
    streamed = tmp_path / "streamed.json"
    count = _padded_document(streamed, 5)  # over 4 MiB: read one resource record at a time
    whole = tmp_path / "whole.metrics.pb"  # the same records as one request, parsed whole
    write_capture(whole, [parse_otlp_json(streamed.read_bytes(), source="x")[1]])
    reports = []
    for path in (streamed, whole):
        result = run_cli("validate", "-c", ECOMMERCE, str(path), "--format", "json", "--today", "2026-11-22")
        assert result.returncode == 1, result.stderr
        reports.append(json.loads(result.stdout.replace(str(path), "INPUT")))
    assert reports[0] == reports[1]
    assert reports[0]["summary"]["data_points"] == 3 * count


def test_a_large_binary_request_is_refused_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.metrics.pb"
    request = done_when_request()
    request.resource_metrics[0].resource.attributes.add(key="note").value.string_value = "x" * 2**21
    write_capture(path, [request])  # one request of 2 MiB
    result = run_cli("validate", "-c", ECOMMERCE, str(path), "--max-input-size", "1")
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"otel-contract: error: {path}: a binary OTLP request over 1 MiB (--max-input-size)"
    )
    assert len(result.stderr.splitlines()) == 1
    assert run_cli("validate", "-c", ECOMMERCE, str(path), "--max-input-size", "3").returncode == 1


# ---------------------------------------------------------------------------
# Messages a new user meets
# ---------------------------------------------------------------------------


def test_signal_flag_reads_protobuf_the_name_does_not_type(tmp_path: Path) -> None:
    # One resource record with an unknown field before schema_url: any signal parses it, none cleanly.
    path = tmp_path / "dump.pb"
    path.write_bytes(b"\x0a\x06\x98\x06\x01\x1a\x01x")
    result = run_cli("validate", "-c", ECOMMERCE, str(path))
    assert result.returncode == 2
    assert "pass --signal metrics|traces|logs or name the signal in the file name" in result.stderr
    result = run_cli("validate", "-c", ECOMMERCE, "--signal", "logs", str(path))
    assert result.stderr.endswith("0 data points in 1 requests, 0 rejected\n")  # read; its resource lacks attributes
    piped = subprocess.run(
        [sys.executable, "-m", "otel_contract", "validate", "-c", ECOMMERCE, "--signal", "logs", "-"],
        input=path.read_bytes(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert piped.stderr.endswith(b"0 data points in 1 requests, 0 rejected\n")
    out = tmp_path / "out.jsonl"
    assert run_cli("normalize", "-c", ECOMMERCE, "--signal", "traces", str(path), "-o", str(out)).returncode == 0
    assert json.loads(out.read_text())["resourceSpans"][0]["schemaUrl"] == "x"


def test_signal_flag_insists_on_the_signal(tmp_path: Path) -> None:
    write_capture(tmp_path / "c.jsonl", [done_when_request()])
    (tmp_path / "c.prom").write_text("up 1\n")
    for name, reason in [
        ("c.jsonl", ":1: expected an OTLP traces document, found resourceMetrics"),
        ("c.prom", ": Prometheus text holds metrics, not traces"),
    ]:
        result = run_cli("validate", "-c", ECOMMERCE, "--signal", "traces", str(tmp_path / name))
        assert result.returncode == 2
        assert result.stderr == f"otel-contract: error: {tmp_path / name}{reason}\n"


@pytest.mark.parametrize(
    "name", ["empty.prom", "empty.om", "empty.txt", "empty.json", "empty.jsonl", "empty.metrics.pb", "-"]
)
def test_an_empty_input_is_no_data_in_every_format(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name != "-":
        path.write_text("" if name.endswith(".pb") else "\n  \n")
    args = [str(path) if name != "-" else "-"]
    result = run_cli("validate", "-c", "tests/data/captures/shop-contract.yaml", *args, "--format", "json", stdin="")
    report = json.loads(result.stdout)
    # No data, so no finding about it: only the invariant on a metric that never appeared.
    assert {f["rule"] for f in report["findings"]} == {"invariant"}, result.stderr
    assert report["summary"]["data_points"] == 0
    shown = str(path) if name != "-" else "-"
    assert f"0 data points in 0 requests, 0 rejected; 1 empty inputs read as no data ({shown})" in result.stderr


def test_unusable_contract_is_one_line_naming_it_as_given(tmp_path: Path) -> None:
    write_capture(tmp_path / "c.jsonl", [done_when_request()])
    broken = tmp_path / "broken.yaml"
    broken.write_text("contract: x\nversion: [\n")
    for contract, reason in [
        (str(broken), f"{broken}:3:1: error[contract-syntax] did not find expected node content"),
        ("nope.yaml", "error: nope.yaml: cannot read contract: No such file or directory"),
    ]:
        result = run_cli("validate", "-c", contract, str(tmp_path / "c.jsonl"))
        assert result.returncode == 2
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"otel-contract: {reason}")


@pytest.mark.parametrize(
    "contract",
    ["tests/contracts/broken/metric-name.yaml", "tests/contracts/broken/yaml-bad-indentation.yaml", "nope.yaml"],
)
def test_serve_and_validate_print_an_unusable_contract_alike(tmp_path: Path, contract: str) -> None:
    write_capture(tmp_path / "c.jsonl", [done_when_request()])
    validate = run_cli("validate", "-c", contract, str(tmp_path / "c.jsonl"))
    # Port 0 and the console exporter: serve gets as far as loading the contract, which stops it.
    serve = run_cli(
        "serve",
        "-c",
        contract,
        "--endpoint",
        "127.0.0.1:0",
        "--http-endpoint",
        "127.0.0.1:0",
        "--prometheus",
        "127.0.0.1:0",
        "--console",
    )
    assert validate.returncode == serve.returncode == 2
    # Each command names itself; after that, the same lines.
    validate_lines = [line.removeprefix("otel-contract: ") for line in validate.stderr.splitlines()]
    serve_lines = [
        line.removeprefix("otel-contract serve: ")
        for line in serve.stderr.splitlines()
        if line.startswith("otel-contract serve: ")
    ]
    assert validate_lines and serve_lines == validate_lines


def test_json_lines_error_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"resourceMetrics": []}\n{"resourceMetrics": [\n')  # line 2 ends too early
    result = run_cli("validate", "-c", ECOMMERCE, str(path))
    assert result.returncode == 2
    assert result.stderr == f"otel-contract: error: {path}:2: invalid JSON: Expecting value (column 22)\n"
