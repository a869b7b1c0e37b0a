"""Scrape a live ``http(s)://.../metrics`` endpoint once, as Prometheus would, into OTLP export requests.

The request is Prometheus' own: an ``Accept`` header preferring OpenMetrics 1.0.0, then 0.0.1, then
text 0.0.4; ``Accept-Encoding: gzip``; ``X-Prometheus-Scrape-Timeout-Seconds``; plus the caller's
headers (``Authorization: Bearer ...``). Each attempt has a deadline of ``timeout`` seconds for
connecting and reading the whole body; connection errors, timeouts, 429 and 5xx are retried with
exponential backoff (honouring ``Retry-After``, bounded), other HTTP errors fail at once.

The body is spooled (memory, then a temporary file) and read by ``inputs.prometheus`` in the format
Prometheus 3 would pick from the ``Content-Type`` (``application/openmetrics-text``: OpenMetrics;
anything else: text 0.0.4). The resource of every series gets the target's ``service.instance.id``
(``host:port``), ``server.address``, ``server.port`` and ``url.scheme``, as the OpenTelemetry spec
requires of a scrape (section "Resource Attributes"), before ``job``/``instance`` labels and
``target_info`` have their say.

Two findings travel with the captures, once per URL:

* ``scrape-content-type`` when the Content-Type is not a valid exposition type, saying what
  Prometheus does with it;
* ``pod-mapping`` when series carry no ``pod`` and ``namespace`` labels and the target reports no
  ``k8s.pod.name``/``k8s.namespace.name`` (nor target_info's ``k8s_pod_name``/``k8s_namespace_name``):
  prometheus-adapter cannot map such series to Pods, and an HPA on them shows ``<unknown>``.

Errors are ``InputError`` naming the URL and the reason (``HTTP 401 Unauthorized``, a timeout,
a refused connection), after the retries.
"""

from __future__ import annotations

import email.utils
import http.client
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from email.headerregistry import ContentTypeHeader, HeaderRegistry
from types import MappingProxyType
from typing import IO, Any, cast
from urllib.parse import urlsplit

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

import otel_contract
from otel_contract import rules
from otel_contract.findings import Finding, Location
from otel_contract.inputs.counting import CountingReader
from otel_contract.inputs.otlp import Capture
from otel_contract.inputs.prometheus import read_exposition, scan_targets
from otel_contract.otlp import InputError

ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
"""The Accept header Prometheus 2 sends (without protobuf, which this reader does not read)."""

_SPOOL_IN_MEMORY = 16 * 1024 * 1024
_CHUNK = 64 * 1024
_MAX_DELAY = 30.0  # seconds: no Retry-After makes a CI run wait longer than this between attempts
_EXAMPLES = 3

_TEXT = "text/plain"
_OPENMETRICS = "application/openmetrics-text"
_VALID_VERSIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        # 1.0.0 is Prometheus 3's text format with UTF-8 names (PrometheusText1.0.0): valid, and read as 0.0.4.
        _TEXT: frozenset({"0.0.4", "1.0.0"}),
        _OPENMETRICS: frozenset({"1.0.0", "0.0.1"}),
    }
)
_EXPECTED = "text/plain; version=0.0.4; charset=utf-8 or application/openmetrics-text; version=1.0.0"
_REFUSED = (
    "Prometheus 3 fails the scrape unless its scrape config sets fallback_scrape_protocol"
    " (Prometheus 2 assumed text 0.0.4)"
)


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """How a URL is fetched: per-attempt ``timeout`` (seconds), ``retries`` after the first attempt,
    extra request ``headers``, and the ``backoff`` before the first retry (doubled for each next one)."""

    timeout: float = 10.0
    retries: int = 2
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    backoff: float = 0.5


def is_url(text: str) -> bool:
    return text[:8].lower().startswith(("http://", "https://"))


