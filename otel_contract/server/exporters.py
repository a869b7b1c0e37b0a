"""Where batches go: an OTLP/gRPC downstream (the Collector), a JSON-lines file, or the console.

Each exporter kind describes itself, as a Collector component does: a frozen settings class with its
defaults, a ``from_config`` that reads the pipeline config's ``exporter`` section (and the flags, and
for OTLP the ``OTEL_EXPORTER_OTLP_*`` variables) and validates, and ``create()``, the exporter's
factory. ``config.py`` lists the kinds in one table; a new kind is its settings here (or in its own
module) and one row there.

An exporter sends one ``Batch`` and either returns the downstream's ``partial_success`` or raises
``ExportError``, which says whether a later attempt may succeed (the OTLP spec's retryable codes,
https://opentelemetry.io/docs/specs/otlp/#failures) and how long the downstream asked to wait.
Retrying, queueing and giving up are the sender's business.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Protocol

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from otel_contract.durations import parse_duration
from otel_contract.otlp import FACTS, OtlpRequest, Signal, count_items, to_otlp_json
from otel_contract.server._batch import Batch
from otel_contract.server._paths import resolve
from otel_contract.server.endpoints import endpoint_problem, split_scheme


class ExportError(Exception):
    """An export that failed; ``retryable`` says whether the same request may succeed later."""

    def __init__(
        self, reason: str, *, retryable: bool, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after  # seconds, from the downstream's google.rpc.RetryInfo
        self.code = code  # the gRPC status name, e.g. "UNAVAILABLE", for gRPC failures

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}" if self.code else self.reason


@dataclass(frozen=True)
class ExportResult:
    """The downstream's ``partial_success``: items it rejected although the call succeeded."""

    rejected: int = 0
    message: str = ""


class Exporter(Protocol):
    def export(self, batch: Batch) -> ExportResult:
        """Send one batch; raises ``ExportError``. Safe to call from several threads at once."""
        ...

    def close(self) -> None: ...


class ExporterKindSettings(Protocol):
    """One configured exporter's settings: what its logs call it, and its factory."""

    @property
    def destination(self) -> str: ...

    def create(self) -> Exporter:
        """A new exporter with these settings; the caller closes it."""
        ...


# --- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsSettings:
    """``exporter.tls``: no TLS when ``insecure``; else TLS verified against ``ca_file`` (or the system
    roots), with a client certificate (mTLS) when ``cert_file`` and ``key_file`` are set."""

    insecure: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name_override: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if (self.cert_file is None) != (self.key_file is None):
            given, missing = ("cert_file", "key_file") if self.key_file is None else ("key_file", "cert_file")
            problems.append(f"tls.{given}: set without tls.{missing}; a client certificate needs both")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                problems.append(f"tls.{name}: no such file: {path}")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], base: Path, endpoint: str) -> TlsSettings:
        """``exporter.tls``, paths resolved against ``base``; without ``insecure``, TLS is on exactly
        when ``endpoint`` is ``https://``."""
        return cls(
            insecure=bool(raw.get("insecure", not endpoint.startswith("https://"))),
            ca_file=resolve(base, raw.get("ca_file")),
            cert_file=resolve(base, raw.get("cert_file")),
            key_file=resolve(base, raw.get("key_file")),
            server_name_override=raw.get("server_name_override"),
        )


