"""What travels from the receiver to the exporters: one export request's bytes and its item count."""

from __future__ import annotations

from dataclasses import dataclass

from otel_contract.otlp import Signal


@dataclass(frozen=True, slots=True)
class Batch:
    """A serialized ``Export<Signal>ServiceRequest`` and how many data points, spans or log records it holds.

    Serialized requests of one signal concatenate into one valid request (protobuf merges repeated
    fields), which is how the sender batches without decoding.
    """

    signal: Signal
    payload: bytes
    items: int

    @property
    def size(self) -> int:
        return len(self.payload)
