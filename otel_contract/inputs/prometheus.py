"""Prometheus text exposition (format 0.0.4) and OpenMetrics 1.0 text read into OTLP metrics export requests.

Parsing is ``prometheus_client``'s (``prometheus_client.parser`` for 0.0.4,
``prometheus_client.openmetrics.parser`` for OpenMetrics); the mapping to OTLP follows the
OpenTelemetry spec "Prometheus and OpenMetrics Compatibility", section "Prometheus Metric points to
OTLP" (https://opentelemetry.io/docs/specs/otel/compatibility/prometheus_and_openmetrics/):

* Metric Metadata: the OTLP name is the Prometheus name, unaltered: a counter is named after its
  sample (``foo_total`` stays ``foo_total``; a 0.0.4 counter exposed as ``foo`` stays ``foo``);
  HELP becomes the description, OpenMetrics UNIT the unit (``seconds`` -> ``s``, ``ratio`` -> ``1``,
  ``foo_per_bar`` -> ``foo/bar``), TYPE goes to ``metadata`` as ``prometheus.type``.
* Counters: monotonic cumulative Sum. Gauges and Unknown-typed (0.0.4 untyped): Gauge. Info and
  StateSet: non-monotonic cumulative Sum. Histograms: explicit-bounds Histogram from
  ``_bucket{le}``/``_count``/``_sum``. Summaries: Summary. A histogram or summary series without
  ``_count`` is dropped, as are GaugeHistograms (Dropped Types); each drop is a finding.
* Start Time: ``_created`` (OpenMetrics) becomes ``start_time_unix_nano``; without it the start time
  is unknown (0). In text 0.0.4 a ``foo_created`` series is a gauge of its own, as Prometheus stores it.
* Exemplars (OpenMetrics, on counters and histogram buckets): OTLP exemplars; ``trace_id`` and
  ``span_id`` labels become the IDs, other labels filtered attributes.
* Instrumentation Scope: ``otel_scope_name``/``otel_scope_version`` (and ``otel_scope_schema_url``,
  which the SDK exporters add) labels become the scope; ``otel_scope_info`` labels its attributes.
  Points without them get this reader's scope.
* Resource Attributes: the ``target`` info metric (``target_info``) is dropped and its labels become
  resource attributes, unaltered (``k8s_pod_name`` stays ``k8s_pod_name``); ``job`` and ``instance``
  labels identify the target as a scrape's target does, so they become ``service.name`` and
  ``service.instance.id`` instead of point attributes, and a target_info with the same job and
  instance describes exactly those series.

Every other label becomes a string attribute, in label order. Samples without a timestamp are stamped
with the time reading started.

An input is read twice when it holds ``target_info``: first ``scan_targets`` picks out the target and
scope info lines (no other line is parsed), then ``read_exposition`` parses family by family and
emits an export request whenever ``max_points`` data points are ready, so a large exposition never
becomes one giant request and every request carries the resource of the whole exposition. A family
larger than five requests' worth of samples is parsed in parts (``_Parts``), so that not even one
family is held whole.

Errors: ``InputError`` naming the source and, when the parser tells which line it choked on, the line.
"""

from __future__ import annotations

import codecs
import io
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, BinaryIO, TextIO, cast

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Metric,
    ResourceMetrics,
    ScopeMetrics,
)
from prometheus_client.metrics_core import Metric as Family
from prometheus_client.openmetrics.parser import _parse_sample as _parse_openmetrics_line
from prometheus_client.openmetrics.parser import text_fd_to_metric_families as _parse_openmetrics
from prometheus_client.parser import _parse_sample as _parse_text_line
from prometheus_client.parser import text_fd_to_metric_families as _parse_text
from prometheus_client.samples import Sample

import otel_contract
from otel_contract.findings import Finding
from otel_contract.inputs._prom_mapping import (
    SCOPE_NAME,
    SCOPE_SCHEMA_URL,
    SCOPE_VERSION,
    Attributes,
    FamilyContext,
    MappedPoint,
    ScopeKey,
    TargetKey,
    map_family,
)
from otel_contract.inputs.otlp import Capture
from otel_contract.otlp import InputError, Signal

