"""The sidecar's pipeline config: YAML (design §5) -> schema check with file:line errors -> frozen settings.

Precedence, highest first: command-line overrides, the config file, the standard ``OTEL_EXPORTER_OTLP_*``
variables (for the downstream exporter only), built-in defaults. Relative paths in the file are
resolved against the file's directory, so a config works whatever the working directory is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
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
from otel_contract.server._paths import resolve
from otel_contract.server.endpoints import endpoint_or_off, endpoint_problem, parse_endpoint
from otel_contract.server.exporters import ConsoleSettings, ExporterKindSettings, FileSettings, OtlpGrpcSettings
from otel_contract.server.queue import QueueSettings
from otel_contract.server.receivers import (
    DEFAULT_ENDPOINT,
    MIB,
    HttpReceiverSettings,
    OnEngineError,
    ReceiverSettings,
    ReceiverTls,
)
from otel_contract.server.sender import RetrySettings

DEFAULT_TELEMETRY_ENDPOINT = "127.0.0.1:8888"


class ConfigError(Exception):
    """The pipeline config cannot be used; ``findings`` says every reason with file:line:column."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = tuple(findings)
        super().__init__("\n".join(f"{f.source}: {f.message}" if f.source else f.message for f in self.findings))


@dataclass(frozen=True, slots=True)
class ExporterSettings:
    """Every configured destination, by kind name in the table's order; forwarded requests go to all of them."""

    configured: tuple[tuple[str, ExporterKindSettings], ...] = ()
    retry: RetrySettings = field(default_factory=RetrySettings)
    queue: QueueSettings = field(default_factory=QueueSettings)

    @property
    def otlp(self) -> OtlpGrpcSettings | None:
        found = dict(self.configured).get("otlp")
        return found if isinstance(found, OtlpGrpcSettings) else None

    @property
    def destinations(self) -> str:
        return ", ".join(settings.destination for _, settings in self.configured)


@dataclass(frozen=True, slots=True)
class SidecarConfig:
    contract_path: str
    exporter: ExporterSettings
    receiver: ReceiverSettings = field(default_factory=ReceiverSettings)
    http_receiver: HttpReceiverSettings | None = field(default_factory=HttpReceiverSettings)  # None: off
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
    http_endpoint: str | None = None  # "off" disables the OTLP/HTTP receiver
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


# --- building ------------------------------------------------------------------------------------

_ExporterReader = Callable[[Mapping[str, Any], Path, Overrides, Mapping[str, str]], ExporterKindSettings | None]

# The exporter kinds: name (also the directory of its persistent queue) and how its settings are read
# from the exporter section, the flags and the environment (None: not configured). A new kind is its
# settings class (Settings + from_config + create) and one row here.
_EXPORTER_KINDS: tuple[tuple[str, _ExporterReader], ...] = (
    (
        "otlp",
        lambda raw, base, flags, env: OtlpGrpcSettings.from_config(
            raw, base, endpoint=flags.exporter_endpoint, env=env
        ),
    ),
    ("file", lambda raw, base, flags, env: FileSettings.from_config(raw.get("file"), base, path=flags.export_file)),
    ("console", lambda raw, base, flags, env: ConsoleSettings.from_config(raw.get("console", False), on=flags.console)),
)


def _exporter(raw: Mapping[str, Any], base: Path, overrides: Overrides, env: Mapping[str, str]) -> ExporterSettings:
    configured = tuple(
        (name, settings) for name, read in _EXPORTER_KINDS if (settings := read(raw, base, overrides, env)) is not None
    )
    retry = RetrySettings.from_config(raw.get("retry_on_failure", {}))
    queue_raw = raw.get("sending_queue", {})
    directory = overrides.queue_dir or resolve(base, queue_raw.get("storage", {}).get("directory"))
    return ExporterSettings(configured, retry=retry, queue=QueueSettings.from_config(queue_raw, directory))


_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::", "::1", ""})


def _same_listener(receiver: str, exporter: str) -> bool:
    """Whether an exporter endpoint reaches this receiver (a loop), as far as the addresses tell."""
    own, other = parse_endpoint(receiver, listen=True), parse_endpoint(exporter, listen=True)
    if own.port == 0 or other.port != own.port:
        return False
    own_host, host = own.host.lower(), other.host.lower()
    return host == own_host or (host in _LOCAL_HOSTS and own_host in _LOCAL_HOSTS)


def _flag_problems(overrides: Overrides) -> list[Finding]:
    """The endpoint flags, checked as the settings check the same keys, but naming the flag."""
    checks = (
        ("--endpoint", overrides.endpoint, True, False),
        ("--http-endpoint", overrides.http_endpoint and endpoint_or_off(overrides.http_endpoint), True, False),
        ("--exporter-endpoint", overrides.exporter_endpoint, False, True),
        ("--prometheus", overrides.prometheus and endpoint_or_off(overrides.prometheus), True, False),
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
    contract_path = overrides.contract or resolve(base, contract_raw.get("path"))
    if not contract_path:
        raise _error("no contract: set contract.path in the pipeline config or pass --contract", source)
    reload_raw = contract_raw.get("reload", True)
    reload_enabled = reload_raw if isinstance(reload_raw, bool) else reload_raw.get("enabled", True)
    reload_interval = 2.0 if isinstance(reload_raw, bool) else parse_duration(reload_raw.get("interval", "2s"))
    receiver = ReceiverSettings.from_config(
        raw.get("receiver", {}), base, endpoint=overrides.endpoint, on_engine_error=raw.get("on_engine_error")
    )
    http_receiver = HttpReceiverSettings.from_config(
        raw.get("receiver", {}).get("http", {}), base, endpoint=overrides.http_endpoint
    )
    if http_receiver and _same_listener(receiver.endpoint, http_receiver.endpoint):
        raise _error(
            f"the OTLP/HTTP receiver's endpoint {http_receiver.endpoint} is the OTLP/gRPC receiver's"
            f" {receiver.endpoint}: give each its own port (4318 and 4317 by convention)",
            source,
        )
    exporter = _exporter(raw.get("exporter", {}), base, overrides, env)
    if not exporter.configured:
        raise _error(
            "no exporter: set exporter.endpoint, exporter.file or exporter.console in the pipeline config, "
            "or pass --exporter-endpoint, --export-file or --console (OTEL_EXPORTER_OTLP_ENDPOINT works too)",
            source,
        )
    listeners = [receiver.endpoint, *([http_receiver.endpoint] if http_receiver else [])]
    if exporter.otlp and (own := next((e for e in listeners if _same_listener(e, exporter.otlp.endpoint)), None)):
        raise _error(
            f"exporter endpoint {exporter.otlp.endpoint} is the receiver's own endpoint {own}: the"
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
        http_receiver=http_receiver,
        reload=reload_enabled,
        reload_interval=reload_interval,
        audit=overrides.audit or raw.get("mode", "enforce") == "audit",
        workers=overrides.workers or raw.get("workers", 1),
        prometheus_endpoint=endpoint_or_off(
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


# The receiver's settings live with the receivers; these names stay importable from here.
__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_TELEMETRY_ENDPOINT",
    "MIB",
    "ConfigError",
    "ExporterSettings",
    "HttpReceiverSettings",
    "OnEngineError",
    "Overrides",
    "ReceiverSettings",
    "ReceiverTls",
    "SidecarConfig",
    "build_config",
    "load_config",
    "schema_path",
    "with_worker",
]
