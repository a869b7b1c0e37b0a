"""Metrics compared: added, removed, renamed, and each kept metric field by field."""

from __future__ import annotations

from typing import Any

from otel_contract import rules
from otel_contract.contract.compiled import runtime_actions
from otel_contract.contract.model import Metric, Stability
from otel_contract.diff import kinds
from otel_contract.diff._attributes import _AttributeDiffer
from otel_contract.diff._changes import Actions, _fate, _json, _Scope
from otel_contract.diff.kinds import Area
from otel_contract.rules import Action
from otel_contract.units import conversion_factor, is_convertible

_RETIRED = frozenset({Stability.DEPRECATED, Stability.ARCHIVED})


class _MetricDiffer(_AttributeDiffer):
    """The metrics section: a rename is read from the new metric's aliases, not guessed."""

    def _metrics(self) -> None:
        old = {metric.name: metric for metric in self.old.metrics}
        new = {metric.name: metric for metric in self.new.metrics}
        shim_records = {shim.record for shim in self.new.compat}
        renamed_to = {
            alias.name: metric for metric in self.new.metrics for alias in metric.aliases if alias.name in old
        }
        for name in sorted(old.keys() - new.keys()):
            if name in renamed_to:
                self._renamed(old[name], renamed_to[name], name in shim_records, fresh=renamed_to[name].name not in old)
            else:
                self._removed(old[name])
        renamed_targets = {metric.name for metric in renamed_to.values() if metric.name not in old}
        for name in sorted(new.keys() - old.keys() - renamed_targets):
            metric = new[name]
            self.add(
                kinds.METRIC_ADDED,
                Area.METRICS,
                name,
                f"metrics[{name}]",
                None,
                metric.type,
                f"{name} ({metric.type.value}{', ' + metric.unit if metric.unit else ''}) is new",
            )
        for name in sorted(old.keys() & new.keys()):
            self._metric(old[name], new[name])

    def _removed(self, metric: Metric) -> None:
        name = metric.name
        unknown = self.new.unknown_metrics
        if metric.stability is Stability.ARCHIVED and unknown is not Action.REJECT:
            self.add(
                kinds.ARCHIVED_METRIC_REMOVED,
                Area.METRICS,
                name,
                f"metrics[{name}]",
                metric.type,
                None,
                f"{name} was archived; its data, if any still comes,"
                f" {_fate(self._new_actions, rules.UNKNOWN_METRIC)} instead of deprecated-metric",
            )
            return
        self.add(
            kinds.METRIC_REMOVED,
            Area.METRICS,
            name,
            f"metrics[{name}]",
            metric.type,
            None,
            f"removing {name}: its data becomes an unknown metric and"
            f" {_fate(self._new_actions, rules.UNKNOWN_METRIC)}, and queries, dashboards and alerts on"
            f" {name} go empty",
        )

    def _renamed(self, old: Metric, new: Metric, shimmed: bool, *, fresh: bool) -> None:
        if shimmed:
            self.add(
                kinds.METRIC_RENAMED_WITH_SHIM,
                Area.METRICS,
                old.name,
                f"metrics[{new.name}]",
                old.name,
                new.name,
                f"{old.name} is now {new.name}; producers may keep sending {old.name} (an alias), and a compat shim"
                f" keeps recording {old.name} for the queries that read it",
            )
        else:
            self.add(
                kinds.METRIC_RENAMED,
                Area.METRICS,
                old.name,
                f"metrics[{new.name}]",
                old.name,
                new.name,
                f"{old.name} is now {new.name}; producers may keep sending {old.name} (an alias), but queries,"
                f" dashboards and alerts on {old.name} go empty (no compat shim records {old.name})",
            )
        if fresh:
            self._metric(old, new, ignore_alias=old.name)

    def _metric(self, old: Metric, new: Metric, *, ignore_alias: str | None = None) -> None:
        name = new.name
        path = f"metrics[{name}]"
        actions = runtime_actions(self.new, new)
        if old.type is not new.type:
            self.add(
                kinds.METRIC_TYPE,
                Area.METRICS,
                name,
                f"{path}.type",
                old.type,
                new.type,
                f"{name} changes from {old.type.value} to {new.type.value}: data sent as {old.type.value}, accepted"
                f" before, {_fate(actions, rules.TYPE_MISMATCH)}, and queries written for a {old.type.value} break",
            )
        self._unit(name, f"{path}.unit", old.unit, new.unit, actions)
        self._fixed(name, f"{path}.temporality", "temporality", old.temporality, new.temporality, actions)
        self._fixed(name, f"{path}.monotonic", "monotonic", old.monotonic, new.monotonic, actions)
        self._stability(old, new, actions)
        for field_name in ("description", "owner", "collection", "since", "replaced_by"):
            before, after = getattr(old, field_name), getattr(new, field_name)
            if before != after:
                self.add(
                    kinds.METRIC_DOCUMENTATION,
                    Area.METRICS,
                    name,
                    f"{path}.{field_name}",
                    before,
                    after,
                    f"{field_name} of {name} changed; documentation only",
                )
        self._precision(name, f"{path}.precision", old.precision, new.precision)
        self._budget(name, f"{path}.max_series", old.max_series, new.max_series, actions)
        self._aliases(old, new, actions, ignore_alias)
        scope = _Scope(f" on {name}", f"{path}.attributes", Area.METRICS, actions)
        self._attribute_rules(scope, old.attributes, new.attributes)
        self._policy(old.policy, new.policy, Area.METRICS, f"{path}.policy", f" on {name}")

    def _unit(self, name: str, path: str, before: str | None, after: str | None, actions: Actions) -> None:
        if before == after:
            return
        if after is None:
            self.add(
                kinds.METRIC_UNIT_DROPPED,
                Area.METRICS,
                name,
                path,
                before,
                None,
                f"{name} no longer fixes its unit (was {before})",
            )
            return
        fate = _fate(actions, rules.UNIT_MISMATCH)
        if before is None:
            self.add(
                kinds.METRIC_UNIT,
                Area.METRICS,
                name,
                path,
                None,
                after,
                f"{name} now has unit {after}: data in a unit that cannot be converted to {after}, accepted before,"
                f" {fate}",
            )
            return
        factor = conversion_factor(before, after) if is_convertible(before, after) else None
        if factor is not None and factor != 1:
            self.add(
                kinds.METRIC_UNIT_SCALED,
                Area.METRICS,
                name,
                path,
                before,
                after,
                f"{name} changes unit from {before} to {after}: the sidecar converts data sent in {before}, but every"
                f" value that queries, dashboards and alerts read is {float(factor):g} times what it was",
            )
        else:
            self.add(
                kinds.METRIC_UNIT,
                Area.METRICS,
                name,
                path,
                before,
                after,
                f"{name} changes unit from {before} to {after}, which no conversion relates: data sent in {before},"
                f" accepted before, {fate}",
            )

    def _fixed(self, name: str, path: str, what: str, before: Any, after: Any, actions: Actions) -> None:
        """A property the data must have (temporality, monotonicity), or None for any."""
        if before == after:
            return
        if after is None:
            kind = kinds.METRIC_TEMPORALITY_DROPPED if what == "temporality" else kinds.METRIC_MONOTONIC_DROPPED
            self.add(kind, Area.METRICS, name, path, before, None, f"{name} no longer requires {what} {_json(before)}")
            return
        kind = kinds.METRIC_TEMPORALITY if what == "temporality" else kinds.METRIC_MONOTONIC
        was = f" (was {_json(before)})" if before is not None else ""
        self.add(
            kind,
            Area.METRICS,
            name,
            path,
            before,
            after,
            f"{name} now requires {what} {_json(after)}{was}: data with another {what}, accepted before,"
            f" {_fate(actions, rules.TYPE_MISMATCH)}",
        )

    def _stability(self, old: Metric, new: Metric, actions: Actions) -> None:
        before, after = old.stability, new.stability
        if before is after:
            return
        name, path = new.name, f"metrics[{new.name}].stability"
        if after in _RETIRED and before not in _RETIRED:
            rejected = actions.get(rules.DEPRECATED_METRIC) is Action.REJECT
            kind = kinds.METRIC_DEPRECATED_REJECTED if rejected else kinds.METRIC_DEPRECATED
            self.add(
                kind,
                Area.METRICS,
                name,
                path,
                before,
                after,
                f"{name} becomes {after.value}: its data, accepted before, {_fate(actions, rules.DEPRECATED_METRIC)}",
            )
            return
        if before in _RETIRED and after not in _RETIRED:
            reason = f"{name} is {after.value} again: its data is no longer flagged as deprecated-metric"
        else:
            reason = f"{name} moves from {before.value} to {after.value}; what is accepted does not change"
        self.add(kinds.METRIC_STABILITY, Area.METRICS, name, path, before, after, reason)

    def _precision(self, name: str, path: str, before: int | None, after: int | None) -> None:
        if before == after:
            return

        def decimals(value: int | None) -> str:
            return "no stated precision" if value is None else f"{value} decimals"

        reduced = after is None or (before is not None and after < before)
        self.add(
            kinds.METRIC_PRECISION_REDUCED if reduced else kinds.METRIC_PRECISION_RAISED,
            Area.METRICS,
            name,
            path,
            before,
            after,
            f"consumers of {name} may rely on {decimals(after)} (was {decimals(before)})",
        )

    def _budget(self, name: str, path: str, before: int | None, after: int | None, actions: Actions) -> None:
        if before == after:
            return

        def budget(value: int | None) -> str:
            return "unlimited" if value is None else f"{value} series"

        reduced = after is not None and (before is None or after < before)
        consequence = f"; series beyond it, accepted before, {_fate(actions, rules.CARDINALITY)}" if reduced else ""
        self.add(
            kinds.MAX_SERIES_REDUCED if reduced else kinds.MAX_SERIES_RAISED,
            Area.METRICS,
            name,
            path,
            before,
            after,
            f"the cardinality budget of {name} is {budget(after)} (was {budget(before)}){consequence}",
        )

    def _aliases(self, old: Metric, new: Metric, actions: Actions, ignore: str | None) -> None:
        name = new.name
        before = {alias.name: alias for alias in old.aliases}
        after = {alias.name: alias for alias in new.aliases if alias.name != ignore}
        for alias in sorted(after.keys() - before.keys()):
            self.add(
                kinds.ALIAS_ADDED,
                Area.METRICS,
                f"{alias} (alias of {name})",
                f"metrics[{name}].aliases[{alias}]",
                None,
                alias,
                f"{alias} is now accepted and normalized to {name}",
            )
        for alias in sorted(before.keys() - after.keys()):
            self.add(
                kinds.ALIAS_REMOVED,
                Area.METRICS,
                f"{alias} (alias of {name})",
                f"metrics[{name}].aliases[{alias}]",
                alias,
                None,
                f"{alias} is no longer normalized to {name}: data sent as {alias}, accepted before, becomes an"
                f" unknown metric and {_fate(self._new_actions, rules.UNKNOWN_METRIC)}",
            )
        for alias in sorted(before.keys() & after.keys()):
            if before[alias].unit != after[alias].unit:
                self.add(
                    kinds.ALIAS_UNIT,
                    Area.METRICS,
                    f"{alias} (alias of {name})",
                    f"metrics[{name}].aliases[{alias}].unit",
                    before[alias].unit,
                    after[alias].unit,
                    f"data sent as {alias} is now read as {_unit_of(after[alias].unit, name)} (was"
                    f" {_unit_of(before[alias].unit, name)}): its converted values change",
                )


def _unit_of(unit: str | None, metric: str) -> str:
    return unit or f"{metric}'s unit"