MAX_POINTS = 2000
"""Data points per export request read from an exposition."""

SCOPE = "otel_contract.inputs.prometheus"
"""The instrumentation scope of points that name none: this reader, which translated them."""

_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_EOF = "# EOF"
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Targets:
    """What an exposition's ``target_info`` and ``otel_scope_info`` say, read before its metrics.

    ``resources``: target_info labels by the (job, instance) labels they carried; ``scopes``:
    otel_scope_info labels by (otel_scope_name, otel_scope_version).
    """

    resources: Mapping[TargetKey, Attributes] = field(default_factory=lambda: MappingProxyType({}))
    scopes: Mapping[tuple[str, str], Attributes] = field(default_factory=lambda: MappingProxyType({}))

    def resource(self, target: TargetKey) -> Attributes:
        """The target_info labels for series of ``target``: a target_info without job/instance describes
        every series of the exposition, one with them only the series with the same job and instance."""
        shared = self.resources.get((None, None), ())
        return shared if target == (None, None) else shared + self.resources.get(target, ())


# --- public API -------------------------------------------------------------------------------------


def parse_exposition(
    text: str,
    source: str,
    *,
    service_name: str | None = None,
    time_unix_nano: int | None = None,
    openmetrics: bool | None = None,
) -> ExportMetricsServiceRequest:
    """One export request holding every metric of ``text``.

    ``service_name`` becomes the resource's ``service.name``; ``time_unix_nano`` stamps samples that
    carry no timestamp (default: now); ``openmetrics`` picks the parser (default: OpenMetrics when the
    text ends in ``# EOF``). What the mapping drops (see the module docstring) is left out without a
    finding; ``read_exposition`` reports it. Raises ``InputError`` when ``text`` is not exposition text.
    """
    data = io.BytesIO(text.encode("utf-8"))
    if openmetrics is None:
        openmetrics = is_openmetrics(data)
    targets = scan_targets(data, source, openmetrics=openmetrics)
    data.seek(0)
    resource = {"service.name": service_name} if service_name is not None else _EMPTY
    (capture,) = read_exposition(
        data,
        source,
        openmetrics=openmetrics,
        targets=targets,
        resource=resource,
        time_unix_nano=time_unix_nano,
        max_points=None,
    )
    request = capture.request
    assert isinstance(request, ExportMetricsServiceRequest)
    return request


def is_openmetrics(stream: BinaryIO) -> bool:
    """Whether a seekable stream's text ends in OpenMetrics' ``# EOF`` line; the position is kept."""
    position = stream.tell()
    try:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(max(0, size - 4096))
        tail = stream.read().rstrip(b" \t\r\n")
    finally:
        stream.seek(position)
    return tail.rsplit(b"\n", 1)[-1].rstrip(b"\r") == _EOF.encode()


def scan_targets(stream: BinaryIO, source: str, *, openmetrics: bool) -> Targets:
    """The target and scope info of an exposition, from its ``target_info``/``otel_scope_info`` lines only.

    Reads ``stream`` to its end; errors name the line as ``read_exposition`` would.
    """
    lines: Iterable[tuple[int | None, str]] = (
        (number, line) for number, line in _numbered(stream, source) if _INFO_LINE.match(line)
    )
    if openmetrics:  # the OpenMetrics parser insists on its end marker, which the filter took out
        lines = [*lines, (None, _EOF + "\n")]
    resources: dict[TargetKey, dict[str, str]] = {}
    scopes: dict[tuple[str, str], dict[str, str]] = {}
    feed = _Feed(lines, track_counters=False)
    for family in _families(feed, source, openmetrics):
        if _is_target_info(family):
            for sample in family.samples:
                labels = dict(sample.labels)
                key = (labels.pop("job", None), labels.pop("instance", None))
                resources.setdefault(key, {}).update(labels)
        elif _is_scope_info(family):
            for sample in family.samples:
                labels = dict(sample.labels)
                scope = (labels.pop(SCOPE_NAME, ""), labels.pop(SCOPE_VERSION, ""))
                for label in ("job", "instance", SCOPE_SCHEMA_URL):
                    labels.pop(label, None)
                scopes.setdefault(scope, {}).update(labels)
    return Targets(
        MappingProxyType({key: tuple(labels.items()) for key, labels in resources.items()}),
        MappingProxyType({key: tuple(labels.items()) for key, labels in scopes.items()}),
    )


