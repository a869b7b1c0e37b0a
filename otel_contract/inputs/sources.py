"""Every INPUT of ``otel-contract validate`` read as captures: files, directories, URLs and stdin.

``read_inputs`` is the one entry point. Each input is one of:

* a file, its format by extension: OTLP ``.pb``/``.binpb``/``.json``/``.jsonl``/``.ndjson`` (see
  ``inputs.otlp``), Prometheus text ``.prom``/``.txt`` and OpenMetrics ``.om``/``.openmetrics`` (see
  ``inputs.prometheus``); a ``.prom``/``.txt`` file that ends in OpenMetrics' ``# EOF`` line is read
  as OpenMetrics;
* a directory, searched recursively; its capture files are read in sorted path order, hidden files
  and directories are left out, ``.txt`` files (named explicitly they are read as exposition, in a
  directory they are as likely notes) and files with other extensions are skipped and listed in
  ``InputReader.skipped``; a directory without a capture file is an error;
* an ``http://`` or ``https://`` URL of a ``/metrics`` endpoint, scraped once (``inputs.scrape``);
* ``-``: standard input, sniffed from its first bytes: ``{`` is OTLP JSON (a document or lines), ``#``
  or the start of a metric name is Prometheus text or OpenMetrics (told apart by ``# EOF``), anything
  else binary OTLP protobuf.

Problems with the arguments themselves (a missing file, an unknown extension, an empty directory, a
malformed URL) raise ``InputError`` before anything is read; problems with the content raise it while
iterating, after the captures before them.

OTLP is streamed: a JSON-lines capture on a pipe yields each request as soon as its line has
arrived. An exposition is read twice (its ``target_info`` first), so one from stdin or a URL is
spooled first (memory, then a temporary file), and then streamed in requests of at most
``prometheus.MAX_POINTS`` data points.

``progress`` is called with a ``ReadProgress`` as the bytes of each input are consumed (counted on
the input's own stream: compressed bytes for a gzip scrape) and after each capture.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from types import MappingProxyType
from typing import IO, BinaryIO, cast

from otel_contract.inputs.counting import CountingReader, ReadProgress, buffered
from otel_contract.inputs.otlp import (
    JSON_SPACE,
    MAX_MESSAGE_SIZE,
    OTLP_EXTENSIONS,
    Capture,
    read_capture_stream,
    stat_mode,
)
from otel_contract.inputs.prometheus import is_openmetrics, read_exposition, scan_targets
from otel_contract.inputs.scrape import FetchOptions, check_url, is_url, scrape
from otel_contract.otlp import InputError, Signal

_STDIN = "-"
# Extension -> whether the file is OpenMetrics for sure (False: text 0.0.4 unless it ends in # EOF).
EXPOSITION_EXTENSIONS: Mapping[str, bool] = MappingProxyType(
    {".prom": False, ".txt": False, ".om": True, ".openmetrics": True}
)
CAPTURE_EXTENSIONS: frozenset[str] = OTLP_EXTENSIONS | frozenset(EXPOSITION_EXTENSIONS)
"""Every file extension ``read_inputs`` reads (lower case, with the dot)."""

# .txt is read as exposition only when named: in a directory it is as likely a README or notes.
_WALKED_EXTENSIONS = CAPTURE_EXTENSIONS - {".txt"}
_KNOWN = ", ".join(sorted(CAPTURE_EXTENSIONS))
_SPOOL_IN_MEMORY = 16 * 1024 * 1024
_TEXT_CONTROLS = frozenset(b"\t\r\n")
_DEFAULT_FETCH = FetchOptions()

ProgressCallback = Callable[[ReadProgress], None]


@dataclass(frozen=True, slots=True)
class _Input:
    name: str  # the path, URL or "-" as captures and errors name it
    extension: str  # lower case with the dot, for files; "" otherwise


@dataclass(frozen=True, slots=True)
class _Reading:
    """How every input is read: the signal the caller insists on, the largest binary request."""

    signal: Signal | None
    max_message_size: int


class InputReader(Iterator[Capture]):
    """The captures of every input, lazily and in order.

    ``inputs`` lists what will be read (directories expanded); ``skipped`` the files found in
    directories that were left out for their extension, so that the caller can say so; ``empty``,
    as reading goes on, the inputs that held no data at all (nothing but white space).
    """

    def __init__(
        self,
        inputs: Sequence[_Input],
        skipped: Sequence[str],
        fetch: FetchOptions,
        stdin: BinaryIO | None,
        progress: ProgressCallback | None,
        reading: _Reading,
    ) -> None:
        self.inputs: tuple[str, ...] = tuple(item.name for item in inputs)
        self.skipped: tuple[str, ...] = tuple(skipped)
        self.empty: list[str] = []
        self._reading = reading
        self._fetch = fetch
        self._stdin = stdin
        self._progress = progress
        self._captures = 0
        self._iterator = self._read_all(inputs)

    def __iter__(self) -> InputReader:
        return self

    def __next__(self) -> Capture:
        return next(self._iterator)

    def _read_all(self, inputs: Sequence[_Input]) -> Iterator[Capture]:
        for item in inputs:
            tracker = _Tracker(item.name, self._progress, lambda: self._captures)
            before = self._captures
            for capture in self._read(item, tracker):
                self._captures += 1
                tracker.report()
                yield capture
            if self._captures == before:
                self.empty.append(item.name)

    def _read(self, item: _Input, tracker: _Tracker) -> Iterator[Capture]:
        if item.name == _STDIN:
            return _read_stdin(self._stdin if self._stdin is not None else sys.stdin.buffer, tracker, self._reading)
        if is_url(item.name):
            _exposition_signal(item.name, self._reading)
            return scrape(item.name, self._fetch, on_read=tracker.read)
        if item.extension in EXPOSITION_EXTENSIONS:
            _exposition_signal(item.name, self._reading)
            return _read_exposition_file(item, tracker)
        return _read_otlp_file(item, tracker, self._reading)


class _Tracker:
    """Progress of one input: bytes as they are read, captures (of the whole run) as they are yielded."""

    def __init__(self, source: str, progress: ProgressCallback | None, captures: Callable[[], int]) -> None:
        self._source = source
        self._progress = progress
        self._captures = captures
        self.bytes_read = 0
        self.bytes_total: int | None = None

    def read(self, bytes_read: int, bytes_total: int | None = None) -> None:
        self.bytes_read = bytes_read
        if bytes_total is not None:
            self.bytes_total = bytes_total
        self.report()

    def counted(self, bytes_read: int) -> None:
        self.read(bytes_read)

    def report(self) -> None:
        if self._progress is not None:
            self._progress(ReadProgress(self._source, self.bytes_read, self.bytes_total, self._captures()))


def read_inputs(
    inputs: Sequence[str],
    *,
    fetch: FetchOptions = _DEFAULT_FETCH,
    stdin: BinaryIO | None = None,
    progress: ProgressCallback | None = None,
    signal: Signal | None = None,
    max_message_size: int = MAX_MESSAGE_SIZE,
) -> InputReader:
    """The captures in ``inputs`` (paths, directories, URLs, ``-``), lazily; see the module docstring.

    ``fetch`` says how URLs are fetched; ``stdin`` replaces ``sys.stdin.buffer``. ``signal``: every
    input must hold this signal, and binary protobuf whose name does not say its signal is read as
    it; ``max_message_size``: the largest binary request read (``inputs.otlp.MAX_MESSAGE_SIZE``).
    Argument problems raise ``InputError`` here, before anything is read.
    """
    planned: list[_Input] = []
    skipped: list[str] = []
    for name in inputs:
        if name == _STDIN:
            if any(item.name == _STDIN for item in planned):
                raise InputError(_STDIN, None, "standard input given twice: it can be read only once")
            planned.append(_Input(_STDIN, ""))
        elif is_url(name):
            check_url(name)
            planned.append(_Input(name, ""))
        else:
            _plan_path(name, planned, skipped)
    return InputReader(planned, skipped, fetch, stdin, progress, _Reading(signal, max_message_size))


def _plan_path(path: str, planned: list[_Input], skipped: list[str]) -> None:
    mode = stat_mode(path, missing="no such file or directory")
    if stat.S_ISDIR(mode):
        found, left_out = _walk(path)
        if not found:
            also = f" ({len(left_out)} files with other extensions skipped)" if left_out else ""
            raise InputError(path, None, f"directory holds no capture file ending in {_KNOWN}{also}")
        planned.extend(found)
        skipped.extend(left_out)
        return
    extension = _extension(path)
    if extension not in CAPTURE_EXTENSIONS:
        raise InputError(path, None, f"unknown capture format: expected a file ending in {_KNOWN}, a URL, or -")
    planned.append(_Input(path, extension))


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def _walk(top: str) -> tuple[list[_Input], list[str]]:
    """Capture files under ``top`` in sorted path order, and the files skipped for their extension."""

    def fail(error: OSError) -> None:
        raise InputError.unreadable(error.filename or top, error)

    found: list[str] = []
    skipped: list[str] = []
    for root, directories, files in os.walk(top, onerror=fail):
        directories[:] = [name for name in directories if not name.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            (found if _extension(name) in _WALKED_EXTENSIONS else skipped).append(path)

    def order(path: str) -> tuple[str, ...]:
        return PurePath(os.path.relpath(path, top)).parts

    return [_Input(path, _extension(path)) for path in sorted(found, key=order)], sorted(skipped, key=order)


# --- reading ----------------------------------------------------------------------------------------


def _file_size(stream: IO[bytes]) -> int | None:
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (BytesIO), or closed
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


@contextlib.contextmanager
def _counted(item: _Input, tracker: _Tracker) -> Iterator[BinaryIO]:
    """``item``'s file, its bytes counted for progress as they are read; an OSError, while opening or
    while the caller reads, becomes an ``InputError`` naming the file."""
    try:
        with open(item.name, "rb") as raw:
            tracker.read(0, _file_size(raw))
            with buffered(CountingReader(raw, tracker.counted)) as stream:
                yield stream
    except OSError as err:
        raise InputError.unreadable(item.name, err) from None


def _exposition_signal(name: str, reading: _Reading) -> None:
    if reading.signal not in (None, Signal.METRICS):
        raise InputError(name, None, f"Prometheus text holds metrics, not {reading.signal}")


def _read_otlp_file(item: _Input, tracker: _Tracker, reading: _Reading) -> Iterator[Capture]:
    with _counted(item, tracker) as stream:
        yield from read_capture_stream(
            stream,
            item.name,
            extension=item.extension,
            signal=reading.signal,
            max_message_size=reading.max_message_size,
        )


def _is_blank(stream: BinaryIO) -> bool:
    """Whether a seekable stream holds nothing but white space; the position is kept."""
    position = stream.tell()
    try:
        while chunk := stream.read(io.DEFAULT_BUFFER_SIZE):
            if chunk.strip(JSON_SPACE):
                return False
        return True
    finally:
        stream.seek(position)


def _read_exposition_file(item: _Input, tracker: _Tracker) -> Iterator[Capture]:
    try:
        # The first pass only picks out target_info lines; progress follows the second, which parses.
        with open(item.name, "rb") as scan:
            if _is_blank(scan):
                return  # no data, as an empty capture of any format
            openmetrics = EXPOSITION_EXTENSIONS[item.extension] or is_openmetrics(scan)
            targets = scan_targets(scan, item.name, openmetrics=openmetrics)
    except OSError as err:
        raise InputError.unreadable(item.name, err) from None
    with _counted(item, tracker) as stream:
        yield from read_exposition(stream, item.name, openmetrics=openmetrics, targets=targets)


def _read_stdin(stdin: BinaryIO, tracker: _Tracker, reading: _Reading) -> Iterator[Capture]:
    tracker.read(0, _file_size(stdin))
    reader = CountingReader(stdin, tracker.counted)
    head = reader.head()
    if not head.strip(JSON_SPACE):
        return  # no data, as an empty capture of any format
    stream = buffered(reader)
    if not _is_text_exposition(head):
        yield from read_capture_stream(stream, _STDIN, signal=reading.signal, max_message_size=reading.max_message_size)
        return
    _exposition_signal(_STDIN, reading)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        shutil.copyfileobj(stream, spool)
        reader.report()
        body = cast(BinaryIO, spool)
        openmetrics = is_openmetrics(body)
        body.seek(0)
        targets = scan_targets(body, _STDIN, openmetrics=openmetrics)
        body.seek(0)
        yield from read_exposition(body, _STDIN, openmetrics=openmetrics, targets=targets)


def _is_text_exposition(head: bytes) -> bool:
    """Whether the first bytes of an input look like Prometheus/OpenMetrics text rather than OTLP.

    Text starts with a comment or a metric name and holds no control bytes; binary protobuf, whose
    tags and lengths are small numbers, holds some within its first few bytes.
    """
    start = head.removeprefix(codecs.BOM_UTF8).lstrip(JSON_SPACE)[:1]
    if not (start == b"#" or start == b"_" or start == b":" or start.isalpha()):
        return False
    return not any((byte < 0x20 and byte not in _TEXT_CONTROLS) or byte == 0x7F for byte in head)


__all__ = [
    "CAPTURE_EXTENSIONS",
    "EXPOSITION_EXTENSIONS",
    "FetchOptions",
    "InputReader",
    "ReadProgress",
    "read_inputs",
]