_COMPRESSIONS: Mapping[str, grpc.Compression] = MappingProxyType(
    {"gzip": grpc.Compression.Gzip, "none": grpc.Compression.NoCompression}
)
# gRPC metadata keys: lower-case letters, digits and "-_."; "-bin" keys carry bytes, "grpc-" is reserved.
_HEADER_KEY = re.compile(r"[0-9a-z_.-]+")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")
# OtlpGrpcSettings' defaults, named because from_config falls back to them under the environment's.
# No compression, as the OpenTelemetry SDKs' exporters: gzip costs about 0.8 ms of CPU per 100-point
# request, more than the rest of the sidecar's own work, for a hop that is usually local.
_DEFAULT_COMPRESSION = "none"
_DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class OtlpGrpcSettings:
    """``exporter``'s OTLP/gRPC destination.

    ``endpoint`` is ``host:port``; an ``http://`` or ``https://`` scheme is accepted and stripped, and
    ``https://`` turns TLS on whatever ``tls.insecure`` says. Header keys are lower-cased (gRPC
    metadata keys are). ``timeout`` bounds each attempt, in seconds.
    """

    endpoint: str
    tls: TlsSettings = field(default_factory=TlsSettings)
    headers: Mapping[str, str] = field(default_factory=dict)
    compression: str = _DEFAULT_COMPRESSION
    timeout: float = _DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        problems: list[str] = []
        scheme, rest = split_scheme(self.endpoint) if isinstance(self.endpoint, str) else ("", "")
        target = rest.rstrip("/")
        if problem := endpoint_problem("endpoint", target, listen=False):
            problems.append(problem)
        tls = replace(self.tls, insecure=False) if scheme == "https://" else self.tls
        if tls.insecure and (tls.ca_file or tls.cert_file or tls.server_name_override):
            problems.append(
                "tls: ca_file, cert_file or server_name_override is set but tls.insecure is true: "
                "set insecure: false (or use an https:// endpoint) to connect with TLS"
            )
        if self.compression not in _COMPRESSIONS:
            problems.append(f"compression: must be one of {', '.join(_COMPRESSIONS)}, got {self.compression!r}")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) or not self.timeout > 0:
            problems.append(f"timeout: must be a positive number of seconds, got {self.timeout!r}")
        headers = {str(key).lower(): value for key, value in self.headers.items()}
        problems += _header_problems(headers)
        if problems:
            raise ValueError("; ".join(problems))
        object.__setattr__(self, "endpoint", target)
        object.__setattr__(self, "tls", tls)
        object.__setattr__(self, "headers", headers)  # a dict, not a proxy: --workers pickles settings

    @classmethod
    def from_config(
        cls, raw: Mapping[str, Any], base: Path, *, endpoint: str | None, env: Mapping[str, str]
    ) -> OtlpGrpcSettings | None:
        """The OTLP destination of the ``exporter`` section, None when no endpoint is set anywhere.

        ``endpoint`` (``--exporter-endpoint``) wins over the file, the file over the ``OTEL_EXPORTER_OTLP_*``
        variables in ``env``, those over the defaults above. Raises ``ValueError`` naming every value refused.
        """
        from_env = _otel_env(env)
        target = endpoint or raw.get("endpoint") or from_env.get("endpoint")
        if not target:
            return None
        return cls(
            endpoint=str(target),
            tls=TlsSettings.from_config({**from_env.get("tls", {}), **raw.get("tls", {})}, base, str(target)),
            headers={**from_env.get("headers", {}), **raw.get("headers", {})},  # a dict: workers get it pickled
            compression=raw.get("compression", from_env.get("compression", _DEFAULT_COMPRESSION)),
            timeout=parse_duration(raw.get("timeout", from_env.get("timeout", _DEFAULT_TIMEOUT))),
        )

    @property
    def destination(self) -> str:
        return f"otlp://{self.endpoint}"

    def create(self) -> Exporter:
        return OtlpGrpcExporter(self)


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


def _header_problems(headers: Mapping[str, object]) -> list[str]:
    problems = []
    for key, value in headers.items():
        if not _HEADER_KEY.fullmatch(key) or key.startswith("grpc-") or key.endswith("-bin"):
            problems.append(
                f"headers.{key}: not a usable gRPC metadata key (letters, digits, '-', '_', '.'; "
                "no 'grpc-' prefix, no '-bin' suffix)"
            )
        elif not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            problems.append(f"headers.{key}: the value must be printable ASCII text")
    return problems


# --- OTLP/gRPC -----------------------------------------------------------------------------------

# The OTLP spec's retryable codes; RESOURCE_EXHAUSTED only with RetryInfo (the server may recover).
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


# While the downstream is unreachable, attempts fail at once until gRPC's next reconnect, whose backoff
# grows to 120 s by default: after a long outage delivery would resume up to two minutes late. Capping
# it keeps recovery within seconds; the sender's retry policy paces the attempts themselves.
_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 5000),
)


