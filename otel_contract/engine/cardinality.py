"""Series budgets tracked across requests, in bounded memory.

The core admits the series of every data point of a metric with ``max_series`` during its walk.
A known series always flows; a new one is admitted while the metric is under budget. Series are
kept as 64-bit hashes of their identity, never as strings, so memory is bounded by
``max_tracked_series`` whatever the labels look like (see the README for bytes per series).
"""

from __future__ import annotations

from otel_contract._core import Budgets

_U64 = 2**64 - 1


class CardinalityState:
    """Per-metric sets of series hashes, shared by the sidecar's workers (the core locks them)."""

    def __init__(self, max_tracked_series: int = 1_000_000) -> None:
        if max_tracked_series < 1:
            raise ValueError("max_tracked_series must be at least 1")
        self.max_tracked_series = max_tracked_series
        # The series live in the compiled core, which admits them during its walk, without the GIL.
        self.budgets = Budgets(max_tracked_series)

    def admit(self, metric: str, series: int, budget: int) -> bool:
        """True when ``series`` of ``metric`` may flow under a budget of ``budget`` series."""
        return self.budgets.admit(metric, series & _U64, budget)

    def series_count(self, metric: str) -> int:
        return self.budgets.series_count(metric)

    @property
    def tracked(self) -> int:
        return self.budgets.tracked

    def forget(self, metric: str | None = None) -> None:
        """Drop tracked series (all, or one metric's), e.g. when the contract changes a budget."""
        self.budgets.forget(metric)
