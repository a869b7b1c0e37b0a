"""The progress line ``otel-contract validate`` shows on stderr while it reads long inputs.

One line, rewritten in place with a carriage return: the input being read, how far (a percentage
when its size is known, else the megabytes read), the read rate over the whole run, and the export
requests read so far. It is redrawn at most every ``interval`` seconds (4 times a second), judged by
an injected clock, and erased by ``close``. On a stream that is not a terminal nothing is written at
all (unless ``force``), so logs and CI output never fill with carriage returns.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from otel_contract._terminal import is_terminal
from otel_contract.inputs.counting import ReadProgress

_ERASE_LINE = "\r\x1b[K"  # carriage return, then erase to the end of the line
_MEGABYTE = 1_000_000


class Progress:
    """Draws ``ReadProgress`` updates on ``stream``; call ``update`` as often as you like."""

    def __init__(
        self,
        stream: TextIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        force: bool = False,
        interval: float = 0.25,
        width: int | None = None,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._interval = interval
        self._width = width
        self._enabled = force or is_terminal(stream)
        self._started: float | None = None
        self._last_drawn: float | None = None
        self._drawn = False
        self._source: str | None = None
        self._finished_bytes = 0  # bytes of the inputs read before the current one
        self._source_bytes = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    def update(self, progress: ReadProgress) -> None:
        if not self._enabled:
            return
        now = self._clock()
        if self._started is None:
            self._started = now
        if progress.source != self._source:
            self._finished_bytes += self._source_bytes
            self._source = progress.source
        self._source_bytes = progress.bytes_read
        if self._last_drawn is not None and now - self._last_drawn < self._interval:
            return
        self._last_drawn = now
        self._stream.write(_ERASE_LINE + self._line(progress, now - self._started))
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Erase the line, if one was drawn, so that what follows starts on a clean line."""
        if self._drawn:
            self._stream.write(_ERASE_LINE)
            self._stream.flush()
            self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _line(self, progress: ReadProgress, elapsed: float) -> str:
        if progress.bytes_total:
            done = f"{min(100.0, 100 * progress.bytes_read / progress.bytes_total):3.0f}%"
        else:
            done = f"{progress.bytes_read / _MEGABYTE:.1f} MB"
        total = self._finished_bytes + self._source_bytes
        rate = f"{total / _MEGABYTE / elapsed:.1f} MB/s" if elapsed > 0 else "-- MB/s"
        requests = "request" if progress.captures == 1 else "requests"
        tail = f"  {done}  {rate}  {progress.captures} {requests}"
        width = (self._width or shutil.get_terminal_size().columns) - 1  # the last column would wrap
        return _elide(progress.source, width - len(tail)) + tail


def _elide(text: str, room: int) -> str:
    """``text`` in at most ``room`` characters, its middle replaced by an ellipsis (paths differ at the end)."""
    if len(text) <= room:
        return text
    if room < 5:
        return text[-max(room, 0) :] if room > 0 else ""
    keep = room - 1
    return text[: keep // 3] + "\u2026" + text[len(text) - (keep - keep // 3) :]


__all__ = ["Progress", "ReadProgress"]
