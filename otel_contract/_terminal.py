"""Whether a stream is a terminal: what decides colour in reports and the progress line on stderr."""

from __future__ import annotations

from typing import TextIO


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a stand-in without isatty, or a closed stream
        return False