def read_exposition(
    stream: BinaryIO,
    source: str,
    *,
    openmetrics: bool,
    targets: Targets | None = None,
    resource: Mapping[str, str] = _EMPTY,
    time_unix_nano: int | None = None,
    max_points: int | None = MAX_POINTS,
) -> Iterator[Capture]:
    """The exposition in ``stream`` as export requests of at most ``max_points`` data points (None: one request).

    ``targets`` comes from ``scan_targets`` over the same text; ``resource`` holds attributes every
    resource starts from (a scrape's ``service.instance.id``, say), which a series' job/instance and
    then target_info override. At least one capture is yielded, an empty request (no resource) for an
    exposition with no samples, so a reader's findings always have a capture to travel with. Findings about dropped
    series travel with the capture that would have held them (or the next one).
    """
    if max_points is not None and max_points < 1:
        raise ValueError(f"max_points must be positive, got {max_points}")
    now = time.time_ns() if time_unix_nano is None else time_unix_nano
    return _read(stream, source, openmetrics, targets or Targets(), resource, now, max_points)


def _read(
    stream: BinaryIO,
    source: str,
    openmetrics: bool,
    targets: Targets,
    resource: Mapping[str, str],
    now: int,
    max_points: int | None,
) -> Iterator[Capture]:
    context = FamilyContext(source, now, openmetrics, [])
    parts = _Parts(
        _numbered(stream, source),
        openmetrics,
        max_family_samples=None if max_points is None else max_points * _PART_REQUESTS,
    )
    batch = _Batch(targets, resource)
    emitted = False
    for part in parts:
        feed = _Feed(part, track_counters=not openmetrics)
        for family in _families(feed, source, openmetrics):
            if _is_target_info(family) or _is_scope_info(family):
                continue  # read by scan_targets: resource and scope attributes, not metrics
            counter_name = feed.counter_name(family.name) if family.type == "counter" else None
            for mapped in map_family(family, context, counter_name=counter_name):
                batch.add(mapped)
                if max_points is not None and batch.points >= max_points:
                    yield _capture(source, batch, context)
                    emitted = True
                    batch = _Batch(targets, resource)
            if not (feed.exhausted and parts.continued):  # the family's last part: what it dropped is known
                context.settle()
    if batch.points or context.findings or not emitted:
        yield _capture(source, batch, context)


def _capture(source: str, batch: _Batch, context: FamilyContext) -> Capture:
    findings: tuple[Finding, ...] = tuple(context.findings)
    context.findings.clear()
    return Capture(source, Signal.METRICS, batch.finish(), None, findings, exposition=True)


# --- lines ------------------------------------------------------------------------------------------

# The lines scan_targets needs: target and scope info samples and their HELP/TYPE/UNIT comments.
_INFO_LINE = re.compile(
    r"\s*(?:(?:target|otel_scope)_info[\s{]|#\s+(?:HELP|TYPE|UNIT)\s+(?:target|otel_scope)(?:_info)?\s)"
)
# A text 0.0.4 counter's TYPE line; the name may be quoted (UTF-8 names) with \\, \" and \n escapes.
_COUNTER_TYPE = re.compile(r'\s*#\s+TYPE\s+(?P<name>"(?:[^"\\]|\\.)*"|\S+)\s+counter\s*$')
_ESCAPE = re.compile(r"\\(.)")


def _numbered(stream: BinaryIO, source: str) -> Iterator[tuple[int | None, str]]:
    """The lines of ``stream`` decoded as UTF-8, with their 1-based numbers."""
    for number, raw in enumerate(stream, 1):
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(source, number, f"not UTF-8 text (byte 0x{raw[err.start]:02x})") from None
        if line:
            yield number, line


