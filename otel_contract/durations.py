"""Durations as configuration and contracts write them: ``500ms``, ``30s``, ``2m``, ``1h``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$")
_SECONDS_PER = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | float) -> float:
    """Seconds in ``5s``, ``500ms``, ``2m``, ``1h`` or a plain number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 5s, 2m)")
    return float(match.group(1)) * _SECONDS_PER[match.group(2)]


def duration_ms(value: str) -> int:
    """Whole milliseconds in a duration such as ``30s``."""
    return round(parse_duration(value) * 1000)
