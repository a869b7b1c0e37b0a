"""How every component reads a path from the pipeline config: ``~`` expanded, relative to the file's directory."""

from __future__ import annotations

import os
from pathlib import Path


def resolve(base: Path, value: str | None) -> str | None:
    """``value`` relative to ``base`` (the config file's directory), so a config works from any cwd."""
    if value is None:
        return None
    path = Path(os.path.expanduser(value))
    return os.path.normpath(path if path.is_absolute() else base / path)
