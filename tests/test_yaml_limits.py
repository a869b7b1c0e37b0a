"""YAML that would cost more than it should: alias bombs, recursive aliases, deep nesting, huge input.

Every YAML reader (contracts and includes, pipeline configs, rule files, hot reloads) refuses such input
with one line naming file:line:column, before it takes memory or time; a reload is refused and the
contract in force keeps serving.
"""

from __future__ import annotations

import logging
import re
import tracemalloc
from pathlib import Path

import pytest

from otel_contract import ContractUnreadable, lint_contract
from otel_contract.otlp import Signal
from tests.conftest import TODAY, run_cli
from tests.otlp_builders import counter, metrics_request
from tests.otlp_sink import OtlpSink, otlp_sink_fixture  # noqa: F401 - the fixture
from tests.sidecar_harness import RawClient, config_for, health_json, http_get, running, shop_contract, wait_until

HEADER = "contract: hostile\nversion: 1.0.0\n"


def _bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs": each anchor lists ``width`` aliases of the one before, 9**9 strings in all."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


HOSTILE = {
    "alias-bomb": (HEADER + _bomb(), "aliases would build more than"),
    "merge-key-bomb": (
        HEADER
        + "m0: &m0 {a: 1, b: 2}\n"
        + "".join(f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}\n" for i in range(1, 9)),
        "aliases would build more than",
    ),
    "recursive-alias": (HEADER + "loop: &loop [a, *loop]\n", "alias *loop is inside its own anchor &loop"),
    "recursive-merge": (HEADER + "loop: &loop {a: 1, b: {<<: *loop}}\n", "alias *loop is inside its own anchor"),
    "deep-nesting": (HEADER + "deep: " + "[" * 20_000 + "]" * 20_000 + "\n", "nested more than 100 levels deep"),
    "deep-through-aliases": (
        HEADER + "".join(f"d{i}: &d{i} [[[[[[[[[[{f'*d{i - 1}' if i else 'x'}]]]]]]]]]]\n" for i in range(40)),
        "nested more than 100 levels deep",
    ),
}


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def _points_at(line: str, file: Path, text: str) -> None:
    """``line`` names ``file``:line:column, and that position is in the file."""
    match = re.search(rf"{re.escape(file.name)}:(\d+):(\d+): ", line)
    assert match, line
    row, column = int(match[1]), int(match[2])
    assert 1 <= row <= text.count("\n") + 1 and 1 <= column <= len(text.splitlines()[row - 1]) + 1


