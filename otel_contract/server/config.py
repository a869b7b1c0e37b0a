"""The sidecar's pipeline config: YAML (design §5) -> schema check with file:line errors -> frozen settings.

Precedence, highest first: command-line overrides, the config file, the standard ``OTEL_EXPORTER_OTLP_*``
variables (for the downstream exporter only), built-in defaults. Relative paths in the file are
resolved against the file's directory, so a config works whatever the working directory is.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator

from otel_contract import rules
from otel_contract.contract.schema_errors import schema_findings
from otel_contract.contract.yaml_source import YamlSyntaxError, parse_yaml
from otel_contract.durations import parse_duration
from otel_contract.findings import Finding, Location
from otel_contract.server.endpoints import endpoint_problem, parse_endpoint
from otel_contract.server.exporters import OtlpGrpcSettings, TlsSettings
from otel_contract.server.queue import QueueSettings
from otel_contract.server.sender import RetrySettings

MIB = 2**20
DEFAULT_ENDPOINT = "127.0.0.1:4317"
DEFAULT_TELEMETRY_ENDPOINT = "127.0.0.1:8888"


class ConfigError(Exception):
    """The pipeline config cannot be used; ``findings`` says every reason with file:line:column."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = tuple(findings)
        super().__init__("\n".join(f"{f.source}: {f.message}" if f.source else f.message for f in self.findings))


@dataclass(frozen=True, slots=True)
class ReceiverTls:
    cert_file: str
    key_file: str
    client_ca_file: str | None = None


class OnEngineError(enum.Enum):
    """What the receiver does with a request on which the contract engine itself fails (a bug)."""

    REJECT = "reject"  # refuse it, non-retryable: unchecked data never passes the contract
    FORWARD = "forward"  # forward it unchanged: availability before enforcement


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    endpoint: str = DEFAULT_ENDPOINT
    max_recv_msg_size: int = 4 * MIB
    tls: ReceiverTls | None = None
    on_engine_error: OnEngineError = OnEngineError.REJECT

    def __post_init__(self) -> None:
        if problem := endpoint_problem("receiver.endpoint", self.endpoint, listen=True):
            raise ValueError(problem)


@dataclass(frozen=True, slots=True)
class ExporterSettings:
    """Every configured destination; forwarded requests go to all of them."""

    otlp: OtlpGrpcSettings | None = None
    file: str | None = None
    console: str | None = None  # verbosity, None when off
    retry: RetrySettings = field(default_factory=RetrySettings)
    queue: QueueSettings = field(default_factory=QueueSettings)

    @property
    def destinations(self) -> str:
        parts = [f"otlp://{self.otlp.endpoint}"] if self.otlp else []
        parts += [f"file:{self.file}"] if self.file else []
        parts += ["console"] if self.console else []
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class SidecarConfig:
    contract_path: str
    exporter: ExporterSettings
    receiver: ReceiverSettings = field(default_factory=ReceiverSettings)
    reload: bool = True
    reload_interval: float = 2.0
    audit: bool = False
    workers: int = 1
    prometheus_endpoint: str | None = DEFAULT_TELEMETRY_ENDPOINT
    otlp_telemetry_endpoint: str | None = None
    otlp_telemetry_interval: float = 60.0
    drain_timeout: float = 20.0
    source: str = "(command line)"
    allow_include_outside: bool = False

    def __post_init__(self) -> None:
        checks = (
            ("telemetry.prometheus.endpoint", self.prometheus_endpoint, True),  # listens
            ("telemetry.otlp.endpoint", self.otlp_telemetry_endpoint, False),  # connects, http:// allowed
        )
        problems = [
            problem
            for key, value, listen in checks
            if value is not None and (problem := endpoint_problem(key, value, listen=listen, scheme=not listen))
        ]
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True, slots=True)
class Overrides:
    """What ``serve``'s flags set; None leaves the config file's (or the default) value."""

    contract: str | None = None
    endpoint: str | None = None
    exporter_endpoint: str | None = None
    export_file: str | None = None
    console: bool = False
    prometheus: str | None = None
    queue_dir: str | None = None
    audit: bool = False
    workers: int | None = None
    allow_include_outside: bool = False


