"""RFC file names: ``NNNN-title-slug.md``, numbered in the order RFCs are written."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

RFC_FILE = re.compile(r"^(?P<number>\d{4,})-(?P<slug>[^/]+)\.md$")
"""An RFC's file name; other Markdown files in the directory (README.md, TEMPLATE.md) are not RFCs."""

_SLUG_LENGTH = 60  # file names stay readable in a terminal and in review tools


def slug(title: str) -> str:
    """``'Rename http_status (v2)!'`` -> ``'rename-http-status-v2'``: ASCII letters, digits and dashes."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_title.lower())
    text = ""
    for word in words:
        candidate = f"{text}-{word}" if text else word
        if len(candidate) > _SLUG_LENGTH:
            break
        text = candidate
    return text or "rfc"


def number_of(name: str) -> int | None:
    """The number in an RFC file name, None for any other file."""
    match = RFC_FILE.match(name)
    return int(match["number"]) if match else None


def next_number(names: Iterable[str]) -> int:
    """One past the highest RFC number among ``names`` (1 in an empty directory): numbers are never reused,
    so a withdrawn RFC's number keeps pointing at it."""
    return max((number for name in names if (number := number_of(name)) is not None), default=0) + 1


def file_name(number: int, title: str) -> str:
    return f"{number:04d}-{slug(title)}.md"
