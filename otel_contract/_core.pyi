# The compiled core's Python face (core/src/lib.rs); otel_contract.engine._native is its only caller.
from collections.abc import Callable, Sequence
from typing import Any

Scalar = str | bool | int | float

class WireError(ValueError):
    """The bytes are not a request of the expected type."""

class CoreError(Exception):
    """The core failed on a request: a bug, never bad input."""

class Contract:
    def __init__(
        self,
        actions: dict[str, str],
        renames: dict[str, str],
        types: dict[str, str],
        resource_actions: Sequence[tuple[str, str, str | None, bool, Scalar | None]],
        resource_required: Sequence[str],
        resource_constraints: Sequence[tuple[str, Sequence[Scalar] | None, int | None]],
        patterns: Sequence[Any],
        coerce: Callable[[Scalar, str], Scalar | None],
    ) -> None: ...

# (slug, metric, attribute, count, action, template, prefix, args)
FindingRow = tuple[str, str | None, str | None, int, str, str, str | None, tuple[Scalar | None, ...]]

def process_records(
    contract: Contract, signal: int, payload: bytes, env: Sequence[str | None], audit: bool
) -> tuple[bytes | None, list[FindingRow], int, int] | None: ...
