"""Consumers that move batches from the sending queue to an exporter, retrying with backoff.

Each consumer leases up to ``max_batch_items`` / ``max_batch_bytes`` of queued requests of one
signal, sends them as one request, and settles the lease: ack on success, on a permanent error, or
when the retry budget is spent (the last two logged at ERROR and reported as ``failed``); release
when the sender stops mid-retry, so a persistent queue keeps the batch for the next start.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from otel_contract.durations import parse_duration
from otel_contract.otlp import Signal
from otel_contract.server._batch import Batch
from otel_contract.server.exporters import Exporter, ExportError, ExportResult
from otel_contract.server.queue import Lease, SendingQueue

_log = logging.getLogger("otel_contract.exporter")

# How long an idle consumer waits on the queue before looking at the stop flag again.
_IDLE_POLL = 0.25
# How often a drain says how it is going: a shutdown waiting on a dead downstream must not look hung.
_PROGRESS_SECONDS = 5.0


@dataclass(frozen=True)
class RetrySettings:
    """``exporter.retry_on_failure``, with the Collector's defaults and meaning (seconds).

    The n-th wait is ``initial_interval * multiplier**(n-1)``, capped at ``max_interval``, then
    randomized by ``± randomization_factor``; a downstream's RetryInfo lengthens it. A batch is
    dropped when the next attempt would start more than ``max_elapsed_time`` after the first
    (0: never). With ``enabled`` false a failed batch is dropped at once.
    """

    enabled: bool = True
    initial_interval: float = 5.0
    max_interval: float = 30.0
    max_elapsed_time: float = 300.0
    multiplier: float = 1.5
    randomization_factor: float = 0.5

    def __post_init__(self) -> None:
        problems = []
        for name in ("initial_interval", "max_interval"):
            if not _is_number(getattr(self, name)) or not getattr(self, name) > 0:
                problems.append(f"{name}: must be a positive number of seconds, got {getattr(self, name)!r}")
        if not _is_number(self.max_elapsed_time) or self.max_elapsed_time < 0:
            problems.append(f"max_elapsed_time: must be 0 (no limit) or more seconds, got {self.max_elapsed_time!r}")
        if not _is_number(self.multiplier) or self.multiplier < 1:
            problems.append(f"multiplier: must be at least 1, got {self.multiplier!r}")
        if not _is_number(self.randomization_factor) or not 0 <= self.randomization_factor <= 1:
            problems.append(f"randomization_factor: must be between 0 and 1, got {self.randomization_factor!r}")
        if not problems and self.max_interval < self.initial_interval:
            problems.append(
                f"max_interval: must be at least initial_interval ({self.initial_interval}), got {self.max_interval}"
            )
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> RetrySettings:
        """``exporter.retry_on_failure`` as the pipeline config writes it (durations such as ``5s``); a key
        not set keeps the default above. Raises ``ValueError`` naming every value refused."""
        defaults = cls()
        return cls(
            enabled=raw.get("enabled", defaults.enabled),
            initial_interval=parse_duration(raw.get("initial_interval", defaults.initial_interval)),
            max_interval=parse_duration(raw.get("max_interval", defaults.max_interval)),
            max_elapsed_time=parse_duration(raw.get("max_elapsed_time", defaults.max_elapsed_time)),
            multiplier=float(raw.get("multiplier", defaults.multiplier)),
            randomization_factor=float(raw.get("randomization_factor", defaults.randomization_factor)),
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class SendObserver(Protocol):
    def exported(self, signal: Signal, items: int, outcome: str, seconds: float) -> None:
        """One export attempt of ``items`` took ``seconds``: ``success``; ``retried`` (failed, will be
        tried again); or ``failed`` (dropped for good: a permanent error or the retry budget spent)."""

    def downstream_rejected(self, signal: Signal, items: int) -> None:
        """The downstream accepted a request but rejected ``items`` of it (``partial_success``)."""


class NullObserver:
    def exported(self, signal: Signal, items: int, outcome: str, seconds: float) -> None:
        pass

    def downstream_rejected(self, signal: Signal, items: int) -> None:
        pass


class _Backoff:
    """The Collector's exponential backoff (cenkalti/backoff): the interval grows by ``multiplier`` up to
    ``max_interval``, and each wait is drawn from ``interval * [1 - factor, 1 + factor]``."""

    def __init__(self, settings: RetrySettings, uniform: Callable[[], float]) -> None:
        self._settings = settings
        self._uniform = uniform  # a draw from [0, 1)
        self._interval = settings.initial_interval

    def next(self) -> float:
        factor = self._settings.randomization_factor
        wait = self._interval * (1 + factor * (2 * self._uniform() - 1))
        self._interval = min(self._interval * self._settings.multiplier, self._settings.max_interval)
        return wait


class QueuedSender:
    """``consumers`` threads exporting from ``queue``; the queue and exporter stay the caller's to close."""

    def __init__(
        self,
        queue: SendingQueue,
        exporter: Exporter,
        retry: RetrySettings,
        *,
        consumers: int,
        observer: SendObserver | None = None,
        max_batch_items: int = 8192,
        max_batch_bytes: int = 4 * 2**20,
        flush_timeout: float = 0.0,
        rng: random.Random | None = None,
        destination: str = "the exporter",
    ) -> None:
        if consumers < 1 or max_batch_items < 1 or max_batch_bytes < 1:
            raise ValueError("consumers, max_batch_items and max_batch_bytes must be positive")
        self._queue = queue
        self._exporter = exporter
        self._retry = retry
        self._consumers = consumers
        self._observer: SendObserver = observer if observer is not None else NullObserver()
        self._max_items = max_batch_items
        self._max_bytes = max_batch_bytes
        # Forwarding requests one by one costs a gRPC call each; waiting up to flush_timeout for more
        # sends one call per max_batch_items instead. The client is answered at enqueue, so only the
        # delivery downstream waits.
        self._flush_timeout = flush_timeout
        self._rng = rng if rng is not None else random.Random()
        self._rng_lock = threading.Lock()  # random.Random is not documented as thread-safe
        self._stop = threading.Event()
        self._settled = threading.Condition()  # notified whenever a lease is acked or released
        self._threads: list[threading.Thread] = []
        self._destination = destination
        self._last_failure: str | None = None  # of the latest attempt; None once one succeeds

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("the sender is already started")
        for index in range(self._consumers):
            thread = threading.Thread(target=self._run, name=f"otel-contract-sender-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def drain(self, deadline_seconds: float) -> int:
        """Close the queue, keep sending until it is empty or ``deadline_seconds`` pass, then stop.

        Returns the requests left undelivered; a persistent queue keeps them for the next start, an
        in-memory one loses them (logged at ERROR). Progress is logged every few seconds meanwhile. A
        batch waiting to be retried is put back at once when the deadline passes; an attempt in flight
        then is let finish, which can overrun the deadline by up to the exporter's timeout.
        """
        self._queue.close()
        deadline = time.monotonic() + max(0.0, deadline_seconds)
        with self._settled:
            while self._queue.size() and (remaining := deadline - time.monotonic()) > 0:
                self._log_progress(remaining)
                self._settled.wait_for(lambda: self._queue.size() == 0, timeout=min(_PROGRESS_SECONDS, remaining))
        self.stop()
        left = self._queue.size()
        if left:
            self._log_undelivered(left, deadline_seconds)
        return left

    def _log_progress(self, remaining: float) -> None:
        failing = f", which fails ({self._last_failure})" if self._last_failure else ""
        _log.info(
            "draining: %d request(s) (%d item(s)) queued for %s%s; giving up in %.0f s",
            self._queue.size(),
            self._queue.pending_items(),
            self._destination,
            failing,
            remaining,
        )

    def _log_undelivered(self, left: int, deadline_seconds: float) -> None:
        items = self._queue.pending_items()
        why = f"the last attempt failed: {self._last_failure}" if self._last_failure else "it was still sending"
        if self._queue.path:
            _log.warning(
                "drain deadline of %gs passed with %d request(s) (%d item(s)) undelivered to %s (%s); "
                "they stay in %s for the next start",
                deadline_seconds,
                left,
                items,
                self._destination,
                why,
                self._queue.path,
            )
            return
        _log.error(
            "lost %d request(s) holding %d item(s) (data points, spans or log records) that clients were told "
            "were accepted: the drain deadline of %gs passed before %s took them (%s). To keep undelivered "
            "requests across a restart, persist the queue: exporter.sending_queue.storage.directory in the "
            "pipeline config, or --queue-dir; or raise shutdown.drain_timeout",
            left,
            items,
            deadline_seconds,
            self._destination,
            why,
        )

    def stop(self) -> None:
        """Stop the consumers now; batches waiting to be retried go back to the queue."""
        self._stop.set()
        for thread in self._threads:
            thread.join()

    # --- consumers -------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                lease = self._queue.take(
                    self._queue.capacity,
                    self._max_bytes,
                    _IDLE_POLL,
                    max_items=self._max_items,
                    linger=self._flush_timeout,
                )
            except Exception:
                # A failing disk under a persistent queue: keep the consumer alive and try again.
                _log.exception("cannot take requests from the sending queue")
                self._stop.wait(_IDLE_POLL)
                continue
            if lease is None:
                if self._queue.size() == 0 and not self._queue.accepting():
                    return  # closed and empty: no work can come any more
                continue
            try:
                self._deliver(lease)
            except Exception:
                # A bug must not kill the consumer with the lease held: put it back and go on.
                _log.exception("sending %d %s item(s) failed unexpectedly; requeued", lease.items, lease.signal)
                with contextlib.suppress(ValueError):  # unless it was settled before the failure
                    self._settle(self._queue.release, lease)

    def _deliver(self, lease: Lease) -> None:
        batch = Batch(lease.signal, lease.payload, lease.items)
        backoff = _Backoff(self._retry, self._random)
        first = time.monotonic()
        while True:
            started = time.monotonic()
            try:
                result = self._exporter.export(batch)
            except ExportError as err:
                seconds = time.monotonic() - started
                if not err.retryable:
                    self._give_up(lease, batch, seconds, f"permanent error, {err}")
                    return
                if not self._retry.enabled:
                    self._give_up(lease, batch, seconds, f"retry disabled, {err}")
                    return
                elapsed = time.monotonic() - first
                # The downstream's RetryInfo is a floor: waiting less would only be refused again.
                wait = max(backoff.next(), err.retry_after or 0.0)
                budget = self._retry.max_elapsed_time
                if budget and elapsed + wait > budget:
                    self._give_up(lease, batch, seconds, f"retries exhausted after {elapsed:.3g}s, last {err}")
                    return
                self._last_failure = str(err)
                self._observer.exported(batch.signal, batch.items, "retried", seconds)
                if self._stop.is_set():  # stopping: no retry is coming, so say none is
                    self._settle(self._queue.release, lease)
                    return
                _log.info(
                    "exporting %d %s item(s) failed (%s); retrying in %.3gs", batch.items, batch.signal, err, wait
                )
                if self._stop.wait(wait):
                    # Stopping: the batch goes back to the queue (and stays on disk, if persistent).
                    self._settle(self._queue.release, lease)
                    return
                continue
            except Exception as err:
                # An exporter bug, not a downstream answer: the same bytes would fail the same way.
                seconds = time.monotonic() - started
                self._give_up(lease, batch, seconds, f"the exporter failed: {err!r}", exc_info=True)
                return
            self._last_failure = None
            self._settle(self._queue.ack, lease)
            self._succeeded(batch, result, time.monotonic() - started)
            return

    def _give_up(self, lease: Lease, batch: Batch, seconds: float, why: str, *, exc_info: bool = False) -> None:
        self._settle(self._queue.ack, lease)
        self._observer.exported(batch.signal, batch.items, "failed", seconds)
        _log.error("dropped %d %s item(s): %s", batch.items, batch.signal, why, exc_info=exc_info)

    def _random(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def _succeeded(self, batch: Batch, result: ExportResult, seconds: float) -> None:
        self._observer.exported(batch.signal, batch.items, "success", seconds)
        if result.rejected:
            self._observer.downstream_rejected(batch.signal, result.rejected)
            _log.warning(
                "the downstream rejected %d of %d %s item(s): %s",
                result.rejected,
                batch.items,
                batch.signal,
                result.message or "no reason given",
            )

    def _settle(self, settle: _Settle, lease: Lease) -> None:
        settle(lease)
        with self._settled:
            self._settled.notify_all()


class _Settle(Protocol):
    def __call__(self, lease: Lease, /) -> None: ...


__all__ = ["NullObserver", "QueuedSender", "RetrySettings", "SendObserver"]
