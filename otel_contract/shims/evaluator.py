"""Compat shims evaluated on the OTLP stream: the legacy series a recording rule would record.

``compile_shims`` turns the contract's ``compat:`` section into plans (``check`` reports what does
not compile); a ``ShimEvaluator`` keeps the samples the plans read and, for each request, returns the
shims' output as OTLP ``ResourceMetrics`` to send beside the canonical series. Pure: no clock and no
I/O; the evaluation time is the newest input sample of the request, "today" is passed in.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from otel_contract import rules
from otel_contract.contract.model import Contract, Shim
from otel_contract.findings import Finding
from otel_contract.prometheus_names import contract_series, is_counter
from otel_contract.rules import Action
from otel_contract.shims._emit import Recorded, emit
from otel_contract.shims._plan import Element, InputMetric, Node, ScalarOp, Selector, compile_expression
from otel_contract.shims._series import (
    Labels,
    Series,
    SeriesKind,
    SeriesStore,
    metrics_of,
    observations,
)

DEFAULT_MAX_SERIES = 50_000
DEFAULT_MAX_SAMPLES = 2_048  # per series: a 30-minute range at one sample per second fits


@dataclass(frozen=True, slots=True, eq=False)  # identity: plans hold compiled regexes and mappings
class CompiledShim:
    shim: Shim
    plan: Node
    recorded: Recorded  # the series it emits: the shim's declared unit, if any, over the inferred one
    reads: Mapping[str, int]  # series name -> how far back (ms) the plan reads it
    kinds: Mapping[str, SeriesKind]  # series name -> the metric (and part of it) it comes from

    @property
    def record(self) -> str:
        return self.shim.record

    @property
    def read(self) -> str:
        """The one series name the plan reads."""
        (name,) = self.reads
        return name

    @property
    def metrics(self) -> frozenset[str]:
        """The contract metrics (OTLP names) the shim reads."""
        return frozenset(kind.metric for kind in self.kinds.values())

    def expired(self, today: date) -> bool:
        return self.shim.expires < today

    @property
    def plain_copy(self) -> PlainCopy | None:
        """What the shim is when it only re-creates one metric's points under its own name (a bare
        selector of a gauge's or sum's values, perhaps times or divided by a number); None when its
        output depends on other series or on earlier samples (matchers, ranges, offsets, aggregations)."""
        plan, factor = self.plan, 1.0
        if (
            isinstance(plan, ScalarOp)
            and plan.op in ("*", "/")
            and plan.scalar
            and not (plan.op == "/" and plan.scalar_left)
        ):
            factor = plan.scalar if plan.op == "*" else 1 / plan.scalar
            plan = plan.expr
        if not isinstance(plan, Selector) or plan.matchers or plan.offset or plan.range:
            return None
        series = self.kinds[plan.name]
        if series.part != "value" or {"job", "instance"} & set(self.shim.labels):
            return None  # job and instance move into the resource: not a copy's attributes
        return PlainCopy(series.metric, factor)


@dataclass(frozen=True, slots=True)
class PlainCopy:
    """A shim that copies the contract metric ``metric`` (OTLP name) under the shim's record name, each
    value times ``factor``, with the shim's labels added: what the Collector's ``copy_metric`` can do."""

    metric: str
    factor: float


def shim_inputs(contract: Contract) -> Mapping[str, tuple[SeriesKind, InputMetric]]:
    """Every Prometheus series name the contract's metrics yield (``prometheus_names.contract_series``:
    the contract's names and their translations), for ``compile_shim``."""
    specs = {
        metric.name: InputMetric(
            metric.type.value, metric.unit, is_counter(metric) if metric.monotonic is None else metric.monotonic
        )
        for metric in contract.metrics
    }
    return {name: (series, specs[series.metric]) for name, series in contract_series(contract.metrics).items()}


def compile_shim(shim: Shim, inputs: Mapping[str, tuple[SeriesKind, InputMetric]]) -> CompiledShim:
    """Raises ``ValueError`` for invalid PromQL, ``UnsupportedExpression`` for PromQL outside the subset."""
    plan = compile_expression(shim.expr, inputs)
    reads: dict[str, int] = {}
    for name, reach in plan.series_names():
        reads[name] = max(reach, reads.get(name, 0))
    unit = shim.unit if shim.unit is not None else plan.output.unit
    description = f"Compat shim, expires {shim.expires.isoformat()}: {shim.expr}"
    recorded = Recorded(shim.record, unit, plan.output.counter, description, shim.labels)
    kinds = {name: inputs[name][0] for name in reads}
    return CompiledShim(shim, plan, recorded, MappingProxyType(reads), MappingProxyType(kinds))


def compile_shims(contract: Contract) -> tuple[CompiledShim, ...]:
    inputs = shim_inputs(contract)
    return tuple(compile_shim(shim, inputs) for shim in contract.compat)


@dataclass(frozen=True, slots=True)
class ShimResult:
    """The output of one request: ``payload`` is a serialized ``ExportMetricsServiceRequest`` (empty
    when nothing was emitted) holding ``points`` data points; ``fed`` names the shims whose input
    arrived; ``findings`` are expired-shim findings, one per evaluation of an expired shim."""

    payload: bytes = b""
    points: int = 0
    fed: frozenset[str] = frozenset()
    findings: tuple[Finding, ...] = ()


