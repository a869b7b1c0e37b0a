"""Captured OTLP telemetry files: read them into export requests, write requests back out.

The format follows the file name:

* ``.pb`` / ``.binpb``: one binary protobuf export request. Binary protobuf does not say which
  message it holds, so the signal comes from ``signal=``, else from the file name, else a guess
  (see ``read_captures``).
* ``.json``: one OTLP/JSON document, the signal named by its top-level key (``resourceMetrics``,
  ``resourceSpans`` or ``resourceLogs``). The Collector's file exporter also writes JSON lines into
  files named ``.json``; those are read as JSON lines.
* ``.jsonl`` / ``.ndjson``: JSON lines as the Collector's file exporter writes them, one request
  per line, blank lines skipped, read one line at a time so a capture of any size streams.
* ``-``: standard input, sniffed: a first non-space byte ``{`` means JSON (a document or lines),
  anything else binary protobuf.

``read_capture_stream`` reads the same formats from a stream that is already open (a pipe, a
counted file), without waiting for lines a writer has not sent yet.

The signals, their wire facts and the OTLP/JSON codec are ``otel_contract.otlp``'s.

This is an edge module: it reads and writes files and does nothing else.
"""

from __future__ import annotations

import codecs
import enum
import io
import itertools
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, BinaryIO

import ijson
from google.protobuf.message import DecodeError, Message

from otel_contract.findings import Finding, Location
from otel_contract.otlp import (
    FACTS,
    InputError,
    OtlpRequest,
    Signal,
    load_json,
    parse_document,
    record_count,
    signal_of,
    to_otlp_json,
)


@dataclass(frozen=True, slots=True)
class Capture:
    """One export request read from a capture, and where it came from.

    A binary capture keeps only its bytes (``parsed`` is None): the engine parses them itself, and
    a second parse held beside them would double the memory a large request takes. ``request``
    then parses them again on each access.
    """

    source: str  # "path" or "path:LINE" for a JSON-lines record, "-" / "-:LINE" for stdin
    signal: Signal
    parsed: OtlpRequest | None  # the request, when read from JSON or text (None: parse ``raw``)
    raw: bytes | None  # the protobuf bytes as read, for .pb/.binpb files (None for JSON)
    findings: tuple[Finding, ...] = ()  # what the reader noticed about the input itself (a scrape's Content-Type)
    exposition: bool = False  # read from Prometheus text or OpenMetrics (so Prometheus naming lints apply)
    line: int = 0  # the JSON-lines record's line, when ``source`` is "path:LINE"

    @property
    def request(self) -> OtlpRequest:
        """The export request (for a binary capture, parsed from ``raw`` anew on each access)."""
        if self.parsed is not None:
            return self.parsed
        assert self.raw is not None, "a capture holds its request or its bytes"
        return FACTS[self.signal].request_type.FromString(self.raw)

    @property
    def location(self) -> Location:
        """Where findings about this request point: file and line, as editors and CI annotations want them."""
        if self.line:
            return Location(self.source.removesuffix(f":{self.line}"), self.line)
        return Location(self.source)


class _Format(enum.Enum):
    PROTOBUF = "protobuf"
    JSON = "json"
    JSON_LINES = "json lines"


_FORMATS: Mapping[str, _Format] = MappingProxyType(
    {
        ".pb": _Format.PROTOBUF,
        ".binpb": _Format.PROTOBUF,
        ".json": _Format.JSON,
        ".jsonl": _Format.JSON_LINES,
        ".ndjson": _Format.JSON_LINES,
    }
)
_KNOWN_EXTENSIONS = ", ".join(_FORMATS)
OTLP_EXTENSIONS: frozenset[str] = frozenset(_FORMATS)
"""The file extensions of OTLP captures (lower case, with the dot)."""

_STDIO = "-"
JSON_SPACE = b" \t\r\n"  # the whitespace JSON allows between tokens
# Every export request starts with its field 1 (the repeated resource records), length-delimited.
_PROTOBUF_FIRST_TAG = b"\x0a"


