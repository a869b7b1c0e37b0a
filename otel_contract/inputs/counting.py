"""Byte counting under the readers, so a progress indicator can say how far a long input has got.

``CountingReader`` sits between an input's own binary stream (a file, stdin, an HTTP response body)
and the readers: every byte the readers consume passes through it and is counted there, as it is
read, not when a request is finished. It also lets a caller read the first bytes of a stream (to
sniff the format) and hand them back, so that a pipe never has to be read twice.

This is an edge module: it reads streams and does nothing else.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from otel_contract.inputs.otlp import JSON_SPACE

# Reports under this many new bytes wait for the next read, so tiny reads cost no callback each.
_REPORT_EVERY = 256 * 1024


@dataclass(frozen=True, slots=True)
class ReadProgress:
    """How far the reading of one input has got.

    ``bytes_read`` counts the bytes taken from the input as it arrives (compressed bytes, for a
    gzip-encoded scrape); ``bytes_total`` is its size when known (a file, a Content-Length), else
    None; ``captures`` counts the export requests read so far in the whole run.
    """

    source: str
    bytes_read: int
    bytes_total: int | None
    captures: int


class CountingReader(io.RawIOBase):
    """A raw binary stream over ``source`` that counts the bytes read and reports them to ``on_read``.

    Reads return what the source has available (``read1``), so a reader on a pipe gets each line
    as soon as it is written rather than when a buffer fills. Wrap it in ``io.BufferedReader`` for
    ``readline``. ``close`` closes the source only when ``close_source`` is true (a file opened for
    this reader, not stdin).
    """

    def __init__(
        self, source: BinaryIO, on_read: Callable[[int], None] | None = None, *, close_source: bool = False
    ) -> None:
        super().__init__()
        self._source = source
        self._on_read = on_read
        self._close_source = close_source
        self._pushed_back = b""
        self._reported = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._pushed_back:
            size = min(len(buffer), len(self._pushed_back))
            buffer[:size] = self._pushed_back[:size]
            self._pushed_back = self._pushed_back[size:]
            return size
        # Straight into the caller's buffer when the source can: a large read is not copied twice.
        readinto = getattr(self._source, "readinto1", None) or getattr(self._source, "readinto", None)
        if readinto is None:
            data = self._read_some(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        read: int = readinto(buffer) or 0
        self._count(read)
        return read

    def head(self) -> bytes:
        """The first bytes of the stream up to and including the first that is not white space (all of
        them at EOF), read as they become available and handed back: the next reads return them again."""
        head = self._pushed_back
        while not head.strip(JSON_SPACE):
            chunk = self._read_some(io.DEFAULT_BUFFER_SIZE)
            if not chunk:
                break
            head += chunk
        self._pushed_back = head
        return head

    def report(self) -> None:
        """Report the count now, however little was read since the last report."""
        self._reported = self.bytes_read
        if self._on_read is not None:
            self._on_read(self.bytes_read)

    def close(self) -> None:
        if not self.closed and self._close_source:
            self._source.close()
        super().close()

    def _read_some(self, size: int) -> bytes:
        read1 = getattr(self._source, "read1", None)
        data: bytes = read1(size) if read1 is not None else self._source.read(size)
        self._count(len(data))
        return data

    def _count(self, size: int) -> None:
        self.bytes_read += size
        if not size or self.bytes_read - self._reported >= _REPORT_EVERY:
            self.report()


def buffered(reader: CountingReader) -> BinaryIO:
    """``reader`` as the buffered binary stream the readers take (``readline``, ``read``, iteration)."""
    return io.BufferedReader(reader)