# A family is parsed in parts of this many requests' worth of samples (10,000 by default).
_PART_REQUESTS = 5
# A HELP/TYPE/UNIT line and the family it names (quoted UTF-8 names with their escapes).
_METADATA = re.compile(r'\s*#\s+(?P<kind>HELP|TYPE|UNIT)\s+(?P<name>"(?:[^"\\]|\\.)*"|\S+)(?:\s+(?P<type>\S+))?')
# The name a sample line starts with (an unquoted name: quoted names are never cut between).
_SAMPLE_NAME = re.compile(r"\s*([^\s{#]+)")
# The sample names of a family of each type, as the parsers tell a family's samples from the next
# family's (prometheus_client.parser and .openmetrics.parser).
_TEXT_SUFFIXES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"summary": ("", "_count", "_sum"), "histogram": ("_count", "_sum", "_bucket")}
)
_OPENMETRICS_SUFFIXES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "counter": ("_total", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "histogram": ("_count", "_sum", "_bucket", "_created"),
        "gaugehistogram": ("_gcount", "_gsum", "_bucket"),
        "info": ("_info",),
    }
)
# Labels that tell the samples of one point apart rather than one series from another.
_POINT_LABELS = frozenset({"le", "quantile"})


class _Parts:
    """The lines of an exposition in parts, each parsed on its own, so that no family is held whole.

    A parser yields a family only once it has read all of it, holding every sample; a family of
    millions of samples would sit in memory at once. So once a family has ``max_family_samples``
    samples in the current part, the part ends before the next sample of another series (never
    inside a series: a histogram's buckets, count and sum stay together), and the next part starts
    with the family's HELP/TYPE/UNIT lines again, then its remaining samples. Families below the
    size are never cut. ``continued`` says whether the part just read ended inside a family.

    Two checks of OpenMetrics' parser see one part at a time: a family name repeated after a
    cut family, and a series whose samples are split by a cut, are not caught there.
    """

    def __init__(
        self, lines: Iterator[tuple[int | None, str]], openmetrics: bool, *, max_family_samples: int | None
    ) -> None:
        self._lines = lines
        self._openmetrics = openmetrics
        self._max = max_family_samples
        self._parse_sample = _parse_openmetrics_sample if openmetrics else _parse_text_sample
        self._next: tuple[int | None, str] | None = None
        self._family: str | None = None  # the family the HELP/TYPE lines named, while its samples go on
        self._names: frozenset[str] = frozenset()  # its sample names
        self._metadata: list[tuple[int | None, str]] = []  # its HELP/TYPE/UNIT lines
        self._samples = 0  # its samples in this part
        self._series: frozenset[tuple[str, str]] | None = None  # the series of the sample before
        self._done = False
        self.continued = False

    def __iter__(self) -> Iterator[Iterator[tuple[int | None, str]]]:
        while not self._done:
            yield self._part()

    def _part(self) -> Iterator[tuple[int | None, str]]:
        if self.continued:
            yield from self._metadata
        self.continued = False
        self._samples = 0
        self._series = None
        while True:
            item = self._next if self._next is not None else next(self._lines, None)
            self._next = None
            if item is None:
                self._done = True
                return
            if self._cut_before(item):
                self._next = item
                self.continued = True
                if self._openmetrics:
                    yield None, _EOF + "\n"  # the parser insists on its end marker
                return
            yield item

    def _cut_before(self, item: tuple[int | None, str]) -> bool:
        """Whether the part ends before ``item``; keeps track of the family and series it is in."""
        line = item[1]
        stripped = line.strip()
        if stripped.startswith("#"):
            self._metadata_line(item)
            return False
        if not stripped or self._family is None or self._max is None:
            return False
        match = _SAMPLE_NAME.match(line)
        if match is None or match[1] not in self._names:
            self._family = None  # the parser starts another family here: nothing to repeat
            return False
        self._samples += 1
        if self._samples <= self._max:
            return False
        try:
            sample = self._parse_sample(stripped)
        except (ValueError, IndexError, KeyError):
            return False  # the parser will say what is wrong with it
        family = self._family
        series = frozenset((k, v) for k, v in sample.labels.items() if k not in _POINT_LABELS and k != family)
        previous, self._series = self._series, series
        return previous is not None and series != previous

    def _metadata_line(self, item: tuple[int | None, str]) -> None:
        line = item[1]
        if line.strip() == _EOF:
            self._family = self._max = None  # nothing may follow it
            return
        match = _METADATA.match(line)
        if match is None:
            return
        name = match["name"]
        if name != self._family:
            self._family = None if name.startswith('"') else name
            self._names = frozenset({name})
            self._metadata = []
            self._samples = 0
            self._series = None
        self._metadata.append(item)
        if match["kind"] == "TYPE" and match["type"] is not None:
            table = _OPENMETRICS_SUFFIXES if self._openmetrics else _TEXT_SUFFIXES
            self._names = frozenset(name + suffix for suffix in table.get(match["type"], ("",)))