@pytest.mark.parametrize(("text", "reason"), HOSTILE.values(), ids=HOSTILE.keys())
def test_check_refuses_hostile_yaml_in_one_line(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, "utf-8")
    result = run_cli("check", path.name, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    line = _one_line(result.stderr)
    assert reason in line and "error[contract-syntax]" in line
    _points_at(line, path, text)


def test_the_alias_bomb_error_names_the_alias_that_explodes(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(HEADER + _bomb(), "utf-8")
    with pytest.raises(ContractUnreadable) as caught:
        lint_contract(path)
    [finding] = caught.value.findings
    assert finding.location is not None
    text = path.read_text("utf-8").splitlines()[finding.location.line - 1]
    assert text[finding.location.column - 1 :].startswith("*l")  # an alias, not the anchor
    assert finding.message.startswith(f"alias {text[finding.location.column - 1 :].split(',')[0]}:")


@pytest.mark.parametrize(
    "command",
    [
        ("validate", "-c", "bomb.yaml", "capture.json"),
        ("normalize", "-c", "bomb.yaml", "capture.json", "-o", "out.json"),
        ("render", "rules", "-c", "bomb.yaml"),
        ("diff", "bomb.yaml", "good.yaml"),
        ("usage", "-c", "bomb.yaml", "--rules", "."),
        ("rfc", "new", "-c", "bomb.yaml", "--base", "good.yaml", "title"),
    ],
    ids=lambda command: command[0],
)
def test_every_command_that_reads_a_contract_refuses_a_bomb(tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "bomb.yaml").write_text(HEADER + _bomb(), "utf-8")
    (tmp_path / "good.yaml").write_text("contract: good\nversion: 1.0.0\n", "utf-8")
    result = run_cli(*command, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    line = _one_line(result.stderr)
    assert "aliases would build more than" in line and re.search(r"bomb\.yaml:\d+:\d+: ", line), line


def test_serve_refuses_a_bomb_pipeline_config_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text("contract: {path: c.yaml}\nexporter: {console: true}\n" + _bomb(), "utf-8")
    result = run_cli("serve", "--config", config.name, "--prometheus", "off", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    line = _one_line(result.stderr)
    assert line.startswith("otel-contract serve: pipeline.yaml:") and "aliases would build more than" in line


def test_usage_refuses_a_rule_file_nested_too_deep(tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text("contract: c\nversion: 1.0.0\n", "utf-8")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "deep.yml").write_text("groups: " + "[" * 5000 + "]" * 5000 + "\n", "utf-8")
    result = run_cli("usage", "-c", "c.yaml", "--rules", "rules", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    # the mapping and 99 sequences are allowed; the 100th sequence starts at column 8 + 100
    assert _one_line(result.stderr).endswith("deep.yml:1:108: not YAML: nested more than 100 levels deep")


def test_an_integer_too_long_to_convert_is_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(HEADER + "description: " + "9" * 5000 + "\n", "utf-8")
    with pytest.raises(ContractUnreadable) as caught:
        lint_contract(path)
    [finding] = caught.value.findings
    assert str(finding.location).endswith("c.yaml:3:14") and "quote it" in finding.message


def test_an_input_over_16_mib_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(HEADER + "description: '" + "x" * (16 * 2**20) + "'\n", "utf-8")
    with pytest.raises(ContractUnreadable, match="larger than 16 MiB"):
        lint_contract(path)


def test_a_huge_contract_file_is_refused_without_being_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    with path.open("wb") as file:
        file.write(HEADER.encode())
        file.truncate(2 * 2**30)  # sparse: 2 GiB on paper, nothing on disk
    tracemalloc.start()
    try:
        with pytest.raises(ContractUnreadable, match="larger than 16 MiB"):
            lint_contract(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20


def test_usage_refuses_a_dashboard_nested_too_deep_in_one_line(tmp_path: Path) -> None:
    dashboards = tmp_path / "dashboards"
    dashboards.mkdir()
    (dashboards / "deep.json").write_text("[" * 100_000 + "]" * 100_000, "utf-8")
    contract = shop_contract(tmp_path / "shop.yaml")
    result = run_cli("usage", "-c", str(contract), "--dashboards", str(dashboards), "--today", "2026-11-22")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "deep.json: not a dashboard: JSON nested too deeply" in result.stderr


def test_serve_names_each_problem_of_an_unusable_contract_on_its_own_line(tmp_path: Path) -> None:
    contract = tmp_path / "c.yaml"
    contract.write_text(
        "contract: c\nversion: 1.0.0\nmetrics:\n"
        "  - {name: a, type: gauge, unit: sec}\n  - {name: b, type: gauge, unit: bytes}\n"
    )
    result = run_cli("serve", "--contract", str(contract), "--console", timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) >= 2
    assert all(re.match(rf"otel-contract serve: {re.escape(str(contract))}:\d+:\d+: error\[", line) for line in lines)


def test_a_contract_using_a_few_aliases_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        """contract: shared
version: 1.0.0
metrics:
  - &http
    name: http_server_duration_seconds
    type: histogram
    unit: s
    description: Server-side latency
    attributes:
      required: &http_attributes [http.method, http.status_code]
      values: {http.method: &methods [GET, POST]}
  - <<: *http
    name: http_client_duration_seconds
    description: Client-side latency
  - name: http_requests_total
    type: sum
    unit: '{request}'
    attributes: {required: *http_attributes, values: {http.method: *methods}}
""",
        "utf-8",
    )
    result = lint_contract(path, today=TODAY)
    assert result.findings == ()  # a key the merge brings and the mapping sets again is no duplicate
    assert result.contract is not None
    by_name = {metric.name: metric for metric in result.contract.metrics}
    client = by_name["http_client_duration_seconds"]
    assert (client.type.value, client.unit, client.description) == ("histogram", "s", "Client-side latency")
    assert client.attributes.required == by_name["http_requests_total"].attributes.required
    assert client.attributes.required == ("http.method", "http.status_code")


def test_a_hot_reloaded_bomb_is_refused_and_the_old_contract_keeps_serving(
    tmp_path: Path, otlp_sink: OtlpSink, caplog: pytest.LogCaptureFixture
) -> None:
    path = shop_contract(tmp_path / "shop.yaml")
    with running(config_for(path, otlp_sink.endpoint)) as sidecar, caplog.at_level(logging.ERROR):
        assert sidecar.status is not None
        address = sidecar.status.address
        path.write_text(HEADER.replace("hostile", "shop") + _bomb(), "utf-8")
        assert wait_until(lambda: b'result="failure"} 1.0' in http_get(f"http://{address}/metrics")[2])
        assert health_json(address)["contract"] == "shop@1.0.0"
        client = RawClient(sidecar.endpoint)
        orders = counter("orders_total", [({"seq": "1"}, 1.0)], unit="{order}")
        client.export(Signal.METRICS, metrics_request(orders, resource={"service.name": "shop"}).SerializeToString())
        client.close()
        assert otlp_sink.wait_for(lambda: otlp_sink.items(Signal.METRICS) == 1)
    [record] = [r for r in caplog.records if r.name == "otel_contract.reload"]
    assert record.levelno == logging.ERROR
    assert "contract reload refused" in record.getMessage() and "aliases would build more than" in record.getMessage()
    assert re.search(r"shop\.yaml:\d+:\d+: alias \*l\d", record.getMessage())
