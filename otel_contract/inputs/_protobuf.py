"""Binary protobuf captures: the signal a file name hints at, and a guess at the signal of bytes that name none."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from types import MappingProxyType

from google.protobuf.message import DecodeError, Message

from otel_contract.engine import check_request
from otel_contract.inputs._capture import Capture
from otel_contract.otlp import FACTS, InputError, OtlpRequest, Signal, record_count

_HINT_WORDS: Mapping[Signal, frozenset[str]] = MappingProxyType(
    {
        Signal.METRICS: frozenset({"metric", "metrics"}),
        Signal.TRACES: frozenset({"trace", "traces", "span", "spans"}),
        Signal.LOGS: frozenset({"log", "logs"}),
    }
)


def _signal_hint(path: str) -> Signal | None:
    """The signal a file name names: a word such as ``metrics`` (``dump.metrics.pb``, ``otlp-spans.binpb``)
    or a name starting with a plural (``metrics2.pb``, ``logsdump.pb``); None if it names none or several."""
    stem = os.path.splitext(os.path.basename(path))[0].lower()
    words = [word for word in re.split(r"[^a-z]+", stem) if word]
    hinted = {
        signal
        for signal, names in _HINT_WORDS.items()
        for word in words
        if word in names or any(word.startswith(name) for name in names if name.endswith("s"))
    }
    return hinted.pop() if len(hinted) == 1 else None


def _decode_error_reason(err: DecodeError) -> str:
    # upb names the message type it tried, which only restates the signal already in the reason.
    return str(err).split(" with type ", 1)[0] or "Error parsing message"


def _has_unknown_fields(request: Message) -> bool:
    # DiscardUnknownFields is recursive; comparing sizes avoids walking the tree here.
    stripped = type(request)()
    stripped.CopyFrom(request)
    stripped.DiscardUnknownFields()
    return stripped.ByteSize() != request.ByteSize()


def _guess_protobuf(raw: bytes, source: str) -> tuple[Signal, OtlpRequest]:
    """Guess the signal of a binary request that neither the caller nor the file name names.

    The bytes are parsed as metrics, then traces, then logs. A parse is a candidate when its
    top-level repeated field is non-empty, and candidates rank, the first in that order winning a tie:

    1. re-serializes to the input byte for byte and has no unknown fields anywhere;
    2. re-serializes to the input byte for byte;
    3. has no unknown fields anywhere (an encoder that orders fields otherwise or writes defaults).

    A wrong-signal parse that gets that far almost always holds unknown fields (the other signal's
    fields), and protobuf serializes unknown fields after the known ones, so the bytes change unless
    they happened to come last; ranking 1 above 2 keeps even that case from beating the right parse.
    Nothing ranked means the file is rejected; so does an empty request, which every signal parses.
    """
    candidates: list[tuple[Signal, OtlpRequest]] = []
    empty_parse = False
    decode_reason = "no resource records, only unknown fields"
    for signal, request_type in ((s, f.request_type) for s, f in FACTS.items()):
        try:
            request = request_type.FromString(raw)
        except DecodeError as err:
            decode_reason = _decode_error_reason(err)
            continue
        if record_count(request) > 0:
            candidates.append((signal, request))
        elif not _has_unknown_fields(request):
            empty_parse = True
    round_trips = [(s, r) for s, r in candidates if r.SerializeToString() == raw]
    ranked = [(s, r) for s, r in round_trips if not _has_unknown_fields(r)] + round_trips
    ranked += [(s, r) for s, r in candidates if not _has_unknown_fields(r)]
    if ranked:
        return ranked[0]
    hint = "pass --signal metrics|traces|logs or name the signal in the file name (e.g. dump.metrics.pb)"
    if candidates:
        raise InputError(source, None, f"not recognisably an OTLP metrics, traces or logs request; {hint}")
    if empty_parse:
        raise InputError(source, None, f"an empty OTLP request: cannot tell its signal; {hint}")
    raise InputError(source, None, f"not an OTLP metrics/traces/logs request: {decode_reason}")


def _protobuf_capture(raw: bytes, source: str, signal: Signal | None) -> Capture:
    if signal is None:
        signal, _ = _guess_protobuf(raw, source)
    else:
        # Checked, not parsed: the engine reads the bytes itself.
        try:
            check_request(signal, raw)
        except DecodeError as err:
            raise InputError(source, None, f"not an OTLP {signal} request: {_decode_error_reason(err)}") from None
    return Capture(source, signal, None, raw)


def _protobuf_capture_or_none(raw: bytes, source: str, signal: Signal | None) -> Capture | None:
    try:
        return _protobuf_capture(raw, source, signal)
    except InputError:
        return None
