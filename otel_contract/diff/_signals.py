"""The sections that read metrics compared: compat shims, invariants, autoscaling signals."""

from __future__ import annotations

from dataclasses import asdict

from otel_contract import rules
from otel_contract.contract.model import AutoscalingSignal, Invariant, Shim
from otel_contract.diff import kinds
from otel_contract.diff._changes import _fate, _json, _Recorder
from otel_contract.diff.kinds import Area
from otel_contract.diff.model import JsonValue


class _SignalDiffer(_Recorder):
    """Compat shims, invariants and autoscaling signals: what reads the metrics, not the metrics themselves."""

    def _compat(self) -> None:
        old = {shim.record: shim for shim in self.old.compat}
        new = {shim.record: shim for shim in self.new.compat}
        for record in sorted(new.keys() - old.keys()):
            shim = new[record]
            self.add(
                kinds.SHIM_ADDED,
                Area.COMPAT,
                record,
                f"compat[{record}]",
                None,
                shim.expr,
                f"{record} is recorded from {shim.expr} until {shim.expires.isoformat()}",
            )
        for record in sorted(old.keys() - new.keys()):
            self.add(
                kinds.SHIM_REMOVED,
                Area.COMPAT,
                record,
                f"compat[{record}]",
                old[record].expr,
                None,
                f"{record} is no longer recorded: dashboards and alerts that read it go empty",
            )
        for record in sorted(old.keys() & new.keys()):
            self._shim(old[record], new[record])

    def _shim(self, old: Shim, new: Shim) -> None:
        record, path = new.record, f"compat[{new.record}]"
        for field_name in ("expr", "labels", "unit"):
            before, after = getattr(old, field_name), getattr(new, field_name)
            if before != after:
                self.add(
                    kinds.SHIM_CHANGED,
                    Area.COMPAT,
                    record,
                    f"{path}.{field_name}",
                    before,
                    after,
                    f"the {field_name} of {record} changed: the series dashboards read is computed differently",
                )
        if old.expires != new.expires:
            earlier = new.expires < old.expires
            self.add(
                kinds.SHIM_EXPIRY_EARLIER if earlier else kinds.SHIM_EXPIRY_LATER,
                Area.COMPAT,
                record,
                f"{path}.expires",
                old.expires,
                new.expires,
                f"{record} expires on {new.expires.isoformat()} (was {old.expires.isoformat()})"
                + (": consumers have less time to migrate" if earlier else ""),
            )
        for field_name in ("owner", "reason"):
            before, after = getattr(old, field_name), getattr(new, field_name)
            if before != after:
                self.add(
                    kinds.SHIM_METADATA,
                    Area.COMPAT,
                    record,
                    f"{path}.{field_name}",
                    before,
                    after,
                    f"the {field_name} of {record} changed; documentation only",
                )

    def _invariants(self) -> None:
        old = {invariant.name: invariant for invariant in self.old.invariants}
        new = {invariant.name: invariant for invariant in self.new.invariants}
        fate = _fate(self._new_actions, rules.INVARIANT)
        for name in sorted(new.keys() - old.keys()):
            self.add(
                kinds.INVARIANT_ADDED,
                Area.INVARIANTS,
                name,
                f"invariants[{name}]",
                None,
                _invariant(new[name]),
                f"invariant {name} is new: telemetry that passed validate before can fail it, and then {fate}",
            )
        for name in sorted(old.keys() - new.keys()):
            self.add(
                kinds.INVARIANT_REMOVED,
                Area.INVARIANTS,
                name,
                f"invariants[{name}]",
                _invariant(old[name]),
                None,
                f"invariant {name} is no longer checked",
            )
        for name in sorted(old.keys() & new.keys()):
            before, after = old[name], new[name]
            path = f"invariants[{name}]"
            if (before.ratio, before.present) != (after.ratio, after.present):
                self.add(
                    kinds.INVARIANT_TIGHTENED,
                    Area.INVARIANTS,
                    name,
                    path,
                    _invariant(before),
                    _invariant(after),
                    f"invariant {name} checks something else now: telemetry that passed it may not, and then {fate}",
                )
            elif before.max_deviation != after.max_deviation:
                tighter = (after.max_deviation or 0.0) < (before.max_deviation or 0.0)
                self.add(
                    kinds.INVARIANT_TIGHTENED if tighter else kinds.INVARIANT_LOOSENED,
                    Area.INVARIANTS,
                    name,
                    f"{path}.max_deviation",
                    before.max_deviation,
                    after.max_deviation,
                    f"invariant {name} tolerates a deviation of {after.max_deviation} (was {before.max_deviation})"
                    + (f": telemetry that passed it may not, and then {fate}" if tighter else ""),
                )
            if before.description != after.description:
                self.add(
                    kinds.INVARIANT_METADATA,
                    Area.INVARIANTS,
                    name,
                    f"{path}.description",
                    before.description,
                    after.description,
                    f"the description of invariant {name} changed; documentation only",
                )

    def _autoscaling(self) -> None:
        old = {signal.metric: signal for signal in self.old.autoscaling}
        new = {signal.metric: signal for signal in self.new.autoscaling}
        for metric in sorted(new.keys() - old.keys()):
            self.add(
                kinds.SIGNAL_ADDED,
                Area.AUTOSCALING,
                _signal_name(new[metric]),
                f"autoscaling[{metric}]",
                None,
                _signal(new[metric]),
                f"{_signal_name(new[metric])} can drive an HPA ({new[metric].kind.value} metric)",
            )
        for metric in sorted(old.keys() - new.keys()):
            self.add(
                kinds.SIGNAL_REMOVED,
                Area.AUTOSCALING,
                _signal_name(old[metric]),
                f"autoscaling[{metric}]",
                _signal(old[metric]),
                None,
                f"{_signal_name(old[metric])} is no longer an autoscaling signal: an HPA on it shows <unknown>"
                " once its adapter rule is regenerated",
            )
        for metric in sorted(old.keys() & new.keys()):
            before, after = _signal(old[metric]), _signal(new[metric])
            subject, path = _signal_name(new[metric]), f"autoscaling[{metric}]"
            for field_name in _SIGNAL_READS:
                if before.get(field_name) != after.get(field_name):
                    self.add(
                        kinds.SIGNAL_CHANGED,
                        Area.AUTOSCALING,
                        subject,
                        f"{path}.{field_name}",
                        before.get(field_name),
                        after.get(field_name),
                        f"the {field_name} of {subject} changed: the adapter serves a different metric or query, and"
                        " HPAs written against the old one lose it",
                    )
            for field_name in _SIGNAL_TUNING:
                if before.get(field_name) != after.get(field_name):
                    self.add(
                        kinds.SIGNAL_TUNED,
                        Area.AUTOSCALING,
                        subject,
                        f"{path}.{field_name}",
                        before.get(field_name),
                        after.get(field_name),
                        f"the {field_name} of {subject} changed: the HPA scales differently on the same metric",
                    )