def check_url(url: str) -> None:
    """Raise ``InputError`` unless ``url`` is an http(s) URL with a host, before anything is fetched."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as error:
        raise InputError(url, None, f"not a valid URL: {error}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InputError(url, None, "not a valid URL: expected http(s)://HOST[:PORT]/PATH")


def scrape(
    url: str, options: FetchOptions | None = None, *, on_read: Callable[[int, int | None], None] | None = None
) -> Iterator[Capture]:
    """The metrics ``url`` serves, as export requests; ``on_read(bytes_read, bytes_total)`` follows the body.

    The URL is checked at once (``InputError``); it is fetched when iteration starts.
    """
    check_url(url)
    return _scrape(url, options or FetchOptions(), on_read)


def _scrape(url: str, options: FetchOptions, on_read: Callable[[int, int | None], None] | None) -> Iterator[Capture]:
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as body:
        content_type = _fetch(url, options, body, on_read)
        openmetrics, content_finding = judge_content_type(content_type, url)
        body.seek(0)
        targets = scan_targets(body, url, openmetrics=openmetrics)  # type: ignore[arg-type]
        body.seek(0)
        captures = read_exposition(
            body,  # type: ignore[arg-type]
            url,
            openmetrics=openmetrics,
            targets=targets,
            resource=target_resource(url),
        )
        yield from _with_findings(captures, url, content_finding)


def _with_findings(captures: Iterable[Capture], url: str, content_finding: Finding | None) -> Iterator[Capture]:
    """The captures, the Content-Type finding on the first and the pod-mapping finding on the last:
    each once per URL, because the gate adds up the counts of findings from every capture."""
    pods = PodMapping()
    previous: Capture | None = None
    for capture in captures:
        if isinstance(capture.request, ExportMetricsServiceRequest):
            pods.observe(capture.request)
        if previous is None and content_finding is not None:
            capture = replace(capture, findings=(content_finding, *capture.findings))
        elif previous is not None:
            yield previous
        previous = capture
    if previous is not None:
        finding = pods.finding(url)
        yield previous if finding is None else replace(previous, findings=(*previous.findings, finding))


def target_resource(url: str) -> dict[str, str]:
    """The resource attributes of a scrape target (spec section "Resource Attributes"), as the
    Collector's Prometheus receiver sets them: the port as a string, the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    instance = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {"service.instance.id": instance, "server.address": host, "server.port": str(port), "url.scheme": scheme}


# --- fetching ---------------------------------------------------------------------------------------


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _fetch(
    url: str, options: FetchOptions, body: IO[bytes], on_read: Callable[[int, int | None], None] | None
) -> str | None:
    """Fetch ``url`` into ``body`` (decompressed), retrying; the response's Content-Type."""
    attempts = options.retries + 1
    delay = options.backoff
    for attempt in range(1, attempts + 1):
        body.seek(0)
        body.truncate()
        try:
            return _attempt(url, options, body, on_read)
        except _Retryable as problem:
            if attempt == attempts:
                tries = f" (after {attempts} attempts)" if attempts > 1 else ""
                raise InputError(url, None, problem.reason + tries) from None
            time.sleep(min(max(delay, problem.retry_after or 0.0), _MAX_DELAY))
            delay *= 2
    raise AssertionError("unreachable: the last attempt returns or raises")


def _headers(options: FetchOptions) -> dict[str, str]:
    headers = {
        "Accept": ACCEPT,
        "Accept-Encoding": "gzip",
        "User-Agent": f"otel-contract/{otel_contract.__version__}",
        "X-Prometheus-Scrape-Timeout-Seconds": f"{options.timeout:g}",
    }
    # Header names are case-insensitive: the caller's spelling of a default replaces it.
    chosen = {name.lower() for name in options.headers}
    headers = {name: value for name, value in headers.items() if name.lower() not in chosen}
    headers.update(options.headers)
    return headers


def _attempt(
    url: str, options: FetchOptions, body: IO[bytes], on_read: Callable[[int, int | None], None] | None
) -> str | None:
    deadline = time.monotonic() + options.timeout
    request = urllib.request.Request(url, headers=_headers(options))
    try:
        response = urllib.request.urlopen(request, timeout=options.timeout)
    except urllib.error.HTTPError as error:
        with error:
            reason = f"HTTP {error.code} {error.reason}".rstrip()
            if error.code == 429 or error.code >= 500:
                raise _Retryable(reason, _retry_after(error.headers.get("Retry-After"))) from None
            if error.code in (401, 403):
                reason += " (credentials go in a request header, e.g. 'Authorization: Bearer <token>')"
            raise InputError(url, None, reason) from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, ssl.SSLError):
            raise InputError(url, None, f"TLS failed: {error.reason}") from None
        raise _Retryable(_describe(error.reason, options)) from None
    except (OSError, http.client.HTTPException) as error:
        raise _Retryable(_describe(error, options)) from None
    with response:
        try:
            _read_body(response, body, deadline, options, url, on_read)
        except (OSError, http.client.HTTPException) as error:
            raise _Retryable(f"reading the body failed: {_describe(error, options)}") from None
        content_type: str | None = response.headers.get("Content-Type")
        return content_type


def _read_body(
    response: Any,
    body: IO[bytes],
    deadline: float,
    options: FetchOptions,
    url: str,
    on_read: Callable[[int, int | None], None] | None,
) -> None:
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise InputError(url, None, f"unsupported Content-Encoding {encoding!r} (asked for gzip or none)")
    length = response.headers.get("Content-Length")
    total = int(length) if length is not None and length.isdigit() else None
    report = (lambda count: on_read(count, total)) if on_read is not None else None
    reader = CountingReader(response, report)
    decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16) if encoding == "gzip" else None
    try:
        while chunk := reader.read(_CHUNK):
            if time.monotonic() > deadline:
                raise _Retryable(f"timed out after {options.timeout:g} s reading the body")
            body.write(decompressor.decompress(chunk) if decompressor is not None else chunk)
        if decompressor is not None:
            body.write(decompressor.flush())
            if not decompressor.eof:
                raise _Retryable("the gzip body ended early")
    except zlib.error as error:
        raise InputError(url, None, f"invalid gzip body: {error}") from None
    reader.report()