# --- binary protobuf -----------------------------------------------------------------------------

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


def _parse_protobuf(raw: bytes, source: str, signal: Signal | None) -> tuple[Signal, OtlpRequest]:
    if signal is not None:
        try:
            return signal, FACTS[signal].request_type.FromString(raw)
        except DecodeError as err:
            raise InputError(source, None, f"not an OTLP {signal} request: {_decode_error_reason(err)}") from None
    return _guess_protobuf(raw, source)


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
    found, _ = _parse_protobuf(raw, source, signal)  # checked here, parsed again by the engine
    return Capture(source, found, None, raw)


def _protobuf_capture_or_none(raw: bytes, source: str, signal: Signal | None) -> Capture | None:
    try:
        return _protobuf_capture(raw, source, signal)
    except InputError:
        return None


# --- reading -------------------------------------------------------------------------------------

MAX_MESSAGE_SIZE = 256 * 1024 * 1024
"""The default for the largest binary protobuf request read: protobuf's Python API parses a message
only whole, so one takes about four times its size in memory (its bytes, the engine's parse)."""

MAX_JSON_RECORD = 32 * 1024 * 1024
"""The largest resource record (one item of ``resourceMetrics``/``resourceSpans``/``resourceLogs``)
of a streamed OTLP/JSON document: records are decoded one at a time, at about 13 times their size."""

# A JSON document or line up to this size is decoded whole; a longer one is streamed by resource record.
_WHOLE_JSON = 4 * 1024 * 1024
# A streamed document becomes one request per this many bytes of resource records.
_CHUNK_BYTES = 4 * 1024 * 1024
# Where a streamed document must name its signal: its first top-level key is found in this window.
_KEY_WINDOW = 64 * 1024


def read_captures(
    path: str | os.PathLike[str],
    *,
    signal: Signal | None = None,
    stdin: BinaryIO | None = None,
    max_message_size: int = MAX_MESSAGE_SIZE,
) -> Iterator[Capture]:
    """The export requests in a capture file, lazily, in file order.

    The format follows the extension (module docstring); ``-`` reads ``stdin`` (default
    ``sys.stdin.buffer``). ``signal`` insists on one signal; for binary protobuf, which does not say,
    it is otherwise taken from the file name (``dump.metrics.pb``, ``spans-1.binpb``, ``logs.pb``)
    or guessed (``_guess_protobuf``). A binary request larger than ``max_message_size`` bytes is
    refused (``MAX_MESSAGE_SIZE``).

    Problems with the path itself (missing, a directory, an unknown extension) raise ``InputError``
    at once; problems with the content raise it while iterating, after the requests before them.
    An empty capture (nothing but white space, or a zero-byte ``.pb``) holds no request.

    A ``.json`` file is one document unless its first record fits on one line and more follow: the
    Collector writes JSON lines into ``.json`` files. That is the outcome of parsing the file whole
    and falling back to lines on an "Extra data" error, but decided from the first line, so such a
    file streams as ``.jsonl`` does.

    A document or JSON line over 4 MiB is streamed (``ijson``): its resource records are read one at
    a time and become requests of about 4 MiB of JSON each, so memory does not follow its size. Its
    signal is then its first top-level key, which must come within its first 64 KiB; keys after the
    records are not read, and a single resource record over ``MAX_JSON_RECORD`` is refused.
    """
    source = os.fspath(path)
    if source == _STDIO:
        return _read_sniffed(stdin if stdin is not None else sys.stdin.buffer, _STDIO, signal, max_message_size)
    if stat.S_ISDIR(stat_mode(source)):
        raise InputError(source, None, "is a directory, not a capture file")
    file_format = _FORMATS.get(os.path.splitext(source)[1].lower())
    if file_format is None:
        raise InputError(source, None, f"unknown capture format: expected a file ending in {_KNOWN_EXTENSIONS}, or -")
    return _read_file(source, file_format, signal, max_message_size)