class ShimEvaluator:
    """Keeps the samples the shims read and evaluates them on each request; thread-safe.

    Memory is bounded: at most ``max_series`` series of ``max_samples`` samples, each sample kept
    only as long as some shim's range (plus offset, or the 5-minute lookback) reaches back.

    What a request costs does not grow with the series kept: a shim is evaluated over the output
    groups of the series the request fed only (the others cannot yield a fresh element), and the
    store evicts without walking its series (``SeriesStore``).
    """

    def __init__(
        self,
        shims: Sequence[CompiledShim],
        *,
        contract: str = "",
        max_series: int = DEFAULT_MAX_SERIES,
        max_samples: int = DEFAULT_MAX_SAMPLES,
    ) -> None:
        self._shims = tuple(shims)
        self._contract = contract
        retention: dict[str, int] = {}
        wanted: dict[str, dict[str, SeriesKind]] = {}
        inputs_by_metric: dict[str, list[CompiledShim]] = {}
        for shim in self._shims:
            for name, reach in shim.reads.items():
                retention[name] = max(reach, retention.get(name, 0))
            for name, kind in shim.kinds.items():
                wanted.setdefault(kind.metric, {})[name] = kind
                inputs_by_metric.setdefault(kind.metric, []).append(shim)
        self._wanted = wanted
        self._shims_by_metric = {metric: tuple(dict.fromkeys(shims)) for metric, shims in inputs_by_metric.items()}
        self._store = SeriesStore(MappingProxyType(retention), max_series, max_samples)
        # A plan reads one series name (it is a chain over one selector): its grouping in the store.
        self._groupings = {shim: (shim.read, self._store.group_by(shim.read, shim.plan.group)) for shim in self._shims}
        self._round = 0
        self._lock = threading.Lock()

    @property
    def shims(self) -> tuple[CompiledShim, ...]:
        return self._shims

    @property
    def metrics(self) -> frozenset[str]:
        """The metrics (OTLP names) the shims read: nothing else of a request is looked at."""
        return frozenset(self._wanted)

    @property
    def untracked_series(self) -> int:
        """Input samples not recorded because their series are new and ``max_series`` was reached."""
        return self._store.untracked

    def evaluate(self, request: ExportMetricsServiceRequest, *, today: date) -> ShimResult:
        """Record the request's input samples, then evaluate every shim it fed at its newest sample."""
        if not self._wanted:
            return ShimResult()
        with self._lock:
            self._round += 1
            fed, newest, added = self._observe(request)
            if not fed:
                return ShimResult()
            outputs: list[tuple[CompiledShim, list[Element], int]] = []
            findings: list[Finding] = []
            for shim in self._shims:
                if shim.record not in fed:
                    continue
                now = newest[shim.record]
                # Only a group with a series fed now can yield a fresh element: the plan reads just those.
                name, grouping = self._groupings[shim]
                fresh = (series for series in added.get(name, {}).values() if series.updated == self._round)
                view = _View({name: self._store.group_members(name, grouping, fresh)})
                elements = [element for element in shim.plan.evaluate(view, now, self._round) if element.fresh]
                outputs.append((shim, elements, now))
                if shim.expired(today):
                    findings.append(_expired(shim, today))
            latest = max(newest.values())
            for name in {name for shim, _, _ in outputs for name in shim.reads}:
                self._store.evict(name, latest)
        payload, points = emit([(shim.recorded, elements, now) for shim, elements, now in outputs], self._contract)
        return ShimResult(payload, points, frozenset(fed), tuple(findings))

    def _observe(
        self, request: ExportMetricsServiceRequest
    ) -> tuple[set[str], dict[str, int], dict[str, dict[int, Series]]]:
        fed: set[str] = set()
        newest: dict[str, int] = {}
        added: dict[str, dict[int, Series]] = {}  # by series name, the series that took a sample, by id
        for wanted, metric, resource in metrics_of(request, self._wanted):
            latest = -1
            for observation in observations(metric, wanted, resource):
                series = self._store.add(observation, self._round)
                if series is not None:
                    latest = max(latest, observation.time)
                    added.setdefault(observation.name, {})[id(series)] = series
            if latest < 0:
                continue
            for shim in self._shims_by_metric[metric.name]:
                fed.add(shim.record)
                newest[shim.record] = max(latest, newest.get(shim.record, latest))
        return fed, newest, added


@dataclass(frozen=True, slots=True)
class _View:
    """The part of the store a plan reads for one request (``_plan.Store``)."""

    series: dict[str, dict[Labels, Series]]


def _expired(shim: CompiledShim, today: date) -> Finding:
    return Finding.of(
        rules.EXPIRED_SHIM,
        f"shim {shim.record!r} expired on {shim.shim.expires.isoformat()} (today is {today.isoformat()}) and still"
        f" emits; owner {shim.shim.owner or 'unknown'}: migrate its consumers, then remove it",
        metric=shim.record,
        action=Action.FLAG,
    )


def absent_input(shim: CompiledShim, when: str) -> Finding:
    """``shim-input-absent``: none of the shim's input metrics arrived ``when`` ("in the last 600s")."""
    inputs = ", ".join(sorted(shim.metrics))
    return Finding.of(
        rules.SHIM_INPUT_ABSENT,
        f"shim {shim.record!r} emitted nothing: its input {inputs} did not arrive {when};"
        " dashboards reading the legacy series go blank",
        metric=shim.record,
        action=Action.FLAG,
    )
