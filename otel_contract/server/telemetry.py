"""The sidecar's self-telemetry: OpenTelemetry SDK instruments, read as Prometheus text and optionally pushed over OTLP.

Instruments carry the exact names of ``contracts/otel-contract-self.yaml`` (``_total`` included,
units whose Prometheus suffix is already in the name or empty), so the Prometheus exporter's
OTel-to-Prometheus translation leaves them unchanged and the OTLP push carries the same names: both
outputs validate against the self contract.

The MeterProvider and the Prometheus registry are private to each ``SelfTelemetry``: nothing touches
the global MeterProvider or ``prometheus_client.REGISTRY``, so tests and embedders can run several.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import UNDERSCORES

import otel_contract
from otel_contract.findings import Finding
from otel_contract.otlp import Signal
from otel_contract.rules import Action
from otel_contract.server.intake import Refusal, Transport
from otel_contract.server.receivers import OnEngineError

# prometheus_client's CONTENT_TYPE_LATEST says version=1.0.0; generate_latest writes 0.0.4 text.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_P = "otel_contract_"

# The SDK's default bounds are for milliseconds; these suit seconds from sub-millisecond engine
# runs up to export timeouts.
_PROCESSING_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_EXPORT_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The counters request_processed adds to, in the order of its sums: (name, description).
_SIGNAL_SUMS = (
    ("received_data_points_total", "Data points, spans or log records received"),
    ("forwarded_data_points_total", "Data points, spans or log records forwarded"),
    ("rejected_data_points_total", "Items rejected by the contract (partial_success)"),
    ("flagged_data_points_total", "Occurrences of findings whose action is not reject"),
)

# Bounds the OTLP exporter's retries so that shutdown cannot hang on an unreachable endpoint.
_OTLP_TIMEOUT_SECONDS = 5
_SHUTDOWN_TIMEOUT_MILLIS = 5_000


class SelfTelemetry:
    """The sidecar's own metrics; every method is safe to call from any thread."""

    def __init__(self, *, instance_id: str, otlp_endpoint: str | None = None, otlp_interval: float = 60.0) -> None:
        self._registry = CollectorRegistry()
        readers: list[MetricReader] = [
            PrometheusMetricReader(disable_target_info=True, scope_info_enabled=False, registry=self._registry)
        ]
        if otlp_endpoint:
            readers.append(_otlp_reader(otlp_endpoint, otlp_interval))
        resource = Resource.create(
            {
                "service.name": "otel-contract",
                "service.version": otel_contract.__version__,
                "service.instance.id": instance_id,
            }
        )
        provider = MeterProvider(metric_readers=readers, resource=resource)
        self._provider: MeterProvider | None = provider
        # A scrape pushes collected data into the Prometheus collector's queue and pops it again;
        # two concurrent scrapes could pop each other's data, so scrapes take turns.
        self._scrape_lock = threading.Lock()
        self._queues: dict[str, tuple[Callable[[], int], Callable[[], int]]] = {}
        self._contract: tuple[str, str] | None = None
        # The per-request counts are plain sums here, read by observable counters when metrics are
        # collected: an SDK counter's add() costs ~12 us, five of them per request were most of what
        # self-telemetry cost. Keyed by label values; entries are only ever added and incremented.
        self._sums_lock = threading.Lock()
        self._by_signal: dict[Signal, list[int]] = {}  # one sum per _SIGNAL_SUMS entry
        self._finding_sums: dict[tuple[str, str, str], int] = {}  # (signal, rule, level) -> occurrences
        self._requests: dict[tuple[Signal, Transport], int] = {}  # accepted requests by signal and protocol
        self._signal_labels = {signal: {"signal": signal.value} for signal in Signal}
        self._build_instruments(provider)

    def _build_instruments(self, provider: MeterProvider) -> None:
        meter = provider.get_meter("otel_contract", otel_contract.__version__)
        for index, (name, description) in enumerate(_SIGNAL_SUMS):
            meter.create_observable_counter(_P + name, [self._observe_signal_sum(index)], "{data_point}", description)
        meter.create_observable_counter(
            _P + "findings_total", [self._observe_findings], "{finding}", "Finding occurrences"
        )
        meter.create_observable_counter(
            _P + "received_requests_total",
            [self._observe_requests],
            "{request}",
            "Export requests the engine processed, by signal and protocol",
        )
        self._duration = meter.create_histogram(
            _P + "request_duration_seconds",
            "s",
            "Time to normalize and validate one export request",
            explicit_bucket_boundaries_advisory=_PROCESSING_BOUNDS,
        )
        self._refused = meter.create_counter(
            _P + "refused_requests_total", "{request}", "Export requests the receiver refused"
        )
        self._engine_errors = meter.create_counter(
            _P + "engine_errors_total", "{request}", "Requests on which the contract engine failed (a bug)"
        )
        self._sent_requests = meter.create_counter(
            _P + "exporter_sent_requests_total", "{request}", "Export attempts downstream, by outcome"
        )
        self._sent_items = meter.create_counter(
            _P + "exporter_sent_data_points_total", "{data_point}", "Items in export attempts downstream"
        )
        self._downstream_rejected = meter.create_counter(
            _P + "exporter_downstream_rejected_data_points_total", "{data_point}", "Items the downstream rejected"
        )
        self._export_duration = meter.create_histogram(
            _P + "exporter_duration_seconds",
            "s",
            "Duration of one export attempt downstream",
            explicit_bucket_boundaries_advisory=_EXPORT_BOUNDS,
        )
        self._shim_points = meter.create_counter(
            _P + "shim_data_points_total",
            "{data_point}",
            "Data points the compat shims added beside the canonical ones",
        )
        self._reloads = meter.create_counter(_P + "contract_reloads_total", "{reload}", "Contract reloads")
        meter.create_observable_gauge(
            _P + "exporter_queue_size", [self._observe_size], "{request}", "Requests waiting in the sending queue"
        )
        meter.create_observable_gauge(
            _P + "exporter_queue_capacity", [self._observe_capacity], "{request}", "Capacity of the sending queue"
        )
        # Unit "1" maps to no Prometheus suffix, so the name stays *_info.
        meter.create_observable_gauge(_P + "contract_info", [self._observe_contract], "1", "The active contract")

    # --- recording ---------------------------------------------------------------------------------

    def request_processed(
        self,
        signal: Signal,
        *,
        protocol: Transport,
        received: int,
        forwarded: int,
        rejected: int,
        findings: Iterable[Finding],
        seconds: float,
    ) -> None:
        """One export request, carried by ``protocol``, went through the engine."""
        flagged = 0
        with self._sums_lock:
            for finding in findings:
                self._add_finding((signal.value, finding.rule.slug, finding.level.label), finding.count)
                # The engine reports only findings it rejected or flagged (ignored ones never appear).
                if finding.action is not Action.REJECT:
                    flagged += finding.count
            # Zeros count too: every signal's series exists from its first request, so rate() works.
            sums = self._by_signal.get(signal)
            if sums is None:
                sums = self._by_signal[signal] = [0] * len(_SIGNAL_SUMS)
            sums[0] += received
            sums[1] += forwarded
            sums[2] += rejected
            sums[3] += flagged
            key = (signal, protocol)
            self._requests[key] = self._requests.get(key, 0) + 1
        self._duration.record(seconds, self._signal_labels[signal])

    def _add_finding(self, key: tuple[str, str, str], count: int) -> None:
        """Called with ``_sums_lock`` held."""
        self._finding_sums[key] = self._finding_sums.get(key, 0) + count

    def shims_evaluated(self, *, points: int, findings: Iterable[Finding]) -> None:
        """The compat shims added ``points`` to a request and reported ``findings`` (expired-shim, ...)."""
        self._shim_points.add(points)
        with self._sums_lock:
            for finding in findings:
                self._add_finding(("metrics", finding.rule.slug, finding.level.label), finding.count)

    def request_refused(self, signal: Signal, reason: Refusal, protocol: Transport) -> None:
        """A receiver refused a request as a whole, for ``reason``."""
        self._refused.add(1, {"signal": signal.value, "reason": reason.value, "protocol": protocol.value})

    def engine_failed(self, signal: Signal, action: OnEngineError) -> None:
        """The engine failed on a request, which was then rejected or forwarded as ``on_engine_error`` says."""
        self._engine_errors.add(1, {"signal": signal.value, "action": action.value})

    def for_exporter(self, exporter: str) -> _ExporterTelemetry:
        """The ``SendObserver`` of one exporter's sender: its metrics carry ``exporter=<name>``."""
        return _ExporterTelemetry(self, exporter)

    def exported(self, exporter: str, signal: Signal, items: int, outcome: str, seconds: float) -> None:
        """One export attempt ended: ``success``, ``retried`` (will be tried again) or ``failed`` (given up)."""
        self._sent_requests.add(1, {"exporter": exporter, "outcome": outcome})
        labels = {"exporter": exporter, "signal": signal.value, "outcome": outcome}
        self._sent_items.add(items, labels)
        self._export_duration.record(seconds, labels)

    def downstream_rejected(self, exporter: str, signal: Signal, items: int) -> None:
        """The downstream accepted a request but rejected ``items`` of it (its partial_success)."""
        self._downstream_rejected.add(items, {"exporter": exporter, "signal": signal.value})

    def observe_queue(self, exporter: str, size: Callable[[], int], capacity: Callable[[], int]) -> None:
        """Report ``exporter``'s sending queue size and capacity, read at each collection."""
        self._queues = {**self._queues, exporter: (size, capacity)}  # replaced, never mutated: read unlocked

    def contract_reloaded(self, ok: bool) -> None:
        self._reloads.add(1, {"result": "success" if ok else "failure"})

    def set_contract(self, name: str, version: str) -> None:
        """Make ``name@version`` the active contract; the info series of the previous one disappears."""
        self._contract = (name, version)

    # --- reading -----------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The current metrics in Prometheus text format 0.0.4 (serve with ``CONTENT_TYPE``)."""
        with self._scrape_lock:
            # UNDERSCORES keeps every name a legacy (0.0.4-valid) Prometheus name.
            return generate_latest(self._registry, escaping=UNDERSCORES)

    def shutdown(self) -> None:
        """Push the last OTLP export (if configured) and stop; idempotent."""
        with self._scrape_lock:
            if self._provider is not None:
                self._provider.shutdown(timeout_millis=_SHUTDOWN_TIMEOUT_MILLIS)
                self._provider = None

    # --- observable callbacks -----------------------------------------------------------------------

    def _observe_signal_sum(self, index: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            with self._sums_lock:
                labels = self._signal_labels
                return [Observation(sums[index], labels[signal]) for signal, sums in self._by_signal.items()]

        return observe

    def _observe_findings(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._sums_lock:
            sums = list(self._finding_sums.items())
        return [
            Observation(count, {"signal": signal, "rule": rule, "level": level})
            for (signal, rule, level), count in sums
        ]

    def _observe_requests(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._sums_lock:
            sums = list(self._requests.items())
        return [
            Observation(count, {"signal": signal.value, "protocol": protocol.value})
            for (signal, protocol), count in sums
        ]

    def _observe_size(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(size(), {"exporter": name}) for name, (size, _) in self._queues.items()]

    def _observe_capacity(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(capacity(), {"exporter": name}) for name, (_, capacity) in self._queues.items()]

    def _observe_contract(self, _options: CallbackOptions) -> Iterable[Observation]:
        # Observable gauges report only what the callback returns, so the old label set is gone
        # from the next collection on.
        contract = self._contract
        return [Observation(1, {"contract": contract[0], "version": contract[1]})] if contract else []


class _ExporterTelemetry:
    """``SelfTelemetry`` as one exporter's ``SendObserver``."""

    def __init__(self, telemetry: SelfTelemetry, exporter: str) -> None:
        self._telemetry = telemetry
        self._exporter = exporter

    def exported(self, signal: Signal, items: int, outcome: str, seconds: float) -> None:
        self._telemetry.exported(self._exporter, signal, items, outcome, seconds)

    def downstream_rejected(self, signal: Signal, items: int) -> None:
        self._telemetry.downstream_rejected(self._exporter, signal, items)


def _otlp_reader(endpoint: str, interval: float) -> MetricReader:
    # Imported here: the gRPC OTLP exporter is only needed when a push endpoint is configured.
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

    exporter = OTLPMetricExporter(endpoint=endpoint, insecure=True, timeout=_OTLP_TIMEOUT_SECONDS)
    return PeriodicExportingMetricReader(exporter, export_interval_millis=interval * 1000)