class OtlpGrpcExporter:
    """Sends the batch's bytes as they are (no re-encoding) to an OTLP/gRPC server, over one channel."""

    def __init__(self, settings: OtlpGrpcSettings) -> None:
        self._settings = settings
        self._metadata = tuple(settings.headers.items())
        compression = _COMPRESSIONS[settings.compression]
        options: list[tuple[str, str | int]] = list(_CHANNEL_OPTIONS)
        if settings.tls.insecure:
            self._channel = grpc.insecure_channel(settings.endpoint, options=options, compression=compression)
        else:
            if settings.tls.server_name_override:
                options.append(("grpc.ssl_target_name_override", settings.tls.server_name_override))
            self._channel = grpc.secure_channel(
                settings.endpoint, _credentials(settings.tls), options=options, compression=compression
            )
        # No serializers: the payload goes out and the response comes back as raw bytes.
        self._calls: dict[Signal, grpc.UnaryUnaryMultiCallable[bytes, bytes]] = {
            signal: self._channel.unary_unary(facts.export_method, request_serializer=None, response_deserializer=None)
            for signal, facts in FACTS.items()
        }

    def export(self, batch: Batch) -> ExportResult:
        try:
            response = self._calls[batch.signal](batch.payload, timeout=self._settings.timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise _export_error(err) from None
        return _partial_success(batch.signal, response)

    def close(self) -> None:
        self._channel.close()


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as stream:
        return stream.read()


def _credentials(tls: TlsSettings) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file), private_key=_read(tls.key_file), certificate_chain=_read(tls.cert_file)
    )


def _export_error(err: grpc.RpcError) -> ExportError:
    # The RpcError a unary call raises is also its grpc.Call, which carries code, details and trailers.
    call: grpc.Call = err  # type: ignore[assignment]
    code = call.code()
    reason = call.details() or code.name
    retry_after = _retry_after(call)
    retryable = code in _RETRYABLE or (code is grpc.StatusCode.RESOURCE_EXHAUSTED and retry_after is not None)
    return ExportError(reason, retryable=retryable, retry_after=retry_after, code=code.name)


def _retry_after(call: grpc.Call) -> float | None:
    """The delay of the google.rpc.RetryInfo in the call's grpc-status-details-bin trailer, if any."""
    try:
        status = rpc_status.from_call(call)
    except ValueError:  # the details contradict the call's code or message: trust neither
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return max(0.0, float(info.retry_delay.ToTimedelta().total_seconds()))
    return None


def _partial_success(signal: Signal, raw: bytes) -> ExportResult:
    response = FACTS[signal].response_type()
    try:
        response.ParseFromString(raw)
    except DecodeError:
        # The call succeeded; an unreadable response cannot un-deliver the data.
        return ExportResult()
    if not response.HasField("partial_success"):
        return ExportResult()
    partial = response.partial_success
    return ExportResult(rejected=int(getattr(partial, FACTS[signal].rejected_field)), message=partial.error_message)


# --- local exporters -----------------------------------------------------------------------------


def _parse(batch: Batch) -> OtlpRequest:
    request = FACTS[batch.signal].request_type()
    try:
        request.ParseFromString(batch.payload)
    except DecodeError as err:
        raise ExportError(f"the {batch.signal} request does not parse: {err}", retryable=False) from None
    return request


