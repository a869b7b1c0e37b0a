"""Series budgets tracked across requests, in bounded memory.

The engine asks ``admit(metric, series)`` for every data point of a metric with ``max_series``.
A known series always flows; a new one is admitted while the metric is under budget. Series are
kept as 64-bit hashes of their identity, never as strings, so memory is bounded by
``max_tracked_series`` whatever the labels look like (see the README for bytes per series).
"""

from __future__ import annotations

import threading


class CardinalityState:
    """Per-metric sets of series hashes; shared by the sidecar's workers, hence the lock."""

    def __init__(self, max_tracked_series: int = 1_000_000) -> None:
        if max_tracked_series < 1:
            raise ValueError("max_tracked_series must be at least 1")
        self.max_tracked_series = max_tracked_series
        self._series: dict[str, set[int]] = {}
        self._tracked = 0
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
        known = self._series.get(metric)
        if known is not None and series in known:
            return True
        with self._lock:
            known = self._series.setdefault(metric, set())
            if series in known:
                return True
            if len(known) >= budget or self._tracked >= self.max_tracked_series:
                return False
            known.add(series)
            self._tracked += 1
            return True

    def series_count(self, metric: str) -> int:
        return len(self._series.get(metric, ()))

    @property
    def tracked(self) -> int:
        return self._tracked

    def forget(self, metric: str | None = None) -> None:
        """Drop tracked series (all, or one metric's), e.g. when the contract changes a budget."""
        with self._lock:
            if metric is None:
                self._series.clear()
                self._tracked = 0
            else:
                self._tracked -= len(self._series.pop(metric, ()))
