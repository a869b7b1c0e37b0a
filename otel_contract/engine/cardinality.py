"""Series budgets tracked across requests, in bounded memory.

The engine asks ``admit(metric, series)`` for every data point of a metric with ``max_series``.
A known series always flows; a new one is admitted while the metric is under budget. Series are
kept as 64-bit hashes of their identity, never as strings, so memory is bounded by
``max_tracked_series`` whatever the labels look like (see the README for bytes per series).
"""

from __future__ import annotations

import threading

from otel_contract._core import Budgets

_U64 = 2**64 - 1


class CardinalityState:
    """Per-metric sets of series hashes; shared by the sidecar's workers, hence the lock."""

    def __init__(self, max_tracked_series: int = 1_000_000) -> None:
        if max_tracked_series < 1:
            raise ValueError("max_tracked_series must be at least 1")
        self.max_tracked_series = max_tracked_series
        # The series themselves live in the compiled core, which both engines ask.
        self.budgets = Budgets(max_tracked_series)
        self._lock = threading.Lock()
        self._clean_owner: object = None
        self._clean: dict[str, dict[tuple[bytes, ...], int]] = {}
        self._clean_entries = 0

    # How many attribute sets ``clean_series`` remembers in all (a few hundred bytes each); past it
    # new sets are checked every time, as without the memo.
    MAX_CLEAN_ENTRIES = 50_000

    def clean_series(self, owner: object, metric: str) -> dict[tuple[bytes, ...], int] | None:
        """Attribute sets of ``metric``, as raw bytes, that passed every attribute check of ``owner``
        (the compiled contract), with their series hash; None once the memo is full.

        A new ``owner`` (a reloaded contract) starts an empty memo, so nothing checked under the old
        contract is trusted under the new one.
        """
        if self._clean_owner is not owner:
            with self._lock:
                if self._clean_owner is not owner:
                    self._clean = {}
                    self._clean_entries = 0
                    self._clean_owner = owner
        if self._clean_entries >= self.MAX_CLEAN_ENTRIES:
            return None
        return self._clean.setdefault(metric, {})

    def remember_clean(self, memo: dict[tuple[bytes, ...], int], key: tuple[bytes, ...], series: int) -> None:
        if self._clean_entries < self.MAX_CLEAN_ENTRIES:
            memo[key] = series
            self._clean_entries += 1

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