def _json_line(request: OtlpRequest) -> str:
    return json.dumps(to_otlp_json(request), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_ITEM_NAMES: Mapping[Signal, str] = MappingProxyType(
    {Signal.METRICS: "data point(s)", Signal.TRACES: "span(s)", Signal.LOGS: "log record(s)"}
)


@dataclass(frozen=True, slots=True)
class FileSettings:
    """``exporter.file``: the JSON-lines file batches are appended to."""

    path: str

    @classmethod
    def from_config(cls, raw: str | Mapping[str, Any] | None, base: Path, *, path: str | None) -> FileSettings | None:
        """``exporter.file`` (a path, or ``{path: ...}`` resolved against ``base``), None when not set;
        ``path`` (``--export-file``) wins over the file and is taken as given."""
        if path:
            return cls(path)
        value = raw.get("path") if isinstance(raw, Mapping) else raw
        return cls(resolved) if value is not None and (resolved := resolve(base, value)) else None

    @property
    def destination(self) -> str:
        return f"file:{self.path}"

    def create(self) -> Exporter:
        return FileExporter(self.path)


class FileExporter:
    """Appends each batch as one line of OTLP/JSON, as the Collector's file exporter writes them.

    ``otel-contract validate`` reads the file back when it is named ``.jsonl``, ``.ndjson`` or ``.json``.
    Each line is flushed to the OS as it is written, so a reader sees whole lines. When the path no
    longer names the open file (deleted, or renamed away by a logrotate-style rotation), the next
    batch goes to a new file at the path: writing on into the old one would be writing nowhere.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._closed = False
        self._stream: IO[str] | None = self._open()

    def _open(self) -> IO[str]:
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        return open(self.path, "a", encoding="utf-8")  # closed in close(), or when _current reopens

    def _current(self) -> IO[str]:
        """The open stream, reopened first when the path names another file or none (one stat each)."""
        stream = self._stream
        if stream is not None:
            try:
                named, opened = os.stat(self.path), os.fstat(stream.fileno())
                if (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino):
                    return stream
            except FileNotFoundError:
                pass
            self._stream = None
            stream.close()
        self._stream = self._open()
        return self._stream

    def export(self, batch: Batch) -> ExportResult:
        line = _json_line(_parse(batch)) + "\n"
        with self._lock:
            if self._closed:
                raise ExportError(f"{self.path}: the file exporter is closed", retryable=False)
            try:
                stream = self._current()
                stream.write(line)
                stream.flush()
            except OSError as err:  # a full disk, or a directory that cannot be made yet, can recover
                raise ExportError(f"{self.path}: cannot write: {err.strerror or err}", retryable=True) from None
        return ExportResult()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._stream is not None:
                self._stream.close()
                self._stream = None


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """``exporter.console``: print each batch, a count line (``basic``) or with the JSON (``detailed``)."""

    verbosity: str = "basic"

    @classmethod
    def from_config(cls, raw: bool | Mapping[str, Any], *, on: bool) -> ConsoleSettings | None:
        """``exporter.console`` (``true`` or ``{verbosity: ...}``), None when off; ``on`` is ``--console``."""
        if on or raw is True:
            return cls()
        if isinstance(raw, Mapping):
            return cls(verbosity=raw.get("verbosity", cls().verbosity))
        return None

    @property
    def destination(self) -> str:
        return "console"

    def create(self) -> Exporter:
        return ConsoleExporter(verbosity=self.verbosity)


class ConsoleExporter:
    """Prints each batch like the Collector's debug exporter: a count line, and with ``detailed`` the JSON."""

    def __init__(self, stream: IO[str] | None = None, verbosity: str = "basic") -> None:
        if verbosity not in ("basic", "detailed"):
            raise ValueError(f"verbosity: must be basic or detailed, got {verbosity!r}")
        self._stream = stream if stream is not None else sys.stdout
        self._detailed = verbosity == "detailed"
        self._lock = threading.Lock()

    def export(self, batch: Batch) -> ExportResult:
        request = _parse(batch)
        resources, items = count_items(request)
        text = f"{batch.signal}: {resources} resource(s), {items} {_ITEM_NAMES[batch.signal]}\n"
        if self._detailed:
            text += json.dumps(to_otlp_json(request), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        with self._lock:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError) as err:  # a closed or broken stdout does not heal
                raise ExportError(f"cannot write to the console: {err}", retryable=False) from None
        return ExportResult()

    def close(self) -> None:
        pass


__all__ = [
    "ConsoleExporter",
    "ConsoleSettings",
    "ExportError",
    "ExportResult",
    "Exporter",
    "ExporterKindSettings",
    "FileExporter",
    "FileSettings",
    "OtlpGrpcExporter",
    "OtlpGrpcSettings",
    "TlsSettings",
]