def read_capture_stream(
    stream: BinaryIO,
    source: str,
    *,
    extension: str | None = None,
    signal: Signal | None = None,
    max_message_size: int = MAX_MESSAGE_SIZE,
) -> Iterator[Capture]:
    """The export requests in an open binary stream, lazily; ``source`` names it in captures and errors.

    ``extension`` (``.pb``, ``.json``, ``.jsonl``, ...) picks the format as for a file of that name;
    None sniffs it as for stdin, except that a first line holding a whole JSON document is taken as
    the first of JSON lines and yielded before the next line is read (source ``NAME:1``): a reader
    on a pipe must not wait for input the writer has not sent yet. The stream is not closed.
    ``signal`` and ``max_message_size`` as for ``read_captures``.
    """
    if extension is None:
        return _read_sniffed(stream, source, signal, max_message_size, lookahead=False)
    file_format = _FORMATS.get(extension.lower())
    if file_format is None:
        raise InputError(source, None, f"unknown capture format: expected a file ending in {_KNOWN_EXTENSIONS}, or -")
    hint = _signal_hint(source) if file_format is _Format.PROTOBUF else None
    return _read_stream(stream, source, file_format, signal or hint, max_message_size)


def stat_mode(path: str, *, missing: str = "no such file") -> int:
    """``path``'s st_mode; ``InputError`` naming the path when it is missing or cannot be read."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(path, None, missing) from None
    except OSError as err:
        raise InputError.unreadable(path, err) from None


def _read_file(source: str, file_format: _Format, signal: Signal | None, max_message_size: int) -> Iterator[Capture]:
    try:
        with open(source, "rb") as stream:
            hint = _signal_hint(source) if file_format is _Format.PROTOBUF else None
            yield from _read_stream(stream, source, file_format, signal or hint, max_message_size)
    except OSError as err:
        raise InputError.unreadable(source, err) from None


def _read_stream(
    stream: BinaryIO, source: str, file_format: _Format, signal: Signal | None, max_message_size: int
) -> Iterator[Capture]:
    if file_format is _Format.PROTOBUF:
        raw = _read_message(stream, source, max_message_size)
        if raw:  # an empty capture holds no request, in any format
            yield _protobuf_capture(raw, source, signal)
        return
    head = _read_head(stream)
    if head is None:
        return  # an empty capture (nothing but white space) holds no request, which is no error
    if file_format is _Format.JSON_LINES:
        yield from _json_lines(stream, source, signal, head)
    else:
        yield from _json_document_or_lines(stream, source, signal, head, max_message_size, protobuf_fallback=False)


def _mib(size: int) -> str:
    return f"{size / 2**20:g} MiB"


def _read_message(stream: BinaryIO, source: str, max_size: int, start: bytes = b"") -> bytes:
    """The rest of ``stream`` after ``start``, in one read (no copy of it), refused over ``max_size`` bytes."""
    data = start + stream.read(max(0, max_size + 1 - len(start)))
    if len(data) > max_size:
        reason = (
            f"a binary OTLP request over {_mib(max_size)} (--max-input-size): protobuf parses a message only"
            " whole, at about 4 times its size in memory; raise the limit or capture smaller requests"
        )
        raise InputError(source, None, reason)
    return data


def _read_sniffed(
    stream: BinaryIO, source: str, signal: Signal | None, max_message_size: int, *, lookahead: bool = True
) -> Iterator[Capture]:
    head = _read_head(stream)
    if head is None:
        return  # an empty input holds no request, as an empty file of any format
    if head.line.lstrip(JSON_SPACE).startswith(b"{"):
        yield from _json_document_or_lines(
            stream, source, signal, head, max_message_size, protobuf_fallback=True, lookahead=lookahead
        )
    else:
        yield _protobuf_capture(
            _read_message(stream, source, max_message_size, head.skipped + head.line), source, signal
        )


@dataclass(frozen=True, slots=True)
class _Head:
    """The start of a stream: blank lines, verbatim, then the first line with content."""

    skipped: bytes
    number: int
    line: bytes
    whole: bool  # False: ``line`` is only the first bytes of a line too long to decode whole


def _read_line(stream: BinaryIO) -> tuple[bytes, bool]:
    """The next line, or its first ``_WHOLE_JSON`` bytes, and whether that is all of it."""
    line = stream.readline(_WHOLE_JSON)
    return line, len(line) < _WHOLE_JSON or line.endswith(b"\n")


def _read_head(stream: BinaryIO) -> _Head | None:
    skipped = bytearray()
    number = 0
    while True:
        line, whole = _read_line(stream)
        if not line:
            return None
        number += 1
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        if not whole or line.strip(JSON_SPACE):
            return _Head(bytes(skipped), number, line, whole)
        skipped += line


def _numbered_lines(stream: BinaryIO, after: int) -> Iterator[tuple[int, bytes, bool]]:
    """The non-blank lines after line ``after``, one at a time, with their numbers and whether each is whole."""
    number = after
    while True:
        line, whole = _read_line(stream)
        if not line:
            return
        number += 1
        if not whole or line.strip(JSON_SPACE):
            yield number, line, whole


def _line_capture(source: str, number: int, line: bytes, signal: Signal | None) -> Capture:
    document = load_json(line, source, first_line=number)
    found, request = parse_document(document, source=source, line=number, signal=signal)
    return Capture(f"{source}:{number}", found, request, None, line=number)


def _line_captures(
    stream: BinaryIO, source: str, signal: Signal | None, number: int, line: bytes, whole: bool
) -> Iterator[Capture]:
    """The request of one JSON line; a line too long to decode whole is streamed, as several requests."""
    if whole:
        yield _line_capture(source, number, line, signal)
    else:
        yield from _stream_document(_RecordSource(stream, line, line_only=True), source, number, signal)


def _json_lines(stream: BinaryIO, source: str, signal: Signal | None, head: _Head) -> Iterator[Capture]:
    yield from _line_captures(stream, source, signal, head.number, head.line, head.whole)
    for number, line, whole in _numbered_lines(stream, head.number):
        yield from _line_captures(stream, source, signal, number, line, whole)


def _json_document_or_lines(
    stream: BinaryIO,
    source: str,
    signal: Signal | None,
    head: _Head,
    max_message_size: int,
    *,
    protobuf_fallback: bool,
    lookahead: bool = True,
) -> Iterator[Capture]:
    if not head.whole:
        # A first line too long to decode whole: one document on one line, streamed; any lines after
        # it are JSON lines.
        yield from _stream_document(_RecordSource(stream, head.line, line_only=True), source, None, signal)
        for number, line, whole in _numbered_lines(stream, head.number):
            yield from _line_captures(stream, source, signal, number, line, whole)
        return
    try:
        first = json.loads(head.line.decode("utf-8"))
    except (ValueError, RecursionError):
        # The first record is not a document on its own line, so this is one document over several
        # lines (pretty-printed): read whole when small, else streamed.
        start = head.skipped + head.line
        if protobuf_fallback and start.startswith(_PROTOBUF_FIRST_TAG):
            # Binary protobuf can sniff as JSON: a request's first byte is a newline and the next, a
            # length, may be "{". Only the whole input tells which it is.
            yield _document_or_protobuf(_read_message(stream, source, max_message_size, start), source, signal)
            return
        data = start + stream.read(max(0, _WHOLE_JSON + 1 - len(start)))
        if len(data) <= _WHOLE_JSON:
            yield _whole_document(data, source, signal)
        else:
            yield from _stream_document(_RecordSource(stream, data, line_only=False), source, None, signal)
        return

    rest = _numbered_lines(stream, head.number)
    if lookahead:
        following = next(rest, None)
        if following is None:
            yield Capture(source, *parse_document(first, source=source, line=None, signal=signal), None)
            return
        rest = itertools.chain([following], rest)
    found, request = parse_document(first, source=source, line=head.number, signal=signal)
    yield Capture(f"{source}:{head.number}", found, request, None, line=head.number)
    for number, line, whole in rest:
        yield from _line_captures(stream, source, signal, number, line, whole)


def _whole_document(data: bytes, source: str, signal: Signal | None) -> Capture:
    document = load_json(data, source, first_line=1)
    return Capture(source, *parse_document(document, source=source, line=None, signal=signal), None)


def _document_or_protobuf(data: bytes, source: str, signal: Signal | None) -> Capture:
    """``data`` as one JSON document, else as binary protobuf; the JSON error stands unless the bytes make
    sense as protobuf."""
    try:
        return _whole_document(data, source, signal)
    except InputError:
        sniffed_wrong = _protobuf_capture_or_none(data, source, signal)
        if sniffed_wrong is None:
            raise
        return sniffed_wrong


# --- streamed OTLP/JSON ----------------------------------------------------------------------------
#
# A large document is read with ijson (yajl's C parser) one resource record at a time, and the
# records are decoded as a small document of their own, so errors, IDs and unknown fields are handled
# exactly as for a document read whole. Only the record index in an error is translated back.


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


# --- writing -------------------------------------------------------------------------------------


def write_capture(
    path: str | os.PathLike[str], requests: Iterable[OtlpRequest], *, stdout: BinaryIO | None = None
) -> None:
    """Write export requests to a capture file that ``read_captures`` reads back, format by extension.

    ``.pb`` / ``.binpb``: exactly one request, binary protobuf. ``.json``: one request as a document
    indented by 2; several as JSON lines, as the Collector writes them. ``.jsonl`` / ``.ndjson``: one
    compact OTLP/JSON line per request. ``-``: JSON lines to ``stdout`` (default ``sys.stdout.buffer``).

    A wrong number of requests or an unknown extension raises ``ValueError`` before the file is
    touched; a request that is not an OTLP export request raises ``TypeError``; I/O errors propagate.
    """
    target = os.fspath(path)
    pending = iter(requests)
    if target == _STDIO:
        out = stdout if stdout is not None else sys.stdout.buffer
        _write_lines(out, pending)
        out.flush()
        return
    file_format = _FORMATS.get(os.path.splitext(target)[1].lower())
    if file_format is None:
        raise ValueError(f"{target}: unknown capture format: expected a file ending in {_KNOWN_EXTENSIONS}, or -")
    head = list(itertools.islice(pending, 2))
    for request in head:
        signal_of(request)
    if file_format is _Format.PROTOBUF:
        if len(head) != 1:
            count = "no request" if not head else "more than one request"
            raise ValueError(f"{target}: a protobuf capture holds exactly one request, got {count}")
        data = head[0].SerializeToString()
        with open(target, "wb") as stream:
            stream.write(data)
        return
    if file_format is _Format.JSON and not head:
        raise ValueError(f"{target}: a JSON capture holds at least one request, got none")
    with open(target, "wb") as stream:
        if file_format is _Format.JSON and len(head) == 1:
            text = json.dumps(to_otlp_json(head[0]), indent=2, ensure_ascii=False, allow_nan=False)
            stream.write(text.encode("utf-8") + b"\n")
        else:
            _write_lines(stream, itertools.chain(head, pending))


def _write_lines(stream: BinaryIO, requests: Iterator[OtlpRequest]) -> None:
    for request in requests:
        line = json.dumps(to_otlp_json(request), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        stream.write(line.encode("utf-8") + b"\n")


__all__ = [
    "OTLP_EXTENSIONS",
    "Capture",
    "read_capture_stream",
    "read_captures",
    "write_capture",
]
