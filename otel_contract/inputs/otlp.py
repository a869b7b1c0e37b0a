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

The signals, their wire facts and the OTLP/JSON codec are ``otel_contract.otlp``'s. Three private
modules hold this module's areas: ``_capture.py`` (``Capture``, re-exported here), ``_protobuf.py``
(the signal of binary protobuf) and ``_json_stream.py`` (documents too large to decode whole).

This is an edge module: it reads and writes files and does nothing else.
"""

from __future__ import annotations

import codecs
import enum
import itertools
import json
import os
import stat
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import BinaryIO

from otel_contract.inputs._capture import Capture
from otel_contract.inputs._json_stream import MAX_JSON_RECORD, _mib, _RecordSource, _stream_document
from otel_contract.inputs._protobuf import _protobuf_capture, _protobuf_capture_or_none, _signal_hint
from otel_contract.otlp import (
    InputError,
    OtlpRequest,
    Signal,
    load_json,
    parse_document,
    signal_of,
    to_otlp_json,
)


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


# --- reading -------------------------------------------------------------------------------------

MAX_MESSAGE_SIZE = 256 * 1024 * 1024
"""The default for the largest binary protobuf request read: protobuf's Python API parses a message
only whole, so one takes about four times its size in memory (its bytes, the engine's parse)."""


# A JSON document or line up to this size is decoded whole; a longer one is streamed by resource record.
_WHOLE_JSON = 4 * 1024 * 1024


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
    "MAX_JSON_RECORD",
    "OTLP_EXTENSIONS",
    "Capture",
    "read_capture_stream",
    "read_captures",
    "write_capture",
]