def _parse_text_sample(line: str) -> Sample:
    # The parsers' own sample parsing (private, but pinned), so a series is told as they tell it.
    return cast(Sample, _parse_text_line(line))  # type: ignore[no-untyped-call]


def _parse_openmetrics_sample(line: str) -> Sample:
    return cast(Sample, _parse_openmetrics_line(line))  # type: ignore[no-untyped-call]


def _declared_counter(line: str) -> str | None:
    match = _COUNTER_TYPE.match(line)
    if match is None:
        return None
    name = match["name"]
    if name.startswith('"'):
        name = _ESCAPE.sub(lambda escape: "\n" if escape[1] == "n" else escape[1], name[1:-1])
    return name


class _Feed:
    """The lines handed to a parser, remembering which one it is on, for errors and counter names.

    A parser yields a family only after reading the line that starts the next one (or the end), so
    when a family arrives the line just read belongs to the next family; ``counter_name`` takes that
    into account. The 0.0.4 parser names every counter sample ``<family>_total``, whatever the
    exposition said, so the name a counter was declared with comes from its TYPE line instead.
    """

    def __init__(self, lines: Iterable[tuple[int | None, str]], *, track_counters: bool) -> None:
        self._lines = lines
        self._track_counters = track_counters
        self._declared: dict[str, str] = {}
        self._undo: tuple[str, str | None] | None = None
        self.number: int | None = None
        self.exhausted = False

    def __iter__(self) -> Iterator[str]:
        for number, line in self._lines:
            self.number = number
            self._undo = None
            if self._track_counters and line.lstrip().startswith("#"):
                declared = _declared_counter(line)
                if declared is not None:
                    family = declared.removesuffix("_total")  # the parser's family name
                    self._undo = (family, self._declared.get(family))
                    self._declared[family] = declared
            yield line
        self.exhausted = True

    def counter_name(self, family: str) -> str | None:
        """The name the counter family that just arrived was declared with."""
        declared = self._declared.get(family)
        if not self.exhausted and self._undo is not None and self._undo[0] == family:
            declared = self._undo[1]  # the line just read re-declared the name for the next family
        return declared


def _families(feed: _Feed, source: str, openmetrics: bool) -> Iterator[Family]:
    """The parser's families, its complaints turned into ``InputError``."""
    # Both parsers only iterate what they are given.
    lines = cast(TextIO, feed)
    parsed: Iterator[Family] = iter(
        _parse_openmetrics(lines) if openmetrics else _parse_text(lines)  # type: ignore[no-untyped-call]
    )
    while True:
        try:
            family = next(parsed)
        except StopIteration:
            return
        except (ValueError, IndexError, KeyError) as error:  # how the parsers reject text
            raise _parse_error(error, feed, source, openmetrics) from None
        yield family