# --- parsing helpers ---------------------------------------------------------------------------------


@cache
def _validator() -> Draft202012Validator:
    text = resources.files("otel_contract.server").joinpath("schema/pipeline-v1.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def schema_path() -> str:
    return str(resources.files("otel_contract.server").joinpath("schema/pipeline-v1.schema.json"))


def _error(message: str, source: str, line: int = 0, column: int = 0) -> ConfigError:
    return ConfigError([Finding.of(rules.PIPELINE_CONFIG, message, location=Location(source, line, column))])


def _read(path: Path) -> Any:
    display = os.path.relpath(path) if path.is_absolute() else str(path)
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise _error(f"cannot read pipeline config: {error.strerror or error}", display) from None
    except UnicodeDecodeError as error:
        raise _error(f"not UTF-8: {error.reason}", display) from None
    try:
        document, duplicates = parse_yaml(text, display)
    except YamlSyntaxError as error:
        raise ConfigError([Finding.of(rules.PIPELINE_CONFIG, error.reason, location=error.location)]) from None
    findings = schema_findings(document, display, _validator(), rules.PIPELINE_CONFIG, what="the pipeline config")
    findings += [
        Finding.of(rules.PIPELINE_CONFIG, f"duplicate key {key!r}", location=location) for location, key in duplicates
    ]
    if findings:
        raise ConfigError(findings)
    return document


def _resolve(base: Path, value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(os.path.expanduser(value))
    return os.path.normpath(path if path.is_absolute() else base / path)


# --- environment ---------------------------------------------------------------------------------


def _otel_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The exporter settings the OpenTelemetry SDK's ``OTEL_EXPORTER_OTLP_*`` variables would give."""
    found: dict[str, Any] = {}
    if endpoint := env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        found["endpoint"] = endpoint
    if headers := env.get("OTEL_EXPORTER_OTLP_HEADERS"):
        found["headers"] = dict(
            (key.strip(), value.strip())
            for key, _, value in (pair.partition("=") for pair in headers.split(","))
            if key
        )
    if timeout := env.get("OTEL_EXPORTER_OTLP_TIMEOUT"):
        found["timeout"] = float(timeout) / 1000  # the spec's unit is milliseconds
    if compression := env.get("OTEL_EXPORTER_OTLP_COMPRESSION"):
        found["compression"] = compression
    tls: dict[str, Any] = {
        key: env[variable]
        for key, variable in (
            ("ca_file", "OTEL_EXPORTER_OTLP_CERTIFICATE"),
            ("cert_file", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
            ("key_file", "OTEL_EXPORTER_OTLP_CLIENT_KEY"),
        )
        if env.get(variable)
    }
    if "OTEL_EXPORTER_OTLP_INSECURE" in env:
        tls["insecure"] = env["OTEL_EXPORTER_OTLP_INSECURE"].strip().lower() == "true"
    if tls:
        found["tls"] = tls
    return found


# --- building ------------------------------------------------------------------------------------


def _exporter(raw: Mapping[str, Any], base: Path, overrides: Overrides, env: Mapping[str, str]) -> ExporterSettings:
    from_env = _otel_env(env)
    endpoint = overrides.exporter_endpoint or raw.get("endpoint") or from_env.get("endpoint")
    otlp: OtlpGrpcSettings | None = None
    if endpoint:
        tls_raw = {**from_env.get("tls", {}), **raw.get("tls", {})}
        tls = TlsSettings(
            insecure=bool(tls_raw.get("insecure", not str(endpoint).startswith("https://"))),
            ca_file=_resolve(base, tls_raw.get("ca_file")),
            cert_file=_resolve(base, tls_raw.get("cert_file")),
            key_file=_resolve(base, tls_raw.get("key_file")),
            server_name_override=tls_raw.get("server_name_override"),
        )
        otlp = OtlpGrpcSettings(
            endpoint=str(endpoint),
            tls=tls,
            headers={**from_env.get("headers", {}), **raw.get("headers", {})},  # a dict: workers get it pickled
            compression=raw.get("compression", from_env.get("compression", "gzip")),
            timeout=parse_duration(raw.get("timeout", from_env.get("timeout", 5.0))),
        )
    file_raw = raw.get("file")
    file = overrides.export_file or (file_raw.get("path") if isinstance(file_raw, Mapping) else file_raw)
    console_raw = raw.get("console", False)
    console = (
        "basic"
        if overrides.console or console_raw is True
        else console_raw.get("verbosity", "basic")
        if isinstance(console_raw, Mapping)
        else None
    )
    retry = RetrySettings.from_config(raw.get("retry_on_failure", {}))
    queue_raw = raw.get("sending_queue", {})
    directory = overrides.queue_dir or _resolve(base, queue_raw.get("storage", {}).get("directory"))
    queue = QueueSettings.from_config(queue_raw, directory)
    return ExporterSettings(
        otlp=otlp,
        file=_resolve(base, file) if not overrides.export_file else overrides.export_file,
        console=console,
        retry=retry,
        queue=queue,
    )


_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::", "::1", ""})


def _same_listener(receiver: str, exporter: str) -> bool:
    """Whether an exporter endpoint reaches this receiver (a loop), as far as the addresses tell."""
    own, other = parse_endpoint(receiver, listen=True), parse_endpoint(exporter, listen=True)
    if own.port == 0 or other.port != own.port:
        return False
    own_host, host = own.host.lower(), other.host.lower()
    return host == own_host or (host in _LOCAL_HOSTS and own_host in _LOCAL_HOSTS)


def _endpoint_or_off(value: str) -> str | None:
    return None if value.strip().lower() in ("", "off", "none") else value


def _flag_problems(overrides: Overrides) -> list[Finding]:
    """The endpoint flags, checked as the settings check the same keys, but naming the flag."""
    checks = (
        ("--endpoint", overrides.endpoint, True, False),
        ("--exporter-endpoint", overrides.exporter_endpoint, False, True),
        ("--prometheus", overrides.prometheus and _endpoint_or_off(overrides.prometheus), True, False),
    )
    return [
        Finding.of(rules.PIPELINE_CONFIG, problem)
        for flag, value, listen, scheme in checks
        if value and (problem := endpoint_problem(flag, value, listen=listen, scheme=scheme))
    ]


def build_config(
    raw: Mapping[str, Any],
    *,
    base: Path,
    source: str,
    overrides: Overrides = Overrides(),
    env: Mapping[str, str] = MappingProxyType({}),
) -> SidecarConfig:
    """Settings from a schema-valid document (``{}`` when there is no file) and the overrides.

    Raises ``ConfigError`` for a bad flag or a missing piece, ``ValueError`` for a value a settings
    object refuses (``load_config`` turns that into a ``ConfigError`` naming the file).
    """
    if problems := _flag_problems(overrides):
        raise ConfigError(problems)
    contract_raw = raw.get("contract", {})
    contract_path = overrides.contract or _resolve(base, contract_raw.get("path"))
    if not contract_path:
        raise _error("no contract: set contract.path in the pipeline config or pass --contract", source)
    reload_raw = contract_raw.get("reload", True)
    reload_enabled = reload_raw if isinstance(reload_raw, bool) else reload_raw.get("enabled", True)
    reload_interval = 2.0 if isinstance(reload_raw, bool) else parse_duration(reload_raw.get("interval", "2s"))
    receiver_raw = raw.get("receiver", {})
    tls_raw = receiver_raw.get("tls")
    receiver = ReceiverSettings(
        endpoint=overrides.endpoint or receiver_raw.get("endpoint", DEFAULT_ENDPOINT),
        max_recv_msg_size=int(receiver_raw.get("max_recv_msg_size_mib", 4) * MIB),
        tls=ReceiverTls(
            cert_file=_resolve(base, tls_raw["cert_file"]) or "",
            key_file=_resolve(base, tls_raw["key_file"]) or "",
            client_ca_file=_resolve(base, tls_raw.get("client_ca_file")),
        )
        if tls_raw
        else None,
        on_engine_error=OnEngineError(raw.get("on_engine_error", OnEngineError.REJECT.value)),
    )
    exporter = _exporter(raw.get("exporter", {}), base, overrides, env)
    if not (exporter.otlp or exporter.file or exporter.console):
        raise _error(
            "no exporter: set exporter.endpoint, exporter.file or exporter.console in the pipeline config, "
            "or pass --exporter-endpoint, --export-file or --console (OTEL_EXPORTER_OTLP_ENDPOINT works too)",
            source,
        )
    if exporter.otlp and _same_listener(receiver.endpoint, exporter.otlp.endpoint):
        raise _error(
            f"exporter endpoint {exporter.otlp.endpoint} is the receiver's own endpoint {receiver.endpoint}: the"
            " sidecar would forward to itself (is OTEL_EXPORTER_OTLP_ENDPOINT meant for the app set for the sidecar"
            " too?)",
            source,
        )
    telemetry = raw.get("telemetry", {})
    otlp_telemetry = telemetry.get("otlp", {})
    return SidecarConfig(
        contract_path=contract_path,
        exporter=exporter,
        receiver=receiver,
        reload=reload_enabled,
        reload_interval=reload_interval,
        audit=overrides.audit or raw.get("mode", "enforce") == "audit",
        workers=overrides.workers or raw.get("workers", 1),
        prometheus_endpoint=_endpoint_or_off(
            overrides.prometheus
            if overrides.prometheus is not None
            else telemetry.get("prometheus", {}).get("endpoint", DEFAULT_TELEMETRY_ENDPOINT)
        ),
        otlp_telemetry_endpoint=otlp_telemetry.get("endpoint"),
        otlp_telemetry_interval=parse_duration(otlp_telemetry.get("interval", "60s")),
        drain_timeout=parse_duration(raw.get("shutdown", {}).get("drain_timeout", "20s")),
        source=source,
        allow_include_outside=overrides.allow_include_outside or contract_raw.get("allow_include_outside", False),
    )


def load_config(
    path: str | os.PathLike[str] | None,
    overrides: Overrides = Overrides(),
    env: Mapping[str, str] = MappingProxyType({}),
) -> SidecarConfig:
    """The sidecar's settings from the pipeline file at ``path`` (or none) and the overrides.

    Raises ``ConfigError`` naming file, line, column and reason for every problem found.
    """
    source = "(command line)" if path is None else str(path)
    document = {} if path is None else _read(Path(path))
    base = Path.cwd() if path is None else Path(path).resolve().parent
    try:
        return build_config(document, base=base, source=source, overrides=overrides, env=env)
    except ValueError as error:  # a settings object refused a value the schema let through
        raise _error(str(error), source) from None


def with_worker(config: SidecarConfig, index: int) -> SidecarConfig:
    """Worker ``index``'s settings: its own queue directory and self-telemetry port (port + index)."""
    queue = config.exporter.queue
    if queue.directory:
        queue = replace(queue, directory=os.path.join(queue.directory, f"worker-{index}"))
    prometheus = config.prometheus_endpoint
    if prometheus and index:
        address = parse_endpoint(prometheus, listen=True)
        prometheus = str(replace(address, port=address.port + index)) if address.port else prometheus
    return replace(config, exporter=replace(config.exporter, queue=queue), prometheus_endpoint=prometheus)
