"""Streamed OTLP/JSON: a document (or JSON line) too large to decode whole, read one resource record at a time.

A large document is read with ijson (yajl's C parser) one resource record at a time, and the
records are decoded as a small document of their own, so errors, IDs and unknown fields are handled
exactly as for a document read whole. Only the record index in an error is translated back.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, BinaryIO

import ijson

from otel_contract.inputs._capture import Capture
from otel_contract.otlp import FACTS, InputError, Signal, parse_document

MAX_JSON_RECORD = 32 * 1024 * 1024
"""The largest resource record (one item of ``resourceMetrics``/``resourceSpans``/``resourceLogs``)
of a streamed OTLP/JSON document: records are decoded one at a time, at about 13 times their size."""

# A streamed document becomes one request per this many bytes of resource records.
_CHUNK_BYTES = 4 * 1024 * 1024
# Where a streamed document must name its signal: its first top-level key is found in this window.
_KEY_WINDOW = 64 * 1024


def _mib(size: int) -> str:
    return f"{size / 2**20:g} MiB"


class _RecordTooLarge(Exception):
    """Raised from under ijson's read when one resource record has taken more than MAX_JSON_RECORD bytes."""


class _RecordSource(io.RawIOBase):
    """The bytes of one streamed document for ijson: ``start`` (already read), then the rest of ``stream``,
    or with ``line_only`` the rest of the current line. Counts the bytes of the record being read and
    of the request being gathered."""

    def __init__(self, stream: BinaryIO, start: bytes, *, line_only: bool) -> None:
        super().__init__()
        self._stream = stream
        self._pending = memoryview(start)
        self._line_only = line_only
        self._ended = False
        self._consumed = 0
        self._record_start = 0
        self._chunk_start = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._pending:
            size = min(len(buffer), len(self._pending))
            buffer[:size] = self._pending[:size]
            self._pending = self._pending[size:]
        elif self._ended:
            return 0
        else:
            data = self._stream.readline(len(buffer)) if self._line_only else self._stream.read(len(buffer))
            if not data or (self._line_only and data.endswith(b"\n")):
                self._ended = True
            size = len(data)
            buffer[:size] = data
        self._consumed += size
        if self._consumed - self._record_start > MAX_JSON_RECORD:
            raise _RecordTooLarge
        return size

    def head(self) -> bytes:
        """The first ``_KEY_WINDOW`` bytes (fewer in a shorter document), handed back: reading starts
        again at the first byte. Called before any other read."""
        start = bytes(self._pending)
        self._pending = memoryview(b"")
        buffer = bytearray(max(0, _KEY_WINDOW - len(start)))
        filled = 0
        while filled < len(buffer) and (size := self.readinto(memoryview(buffer)[filled:])):
            filled += size
        self._pending = memoryview(start + bytes(buffer[:filled]))
        self._consumed = 0
        return bytes(self._pending[:_KEY_WINDOW])

    def record_read(self) -> None:
        self._record_start = self._consumed

    def chunk_full(self) -> bool:
        if self._consumed - self._chunk_start < _CHUNK_BYTES:
            return False
        self._chunk_start = self._consumed
        return True


_TOP_LEVEL_SIGNALS: Mapping[str, Signal] = MappingProxyType(
    {key: signal for signal, facts in FACTS.items() for key in facts.json_keys}
)
_EVENT_TYPES: Mapping[str, str] = MappingProxyType(
    {"start_array": "an array", "string": "a string", "boolean": "a boolean", "null": "null", "number": "a number"}
)


def _ijson_reason(error: Exception) -> str:
    """yajl's message, which spans lines (a picture of where it stopped), as its first line."""
    message = error.args[0] if error.args else error
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return str(message).strip().splitlines()[0].strip() if str(message).strip() else type(error).__name__


def _document_key(head: bytes, source: str, line: int | None, signal: Signal | None) -> str:
    """The top-level key of a streamed document that holds its resource records, from its first bytes."""
    keys = ", ".join(facts.json_keys[0] for facts in FACTS.values())
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(head)):
            if prefix:
                continue
            if event in _EVENT_TYPES:
                raise InputError(
                    source, line, f"not an OTLP JSON document: expected an object, found {_EVENT_TYPES[event]}"
                )
            if event == "map_key" and value in _TOP_LEVEL_SIGNALS:
                found = _TOP_LEVEL_SIGNALS[value]
                if signal is not None and found is not signal:
                    raise InputError(
                        source, line, f"expected an OTLP {signal} document, found {FACTS[found].json_keys[0]}"
                    )
                return str(value)
            if event == "end_map":
                break
    except ijson.JSONError as err:
        if "premature EOF" not in _ijson_reason(err):
            raise InputError(source, line, f"invalid JSON: {_ijson_reason(err)}") from None
        where = f"in the first {_KEY_WINDOW // 1024} KiB of a document streamed for its size"
        raise InputError(
            source, line, f"not an OTLP JSON document: none of the top-level keys {keys} {where}"
        ) from None
    raise InputError(source, line, f"not an OTLP JSON document: none of the top-level keys {keys}")


def _stream_document(records: _RecordSource, source: str, line: int | None, signal: Signal | None) -> Iterator[Capture]:
    """A document (or JSON line) too large to decode whole, as requests of about ``_CHUNK_BYTES`` each."""
    key = _document_key(records.head(), source, line, signal)
    chunk: list[Any] = []
    first = 0  # the index in the document of the chunk's first record
    emitted = False
    try:
        for record in ijson.items(records, f"{key}.item", use_float=True):
            chunk.append(record)
            records.record_read()
            if records.chunk_full():
                yield _streamed_capture(key, chunk, first, source, line)
                emitted = True
                first += len(chunk)
                chunk = []
    except _RecordTooLarge:
        reason = (
            f"{key}[{first + len(chunk)}] is over {_mib(MAX_JSON_RECORD)}: a document this large is read one"
            " resource record at a time; split the record into several, or capture JSON lines or protobuf"
        )
        raise InputError(source, line, reason) from None
    except ijson.JSONError as err:
        count = first + len(chunk)
        after = f" after {key}[{count - 1}]" if count else ""
        reason = f"invalid JSON{after}: {_ijson_reason(err)}"
        if "trailing garbage" in reason:
            reason += "; several requests need one document per line (JSON lines)"
        raise InputError(source, line, reason) from None
    if chunk or not emitted:
        yield _streamed_capture(key, chunk, first, source, line)


def _streamed_capture(key: str, records: list[Any], first: int, source: str, line: int | None) -> Capture:
    try:
        found, request = parse_document({key: records}, source=source, line=line, signal=None)
    except InputError as err:
        # The records were decoded as a document of their own: number them as the whole document does.
        def shift(index: re.Match[str]) -> str:
            return f"{key}[{first + int(index[1])}]"

        reason = re.sub(rf"(?<![\w.]){re.escape(key)}\[(\d+)\]", shift, err.reason, count=1)
        raise InputError(err.source, err.line, reason) from None
    name = source if line is None else f"{source}:{line}"
    return Capture(name, found, request, None, line=line or 0)