def _parse_error(error: Exception, feed: _Feed, source: str, openmetrics: bool) -> InputError:
    detail = " ".join(str(error).split())
    if len(detail) > 160:
        detail = detail[:157] + "..."
    what = "OpenMetrics text" if openmetrics else "Prometheus text exposition format"
    reason = f"not {what}" + (f": {detail}" if detail else "")
    # Checks of a whole family run when the next family starts, and the end-of-input checks after the
    # last line: only a complaint about the line just read has a line number to give.
    about_a_line = not feed.exhausted and not _raised_in(error.__traceback__, "build_metric")
    return InputError(source, feed.number if about_a_line else None, reason)


def _raised_in(traceback: TracebackType | None, function: str) -> bool:
    while traceback is not None:
        if traceback.tb_frame.f_code.co_name == function:
            return True
        traceback = traceback.tb_next
    return False


def _is_target_info(family: Family) -> bool:
    return family.name == "target_info" or (family.name == "target" and family.type == "info")


def _is_scope_info(family: Family) -> bool:
    return family.name == "otel_scope_info" or (family.name == "otel_scope" and family.type == "info")


# --- requests ---------------------------------------------------------------------------------------


def _attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


class _Batch:
    """One export request being filled: a resource per target, a scope per scope, a metric per name and type."""

    def __init__(self, targets: Targets, resource: Mapping[str, str]) -> None:
        self._targets = targets
        self._base = resource
        self._request = ExportMetricsServiceRequest()
        self._resources: dict[TargetKey, ResourceMetrics] = {}
        self._scopes: dict[tuple[TargetKey, ScopeKey], ScopeMetrics] = {}
        self._metrics: dict[tuple[TargetKey, ScopeKey, str, str], Any] = {}
        self.points = 0

    def add(self, mapped: MappedPoint) -> None:
        spec = mapped.metric
        key = (mapped.target, mapped.scope, spec.name, spec.kind)
        points = self._metrics.get(key)
        if points is None:
            metric: Metric = self._scope(mapped.target, mapped.scope).metrics.add()
            metric.name = spec.name
            metric.description = spec.description
            metric.unit = spec.unit
            metric.metadata.append(_attribute("prometheus.type", spec.prometheus_type))
            data = getattr(metric, spec.kind)
            if spec.kind == "sum":
                data.aggregation_temporality = _CUMULATIVE
                data.is_monotonic = spec.monotonic
            elif spec.kind == "histogram":
                data.aggregation_temporality = _CUMULATIVE
            else:
                data.SetInParent()  # a gauge or summary without points must still say what it is
            points = self._metrics[key] = data.data_points
        points.append(mapped.point)
        self.points += 1

    def finish(self) -> ExportMetricsServiceRequest:
        return self._request  # with no resource when nothing was read: no data, nothing to judge

    def _scope(self, target: TargetKey, scope: ScopeKey) -> ScopeMetrics:
        scope_metrics = self._scopes.get((target, scope))
        if scope_metrics is None:
            scope_metrics = self._scopes[(target, scope)] = self._resource(target).scope_metrics.add()
            if scope is None:
                scope_metrics.scope.name = SCOPE
                scope_metrics.scope.version = otel_contract.__version__
            else:
                name, version, schema_url = scope
                scope_metrics.scope.name = name
                scope_metrics.scope.version = version
                scope_metrics.schema_url = schema_url
                scope_metrics.scope.attributes.extend(
                    _attribute(k, v) for k, v in self._targets.scopes.get((name, version), ())
                )
        return scope_metrics

    def _resource(self, target: TargetKey) -> ResourceMetrics:
        resource_metrics = self._resources.get(target)
        if resource_metrics is None:
            resource_metrics = self._resources[target] = self._request.resource_metrics.add()
            attributes = dict(self._base)
            job, instance = target
            if job is not None:
                attributes["service.name"] = job
            if instance is not None:
                attributes["service.instance.id"] = instance
            attributes.update(self._targets.resource(target))
            if attributes:  # an empty resource stays unset, as an SDK without resource leaves it
                resource_metrics.resource.attributes.extend(_attribute(k, v) for k, v in attributes.items())
        return resource_metrics


__all__ = ["MAX_POINTS", "SCOPE", "Targets", "is_openmetrics", "parse_exposition", "read_exposition", "scan_targets"]