def _describe(reason: object, options: FetchOptions) -> str:
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"timed out after {options.timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host: {reason.strerror or reason}"
    if isinstance(reason, OSError):
        return reason.strerror or str(reason) or type(reason).__name__
    return str(reason) or type(reason).__name__


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# --- Content-Type -----------------------------------------------------------------------------------


def judge_content_type(value: str | None, url: str) -> tuple[bool, Finding | None]:
    """Whether to read the body as OpenMetrics, and a ``scrape-content-type`` finding when ``value``
    is not a valid exposition Content-Type. The format is the one Prometheus 3 would pick."""
    problem, openmetrics = _content_type_problem(value)
    if problem is None:
        return openmetrics, None
    read_as = "OpenMetrics" if openmetrics else "text 0.0.4"
    message = f"{problem}; read as {read_as}. Expected {_EXPECTED}"
    return openmetrics, Finding.of(rules.SCRAPE_CONTENT_TYPE, message, location=Location(url))


def _content_type_problem(value: str | None) -> tuple[str | None, bool]:
    if value is None or not value.strip():
        return f"no Content-Type: {_REFUSED}", False
    parsed = HeaderRegistry()("content-type", value)
    if parsed.defects:
        return f"Content-Type {value!r} cannot be parsed: {_REFUSED}", False
    # The registry builds the header class at run time; it is a ContentTypeHeader for this name.
    header = cast(ContentTypeHeader, parsed)
    media = header.content_type
    if media not in _VALID_VERSIONS:
        return f"Content-Type {value!r} is not a Prometheus exposition type: {_REFUSED}", False
    openmetrics = media == _OPENMETRICS
    version = header.params.get("version")
    charset = header.params.get("charset")
    prometheus_reads = f"Prometheus 3 reads {media} as {'OpenMetrics' if openmetrics else 'text 0.0.4'}"
    if version is None:
        return f"Content-Type {value!r} has no version: {prometheus_reads}, but other scrapers may not", openmetrics
    if version not in _VALID_VERSIONS[media]:
        return f"Content-Type {value!r}: unknown version {version!r}; {prometheus_reads}", openmetrics
    if charset is not None and charset.lower() != "utf-8":
        return f"Content-Type {value!r}: exposition text is UTF-8, not {charset}", openmetrics
    return None, openmetrics


# --- pod mapping ------------------------------------------------------------------------------------

_POD_RESOURCE = ("k8s.pod.name", "k8s_pod_name")
_NAMESPACE_RESOURCE = ("k8s.namespace.name", "k8s_namespace_name")


class PodMapping:
    """Counts the series prometheus-adapter could not map to a Pod: no ``pod`` and ``namespace``
    labels, and no resource attributes that would become them."""

    def __init__(self) -> None:
        self.series = 0
        self.unmapped = 0
        self.examples: list[str] = []

    def observe(self, request: ExportMetricsServiceRequest) -> None:
        for resource_metrics in request.resource_metrics:
            keys = {attribute.key for attribute in resource_metrics.resource.attributes}
            resource_pod = any(key in keys for key in _POD_RESOURCE)
            resource_namespace = any(key in keys for key in _NAMESPACE_RESOURCE)
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is None:
                        continue
                    for point in getattr(metric, kind).data_points:
                        self.series += 1
                        labels = {attribute.key for attribute in point.attributes}
                        if (resource_pod or "pod" in labels) and (resource_namespace or "namespace" in labels):
                            continue
                        self.unmapped += 1
                        if len(self.examples) < _EXAMPLES and metric.name not in self.examples:
                            self.examples.append(metric.name)

    def finding(self, url: str) -> Finding | None:
        if not self.unmapped:
            return None
        examples = ", ".join(self.examples)
        message = (
            f"{self.unmapped} of {self.series} series (e.g. {examples}) have no pod and namespace labels, and the"
            " target reports no k8s.pod.name/k8s.namespace.name: prometheus-adapter cannot map them to Pods, so an"
            " HPA on them shows <unknown>. Add the labels at scrape time with a kubernetes_sd_configs relabel"
            " (__meta_kubernetes_namespace -> namespace, __meta_kubernetes_pod_name -> pod), or set the resource"
            " attributes k8s.pod.name and k8s.namespace.name"
        )
        return Finding.of(rules.POD_MAPPING, message, location=Location(url), count=self.unmapped)


__all__ = ["ACCEPT", "FetchOptions", "PodMapping", "check_url", "is_url", "judge_content_type", "scrape"]
