"""One export request, whichever protocol carried it: contract pipeline -> sending queue -> the answer.

The gRPC and the HTTP receiver both hand a request's protobuf bytes to ``Intake.export``, so a request
gets the same result either way: the same forwarded bytes, the same findings, the same
``partial_success``. They differ only in how they read a request and spell a refusal: ``Refused``
carries the reason (also the self-telemetry label) and the message, and each receiver maps the reason
to its status (``Refusal.retryable`` ones to UNAVAILABLE or 503 with a retry delay).
"""

from __future__ import annotations

import enum
import logging
import time
from typing import Protocol

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2

from otel_contract.findings import Finding
from otel_contract.otlp import Signal
from otel_contract.pipeline import Pipeline, Result
from otel_contract.server._batch import Batch
from otel_contract.server.processor import response_for
from otel_contract.server.receivers import MIB, OnEngineError

_log = logging.getLogger("otel_contract.receiver")

# An exception's text in a status message is cut here: grpc-message travels in a header.
_MAX_FAILURE_TEXT = 300


class Transport(enum.StrEnum):
    """The protocol that carried a request: the ``protocol`` label of the receiver's self-telemetry."""

    GRPC = "grpc"
    HTTP = "http"


class Refusal(enum.StrEnum):
    """Why a request was refused as a whole (not in ``partial_success``): the ``reason`` label."""

    QUEUE_FULL = "queue_full"
    SHUTTING_DOWN = "shutting_down"
    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    UNSUPPORTED = "unsupported"  # a content type or encoding the receiver does not read (HTTP only)
    ENGINE_ERROR = "engine_error"

    @property
    def retryable(self) -> bool:
        """Whether the client should send the same request again later (UNAVAILABLE, 503)."""
        return self in (Refusal.QUEUE_FULL, Refusal.SHUTTING_DOWN)


class Refused(Exception):
    """The request is refused; ``message`` tells the client why and what to do."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ReceiverObserver(Protocol):
    def request_processed(
        self,
        signal: Signal,
        *,
        protocol: Transport,
        received: int,
        forwarded: int,
        rejected: int,
        findings: tuple[Finding, ...],
        seconds: float,
    ) -> None: ...

    def request_refused(self, signal: Signal, reason: Refusal, protocol: Transport) -> None: ...

    def engine_failed(self, signal: Signal, action: OnEngineError) -> None: ...

    def shims_evaluated(self, *, points: int, findings: tuple[Finding, ...]) -> None: ...


class Admission(Protocol):
    """Where accepted batches go: the sending queue."""

    def offer(self, batch: Batch) -> bool: ...


def too_large(size: int, limit: int, setting: str) -> str:
    """The message for a request over ``limit`` bytes, naming the pipeline-config ``setting`` to raise."""
    return (
        f"request of {size / MIB:.1f} MiB exceeds the receiver limit of {limit / MIB:g} MiB; "
        f"send smaller batches or raise {setting} in the pipeline config"
    )


def retry_status(message: str, retry_after: float) -> status_pb2.Status:
    """UNAVAILABLE with ``google.rpc.RetryInfo`` in its details, where the OTLP spec puts the retry delay."""
    seconds = int(retry_after)
    retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=seconds, nanos=int((retry_after - seconds) * 1e9)))
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message)
    status.details.add().Pack(retry)
    return status


def _decode_reason(error: DecodeError) -> str:
    text = str(error) or "unparsable protobuf"
    return text[0].lower() + text[1:]


class Intake:
    """Runs the contract on a request and hands what passes to ``admission``; safe from any thread."""

    def __init__(
        self,
        processor: Pipeline,
        admission: Admission,
        observer: ReceiverObserver,
        *,
        on_engine_error: OnEngineError = OnEngineError.REJECT,
        retry_after: float = 1.0,
    ) -> None:
        self._processor = processor
        self._admission = admission
        self._observer = observer
        self._on_engine_error = on_engine_error
        self.retry_after = retry_after
        self._accepting = True

    def stop_accepting(self) -> None:
        """New requests are refused as retryable from now on (SIGTERM), on every protocol."""
        self._accepting = False

    def refuse(self, signal: Signal, protocol: Transport, reason: Refusal, message: str) -> Refused:
        """Count a refusal the receiver itself decided (too large, unsupported, unparsable JSON) and
        return the exception to raise."""
        self._observer.request_refused(signal, reason, protocol)
        return Refused(reason, message)

    def export(self, signal: Signal, request: bytes, protocol: Transport) -> bytes:
        """The serialized ``Export<Signal>ServiceResponse`` for an accepted request; raises ``Refused``."""
        if not self._accepting:
            raise self.refuse(signal, protocol, Refusal.SHUTTING_DOWN, "the sidecar is shutting down; retry")
        started = time.perf_counter()
        try:
            outcome = self._processor.process(signal, request)
        except DecodeError as error:
            raise self.refuse(
                signal, protocol, Refusal.MALFORMED, f"not an OTLP {signal} request: {_decode_reason(error)}"
            ) from None
        except Exception as error:  # an engine bug: bad input is a finding or a DecodeError
            return self._engine_failed(signal, request, error, protocol)
        return self._admit(signal, outcome, time.perf_counter() - started, protocol)

    def _engine_failed(self, signal: Signal, request: bytes, error: Exception, protocol: Transport) -> bytes:
        action = self._on_engine_error
        failure = f"{type(error).__name__}: {error}"
        if len(failure) > _MAX_FAILURE_TEXT:
            failure = failure[:_MAX_FAILURE_TEXT] + "..."
        forward = action is OnEngineError.FORWARD
        _log.error(
            "the contract engine failed on a %s request (%s); %s (on_engine_error: %s)",
            signal,
            failure,
            "forwarding it unchanged" if forward else "refusing it",
            action.value,
            exc_info=error,
        )
        self._observer.engine_failed(signal, action)
        if forward:
            self._enqueue(Batch(signal, request, 0), protocol)
            return b""
        raise self.refuse(
            signal,
            protocol,
            Refusal.ENGINE_ERROR,
            f"the contract engine failed on this {signal} request ({failure}); it was not forwarded,"
            " and resending it would fail again: a sidecar bug, see its log",
        )

    def _admit(self, signal: Signal, outcome: Result, seconds: float, protocol: Transport) -> bytes:
        if outcome.sent:
            self._enqueue(Batch(signal, outcome.to_bytes(), outcome.sent), protocol)
        self._observer.request_processed(
            signal,
            protocol=protocol,
            received=outcome.items,
            forwarded=outcome.forwarded,
            rejected=outcome.dropped,
            findings=outcome.findings,
            seconds=seconds,
        )
        if outcome.appended_items or outcome.side_findings:
            self._observer.shims_evaluated(points=outcome.appended_items, findings=outcome.side_findings)
        return response_for(signal, outcome, self._processor.label)

    def _enqueue(self, batch: Batch, protocol: Transport) -> None:
        """Queue ``batch``, or refuse the whole request as retryable when the queue is full."""
        if not self._admission.offer(batch):
            raise self.refuse(batch.signal, protocol, Refusal.QUEUE_FULL, "the sidecar's sending queue is full; retry")
