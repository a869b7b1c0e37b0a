"""The sidecar's pipeline config: schema errors with file:line, defaults, precedence, overrides."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from otel_contract.server.config import (
    ConfigError,
    HttpReceiverSettings,
    OnEngineError,
    Overrides,
    load_config,
    parse_duration,
    schema_path,
    with_worker,
)
from otel_contract.server.queue import QueueSettings
from otel_contract.server.sender import RetrySettings
from tests.conftest import CONTRACTS, REPO, run_cli


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, "utf-8")
    return path


MINIMAL = """\
contract:
  path: contract.yaml
exporter:
  endpoint: collector:4317
"""


def test_minimal_config_gets_the_collector_like_defaults(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, MINIMAL))
    assert config.contract_path == str(tmp_path / "contract.yaml")  # relative to the config file
    assert config.receiver.endpoint == "127.0.0.1:4317"
    assert config.receiver.max_recv_msg_size == 4 * 2**20
    assert config.exporter.otlp is not None and config.exporter.otlp.endpoint == "collector:4317"
    assert config.exporter.otlp.compression == "none" and config.exporter.otlp.timeout == 5.0
    assert config.exporter.retry.initial_interval == 5.0 and config.exporter.retry.max_elapsed_time == 300.0
    assert config.exporter.queue.queue_size == 1000 and config.exporter.queue.directory is None
    assert not config.audit and config.reload and config.workers == 1
    assert config.prometheus_endpoint == "127.0.0.1:8888"
    assert config.receiver.on_engine_error is OnEngineError.REJECT


def test_the_http_receiver_is_configured_next_to_the_grpc_one(tmp_path: Path) -> None:
    assert load_config(_config(tmp_path, MINIMAL)).http_receiver == HttpReceiverSettings()  # on, 4318
    text = MINIMAL + (
        "receiver:\n"
        "  http:\n"
        "    endpoint: 0.0.0.0:14318\n"
        "    max_request_body_size_mib: 8\n"
        "    tls: {cert_file: tls/server.crt, key_file: tls/server.key, client_ca_file: tls/ca.crt}\n"
        "    cors: {allowed_origins: ['https://*.shop.example'], allowed_headers: [x-tenant], max_age: 600}\n"
    )
    http = load_config(_config(tmp_path, text)).http_receiver
    assert http is not None
    assert (http.endpoint, http.max_request_body_size) == ("0.0.0.0:14318", 8 * 2**20)
    assert http.tls is not None and http.tls.client_ca_file == str(tmp_path / "tls" / "ca.crt")  # relative to the file
    assert http.cors is not None and http.cors.allows("https://app.shop.example")
    assert not http.cors.allows("https://shop.example.evil") and (http.cors.allowed_headers, http.cors.max_age) == (
        ("x-tenant",),
        600,
    )
    assert load_config(_config(tmp_path, text), Overrides(http_endpoint="off")).http_receiver is None
    off = load_config(_config(tmp_path, MINIMAL + "receiver: {http: {endpoint: 'off'}}\n"))
    assert off.http_receiver is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "receiver: {http: {cors: {allowed_origins: ['https://*.*.example']}}}\n",
            "receiver.http.cors.allowed_origins: at most one '*'",
        ),
        ("receiver: {endpoint: '127.0.0.1:4317', http: {endpoint: 'localhost:4317'}}\n", "give each its own port"),
        ("receiver: {http: {max_request_body_size_mib: 0}}\n", "less than or equal to the minimum of 0"),
    ],
)
def test_a_bad_http_receiver_setting_is_one_error_naming_it(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, MINIMAL + text))
    (finding,) = caught.value.findings
    assert expected in finding.message, finding.message


def test_on_engine_error_is_reject_or_forward(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, MINIMAL + "on_engine_error: forward\n"))
    assert config.receiver.on_engine_error is OnEngineError.FORWARD
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, MINIMAL + "on_engine_error: ignore\n"))
    (finding,) = caught.value.findings
    assert finding.location is not None and finding.location.line == 5
    assert "'ignore'" in finding.message and "reject" in finding.message


def test_every_example_pipeline_is_valid() -> None:
    for path in sorted((REPO / "pipelines").glob("*.yaml")):
        load_config(path)


def test_unknown_key_is_reported_with_line_and_suggestion(tmp_path: Path) -> None:
    path = _config(tmp_path, MINIMAL + "  retry_on_falure: {enabled: false}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (finding,) = caught.value.findings
    assert finding.rule.slug == "pipeline-config"
    assert finding.location is not None and finding.location.line == 5
    assert "retry_on_falure" in finding.message and "retry_on_failure" in finding.message


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        MINIMAL + "mode: enforcing\nreceiver:\n  endpoint: localhost\n  max_recv_msg_size_mib: -1\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = sorted(f.location.line for f in caught.value.findings if f.location)
    assert lines == [5, 7, 8]
    assert "did you mean 'enforce'" in str(caught.value)


def test_durations_and_sizes(tmp_path: Path) -> None:
    text = MINIMAL + (
        "  timeout: 1500ms\n"
        "  retry_on_failure: {initial_interval: 1s, max_interval: 2m, max_elapsed_time: 1h}\n"
        "  sending_queue: {queue_size_mib: 0.5, storage: {directory: q, max_size_mib: 2}}\n"
        "receiver: {max_recv_msg_size_mib: 16}\n"
    )
    config = load_config(_config(tmp_path, text))
    assert config.exporter.otlp is not None and config.exporter.otlp.timeout == 1.5
    retry = config.exporter.retry
    assert (retry.initial_interval, retry.max_interval, retry.max_elapsed_time) == (1.0, 120.0, 3600.0)
    assert config.exporter.queue.queue_size_bytes == 2**19
    assert config.exporter.queue.directory == str(tmp_path / "q")
    assert config.exporter.queue.max_disk_bytes == 2 * 2**20
    assert config.receiver.max_recv_msg_size == 16 * 2**20
    assert parse_duration(3) == 3.0
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 minutes")


def test_flags_beat_the_file_and_the_file_beats_otel_variables(tmp_path: Path) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "from-env:4317",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme, authorization=Bearer t",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
    }
    path = _config(tmp_path, MINIMAL)
    from_file = load_config(path, env=env)
    assert from_file.exporter.otlp is not None
    assert from_file.exporter.otlp.endpoint == "collector:4317"
    assert dict(from_file.exporter.otlp.headers) == {"x-tenant": "acme", "authorization": "Bearer t"}
    assert from_file.exporter.otlp.timeout == 2.5
    flagged = load_config(
        path,
        Overrides(exporter_endpoint="flag:4317", endpoint="0.0.0.0:14317", audit=True, queue_dir="/tmp/q", workers=3),
        env=env,
    )
    assert flagged.exporter.otlp is not None and flagged.exporter.otlp.endpoint == "flag:4317"
    assert flagged.receiver.endpoint == "0.0.0.0:14317"
    assert flagged.audit and flagged.workers == 3 and flagged.exporter.queue.directory == "/tmp/q"


def test_no_config_file_needs_a_contract_and_an_exporter() -> None:
    with pytest.raises(ConfigError, match="no contract"):
        load_config(None, Overrides(console=True))
    with pytest.raises(ConfigError, match="no exporter"):
        load_config(None, Overrides(contract="c.yaml"))
    config = load_config(None, Overrides(contract="c.yaml"), env={"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gw:4317"})
    assert config.exporter.otlp is not None and not config.exporter.otlp.tls.insecure


def test_a_config_file_may_leave_the_destination_to_a_flag_or_the_environment(tmp_path: Path) -> None:
    """Queue and retry settings in a ConfigMap, the destination per deployment: only the merged
    settings need an exporter."""
    path = _config(tmp_path, "contract: {path: contract.yaml}\nexporter:\n  sending_queue: {queue_size: 2}\n")
    config = load_config(path, Overrides(exporter_endpoint="gateway:4317"))
    assert config.exporter.otlp is not None and config.exporter.otlp.endpoint == "gateway:4317"
    assert config.exporter.queue.queue_size == 2
    from_env = load_config(path, env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://gateway:4317"})
    assert from_env.exporter.otlp is not None and from_env.exporter.otlp.endpoint == "gateway:4317"
    with pytest.raises(ConfigError, match="no exporter: set exporter") as refused:
        load_config(path)
    assert str(path) in str(refused.value)


@pytest.mark.parametrize(
    ("receiver", "exporter", "loops"),
    [
        ("127.0.0.1:4317", "http://127.0.0.1:4317", True),
        ("0.0.0.0:4317", "localhost:4317", True),
        ("[::]:4317", "127.0.0.1:4317", True),
        ("127.0.0.1:4317", "127.0.0.1:14317", False),
        ("0.0.0.0:4317", "collector:4317", False),
        ("127.0.0.1:0", "127.0.0.1:4317", False),  # a free port is not known until bound
    ],
)
def test_an_exporter_pointing_at_the_receiver_is_refused(receiver: str, exporter: str, loops: bool) -> None:
    # The usual cause: OTEL_EXPORTER_OTLP_ENDPOINT exported for the app, inherited by the sidecar.
    overrides = Overrides(contract="c.yaml", endpoint=receiver)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": exporter}
    if loops:
        with pytest.raises(ConfigError, match="the sidecar would forward to itself"):
            load_config(None, overrides, env=env)
    else:
        assert load_config(None, overrides, env=env).exporter.otlp is not None


def test_workers_get_their_own_queue_directory_and_telemetry_port(tmp_path: Path) -> None:
    text = MINIMAL + "  sending_queue: {storage: {directory: q}}\ntelemetry: {prometheus: {endpoint: 127.0.0.1:9000}}\n"
    config = load_config(_config(tmp_path, text), Overrides(workers=2))
    second = with_worker(config, 1)
    assert second.exporter.queue.directory == str(tmp_path / "q" / "worker-1")
    assert second.prometheus_endpoint == "127.0.0.1:9001"


def test_serve_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    path = _config(tmp_path, MINIMAL + "bogus: 1\n")
    result = run_cli("serve", "--config", str(path))
    assert result.returncode == 2
    assert f"{path}:5:1" in result.stderr.replace(str(Path.cwd()) + "/", "") or ":5:1" in result.stderr
    assert "bogus" in result.stderr


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    """``serve`` on the example contract with free ports, then ``args`` (the last flag wins)."""
    defaults = ("--contract", str(CONTRACTS / "ecommerce.yaml"), "--console", "--endpoint", "127.0.0.1:0")
    defaults += ("--http-endpoint", "127.0.0.1:0")
    # A serve that starts instead of refusing would run until killed: the timeout fails the test.
    return run_cli("serve", *defaults, "--prometheus", "off", *args, timeout=30)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert (result.returncode, len(lines)) == (2, 1), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--endpoint", "bogus"), ["--endpoint", "expected host:port", "'bogus'"]),
        (("--endpoint", "127.0.0.1:99999"), ["--endpoint", "out of range", "'127.0.0.1:99999'"]),
        (("--endpoint", ":4317"), ["--endpoint", "host is missing", "':4317'"]),
        (("--endpoint", "::1:4317"), ["--endpoint", "brackets", "'::1:4317'"]),
        (("--http-endpoint", "localhost"), ["--http-endpoint", "expected host:port", "'localhost'"]),
        (("--http-endpoint", "127.0.0.1:70000"), ["--http-endpoint", "out of range", "'127.0.0.1:70000'"]),
        (("--prometheus", "127.0.0.1:99999"), ["--prometheus", "out of range", "'127.0.0.1:99999'"]),
        (("--exporter-endpoint", "localhost:99999"), ["--exporter-endpoint", "out of range", "'localhost:99999'"]),
        (("--exporter-endpoint", "collector"), ["--exporter-endpoint", "expected host:port", "'collector'"]),
        (("--log-level", "bogus"), ["--log-level", "DEBUG, INFO, WARNING, ERROR", "'bogus'"]),
        (("--endpoint", "no-such-host.invalid:4317"), ["no-such-host.invalid:4317", "does not resolve"]),
    ],
)
def test_serve_refuses_a_bad_flag_in_one_line(flags: tuple[str, ...], expected: list[str]) -> None:
    line = _one_line(_serve(*flags))
    assert all(part in line for part in expected), line


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("receiver: {endpoint: '127.0.0.1:99999'}\n", "receiver.endpoint"),
        ("receiver: {http: {endpoint: '127.0.0.1:99999'}}\n", "receiver.http.endpoint"),
        ("telemetry: {prometheus: {endpoint: '127.0.0.1:70000'}}\n", "telemetry.prometheus.endpoint"),
        ("telemetry: {otlp: {endpoint: 'collector'}}\n", "telemetry.otlp.endpoint"),
    ],
)
def test_serve_refuses_a_bad_endpoint_in_the_config_naming_file_and_key(tmp_path: Path, text: str, field: str) -> None:
    path = _config(tmp_path, "contract: {path: ../c.yaml}\nexporter: {console: true}\n" + text)
    line = _one_line(run_cli("serve", "--config", str(path), timeout=30))
    assert str(path) in line and f"{field}: " in line, line


@pytest.mark.parametrize(
    ("flag", "field"),
    [
        ("--endpoint", "receiver.endpoint"),
        ("--http-endpoint", "receiver.http.endpoint"),
        ("--prometheus", "telemetry.prometheus.endpoint"),
    ],
)
def test_serve_on_a_port_in_use_exits_2_naming_the_address(flag: str, field: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        line = _one_line(_serve(flag, address))
    assert f"cannot listen on {address} ({field}): Address already in use" in line, line


def test_serve_with_a_broken_contract_exits_2_with_every_reason(tmp_path: Path) -> None:
    contract = tmp_path / "broken.yaml"
    contract.write_text("contract: x\nversion: not-semver\nmetrics: []\n", "utf-8")
    result = run_cli("serve", "--contract", str(contract), "--console", "--endpoint", "127.0.0.1:0", "--prometheus", "")
    assert result.returncode == 2
    assert "contract-version" in result.stderr


def test_the_kubernetes_configmaps_hold_a_valid_pipeline_and_the_example_contract(tmp_path: Path) -> None:
    import yaml

    pipeline_map = yaml.safe_load((REPO / "pipelines/k8s/configmap-pipeline.yaml").read_text("utf-8"))
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(pipeline_map["data"]["pipeline.yaml"], "utf-8")
    config = load_config(pipeline)
    assert config.contract_path == "/etc/otel-contract/contract/contract.yaml"

    contract_map = yaml.safe_load((REPO / "pipelines/k8s/configmap-contract.yaml").read_text("utf-8"))
    # Regenerate the ConfigMap (command in its header) whenever the example contract changes.
    assert contract_map["data"]["contract.yaml"] == (REPO / "contracts/ecommerce.yaml").read_text("utf-8")
    assert contract_map["data"]["base-org.yaml"] == (REPO / "contracts/base/org.yaml").read_text("utf-8")


def _schema_defaults(properties: dict[str, Any]) -> dict[str, Any]:
    """The ``default`` of every key, nested objects included; a key without one is left out."""
    found: dict[str, Any] = {}
    for key, node in properties.items():
        if "properties" in node:
            found[key] = _schema_defaults(node["properties"])
        elif "default" in node:
            found[key] = node["default"]
    return found


def test_the_schema_defaults_are_the_settings_defaults() -> None:
    """The pipeline schema documents each component's defaults; the settings classes own them."""
    schema = json.loads(Path(schema_path()).read_text("utf-8"))
    exporter = schema["properties"]["exporter"]["properties"]
    retry = _schema_defaults(exporter["retry_on_failure"]["properties"])
    queue = _schema_defaults(exporter["sending_queue"]["properties"])

    assert set(retry) == set(exporter["retry_on_failure"]["properties"])  # every key has its default
    assert RetrySettings.from_config(retry) == RetrySettings()
    assert QueueSettings.from_config(queue) == QueueSettings()
    assert queue == {
        "num_consumers": 4,
        "queue_size": 1000,
        "queue_size_mib": 256,
        "batch": {"flush_timeout": "200ms", "max_size": 8192},
        "storage": {"max_size_mib": 1024},  # directory has none: no directory means in memory
    }


