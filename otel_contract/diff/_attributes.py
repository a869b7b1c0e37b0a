"""Attribute rules compared: shared by metrics, the global attributes section and the resource."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from otel_contract import rules
from otel_contract.contract.model import AttributeRules
from otel_contract.diff import kinds
from otel_contract.diff._changes import _changed, _fate, _json, _listing, _Recorder, _Scope
from otel_contract.diff.kinds import ChangeKind


class _AttributeDiffer(_Recorder):
    """Attribute rules in one scope (a metric, every signal, the resource): the reasons name the scope."""

    def _required(self, scope: _Scope, old: Iterable[str], new: Iterable[str], path: str) -> None:
        before, after = set(old), set(new)
        for key in sorted(after - before):
            self.add(
                kinds.ATTRIBUTE_REQUIRED,
                scope.area,
                f"{key}{scope.where}",
                f"{scope.path}.{path}",
                None,
                key,
                f"{key} became required{scope.where}: data without it, accepted before,"
                f" {_fate(scope.actions, scope.required_rule)}",
            )
        for key in sorted(before - after):
            self.add(
                kinds.ATTRIBUTE_RELAXED,
                scope.area,
                f"{key}{scope.where}",
                f"{scope.path}.{path}",
                key,
                None,
                f"{key} is no longer required{scope.where}: nothing accepted before is refused, but consumers"
                " can no longer count on it",
            )

    def _allowed_values(
        self, scope: _Scope, old: Mapping[str, tuple[Any, ...]], new: Mapping[str, tuple[Any, ...]], path: str
    ) -> None:
        for key, before, after in _changed(old, new):
            subject, where = f"{key}{scope.where}", f"{scope.path}.{path}.{key}"
            fate = _fate(scope.actions, scope.value_rule)
            if before is None:
                assert after is not None
                self.add(
                    kinds.ATTRIBUTE_VALUES_REMOVED,
                    scope.area,
                    subject,
                    where,
                    None,
                    after,
                    f"{key}{scope.where} now allows only {_listing(after)}: any other value, accepted before, {fate}",
                )
                continue
            if after is None:
                self.add(
                    kinds.ATTRIBUTE_VALUES_ADDED,
                    scope.area,
                    subject,
                    where,
                    before,
                    None,
                    f"{key}{scope.where} accepts any value now, not only {_listing(before)}",
                )
                continue
            removed = [value for value in before if value not in after]
            added = [value for value in after if value not in before]
            if removed:
                examples = " or ".join(f"{key}={value}" for value in removed)
                self.add(
                    kinds.ATTRIBUTE_VALUES_REMOVED,
                    scope.area,
                    subject,
                    where,
                    removed,
                    None,
                    f"removing {_listing(removed)} from the allowed values of {key}{scope.where}: data with"
                    f" {examples}, accepted before, {fate}",
                )
            if added:
                self.add(
                    kinds.ATTRIBUTE_VALUES_ADDED,
                    scope.area,
                    subject,
                    where,
                    None,
                    added,
                    f"{key}{scope.where} also accepts {_listing(added)}",
                )

    def _patterns(self, scope: _Scope, old: Mapping[str, str], new: Mapping[str, str], path: str) -> None:
        for key, before, after in _changed(old, new):
            was = f" (was {before!r})" if before else ""
            self._tightened_or_dropped(
                scope,
                key,
                path,
                (before, after),
                (kinds.ATTRIBUTE_PATTERN, kinds.ATTRIBUTE_PATTERN_DROPPED),
                f"values of {key}{scope.where} must now match {after!r}{was}: a value that passed before may"
                f" not, and such data {_fate(scope.actions, scope.value_rule)}",
                f"values of {key}{scope.where} no longer have to match {before!r}",
            )

    def _types(self, scope: _Scope, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        for key, before, after in _changed(old, new):
            self._tightened_or_dropped(
                scope,
                key,
                path,
                (before, after),
                (kinds.ATTRIBUTE_TYPE, kinds.ATTRIBUTE_TYPE_DROPPED),
                f"{key}{scope.where} is now {_json(after)} (was {_json(before) or 'any type'}): values are coerced"
                " where they can be, and consumers comparing against the old type see different values; a value"
                f" that cannot be coerced {_fate(scope.actions, scope.value_rule)}",
                f"{key}{scope.where} may have any type now, not only {_json(before)}",
            )

    def _tightened_or_dropped(
        self,
        scope: _Scope,
        key: str,
        path: str,
        values: tuple[Any, Any],
        kinds_: tuple[ChangeKind, ChangeKind],
        tightened: str,
        dropped: str,
    ) -> None:
        """A constraint on an attribute's values that was added or changed, or dropped (new value None)."""
        before, after = values
        gone = after is None
        self.add(
            kinds_[1] if gone else kinds_[0],
            scope.area,
            f"{key}{scope.where}",
            f"{scope.path}.{path}.{key}",
            before,
            after,
            dropped if gone else tightened,
        )

    def _renames(self, scope: _Scope, old: Mapping[str, str], new: Mapping[str, str], path: str) -> None:
        for key, before, after in _changed(old, new):
            where = f"{scope.path}.{path}.{key}"
            if before is None:
                reason = f"{key} is now renamed to {after}{scope.where}: queries and dashboards that read {key} lose it"
            elif after is None:
                reason = (
                    f"{key} is no longer renamed to {before}{scope.where}: data that sends {key} keeps that key,"
                    f" so consumers of {before} lose it"
                )
            else:
                reason = f"{key} now becomes {after} instead of {before}{scope.where}: consumers of {before} lose it"
            self.add(kinds.ATTRIBUTE_RENAME, scope.area, f"{key}{scope.where}", where, before, after, reason)

    def _attribute_rules(self, scope: _Scope, old: AttributeRules, new: AttributeRules) -> None:
        self._required(scope, old.required, new.required, "required")
        before_optional, after_optional = set(old.optional), set(new.optional)
        if before_optional != after_optional:
            self.add(
                kinds.ATTRIBUTE_OPTIONAL,
                scope.area,
                f"optional attributes{scope.where}",
                f"{scope.path}.optional",
                sorted(before_optional - after_optional),
                sorted(after_optional - before_optional),
                f"the documented optional attributes{scope.where} changed; optional attributes are not enforced",
            )
        for key in sorted(set(new.forbidden) - set(old.forbidden)):
            self.add(
                kinds.ATTRIBUTE_FORBIDDEN,
                scope.area,
                f"{key}{scope.where}",
                f"{scope.path}.forbidden",
                None,
                key,
                f"{key} became forbidden{scope.where}: data carrying it, accepted before,"
                f" {_fate(scope.actions, rules.FORBIDDEN_ATTRIBUTE)}",
            )
        for key in sorted(set(old.forbidden) - set(new.forbidden)):
            self.add(
                kinds.ATTRIBUTE_ALLOWED,
                scope.area,
                f"{key}{scope.where}",
                f"{scope.path}.forbidden",
                key,
                None,
                f"{key} is no longer forbidden{scope.where}",
            )
        self._allowed_values(scope, old.values, new.values, "values")
        self._patterns(scope, old.patterns, new.patterns, "patterns")
        self._types(scope, old.types, new.types, "types")
        self._renames(scope, old.renames, new.renames, "renames")