_SIGNAL_READS = ("kind", "name", "selector", "rate_window", "scale_target", "resources", "described_object")
_SIGNAL_TUNING = ("target", "min_replicas", "max_replicas", "behavior", "smoothing")


def _signal(signal: AutoscalingSignal) -> dict[str, JsonValue]:
    return {
        "kind": _json(signal.kind),
        "name": signal.name,
        "selector": _json(signal.selector),
        "rate_window": signal.rate_window,
        "scale_target": _json([signal.scale_target, signal.scale_target_kind, signal.scale_target_api_version]),
        "target": _json({"type": signal.target_type, "value": signal.target_value}),
        "min_replicas": signal.min_replicas,
        "max_replicas": signal.max_replicas,
        "behavior": _json(signal.behavior),
        "resources": _json(signal.resources),
        "described_object": _json(asdict(signal.described_object) if signal.described_object else None),
        "smoothing": _json(asdict(signal.smoothing) if signal.smoothing else None),
    }


def _signal_name(signal: AutoscalingSignal) -> str:
    return signal.name or signal.metric


def _invariant(invariant: Invariant) -> dict[str, JsonValue]:
    return {
        key: value
        for key, value in (
            ("ratio", _json(invariant.ratio)),
            ("max_deviation", invariant.max_deviation),
            ("present", invariant.present),
        )
        if value is not None
    }