def test_every_components_schema_defaults_are_its_settings_defaults(tmp_path: Path) -> None:
    """Each settings class reads the schema's defaults back as its own: receiver, OTLP, console, top level."""
    from otel_contract.server.exporters import ConsoleSettings, OtlpGrpcSettings
    from otel_contract.server.receivers import HttpReceiverSettings, ReceiverSettings

    schema = json.loads(Path(schema_path()).read_text("utf-8"))
    receiver = _schema_defaults(schema["properties"]["receiver"]["properties"])
    exporter = schema["properties"]["exporter"]["properties"]
    otlp = {key: value for key, value in _schema_defaults(exporter).items() if key in ("compression", "timeout")}
    (console,) = [each for each in exporter["console"]["oneOf"] if each.get("type") == "object"]

    http = receiver.pop("http")
    assert receiver == {"endpoint": "127.0.0.1:4317", "max_recv_msg_size_mib": 4}  # tls has none: off
    on_engine_error = schema["properties"]["on_engine_error"]["default"]
    from_schema = ReceiverSettings.from_config(receiver, tmp_path, on_engine_error=on_engine_error)
    assert from_schema == ReceiverSettings() == ReceiverSettings.from_config({}, tmp_path)
    assert http == {"endpoint": "127.0.0.1:4318", "max_request_body_size_mib": 4, "cors": {}}  # cors: none
    from_schema_http = HttpReceiverSettings.from_config(http, tmp_path)
    assert from_schema_http == HttpReceiverSettings() == HttpReceiverSettings.from_config({}, tmp_path)
    assert otlp == {"compression": "none", "timeout": "5s"}  # tls.insecure has none: it follows the scheme
    assert OtlpGrpcSettings.from_config({"endpoint": "c:4317", **otlp}, tmp_path, endpoint=None, env={}) == (
        OtlpGrpcSettings(endpoint="c:4317")
    )
    assert ConsoleSettings.from_config(_schema_defaults(console["properties"]), on=False) == ConsoleSettings()
    assert ConsoleSettings.from_config(True, on=False) == ConsoleSettings()
