"""What the adapter, HPA and KEDA renderers share: resolved signals, workloads and PromQL pieces."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otel_contract.autoscaling.signals import ResolvedSignal, resolve
from otel_contract.contract.model import Contract, SignalKind
from otel_contract.prometheus_names import (
    DEFAULT_STRATEGY,
    TranslationStrategy,
    is_classic_label,
    is_classic_name,
)
from otel_contract.render import ArtefactOptions, RenderError, header, yaml_block, yaml_comment

MANAGED_BY = {"app.kubernetes.io/managed-by": "otel-contract"}
CONTRACT_ANNOTATION = "otel-contract/contract"

# Kubernetes object names (RFC 1123 subdomain) and namespaces (RFC 1123 label).
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def strategy(options: ArtefactOptions) -> TranslationStrategy:
    if options.translation_strategy is None:
        return DEFAULT_STRATEGY
    try:
        return TranslationStrategy.parse(options.translation_strategy)
    except ValueError as error:
        raise RenderError(str(error)) from None


def resolved_signals(contract: Contract, options: ArtefactOptions) -> tuple[ResolvedSignal, ...]:
    """Every signal as queries read it; RenderError names the first that cannot be (check says why)."""
    chosen = strategy(options)
    resolved = []
    for index, signal in enumerate(contract.autoscaling):
        try:
            item = resolve(contract, signal, chosen)
        except ValueError as error:
            raise RenderError(f"autoscaling[{index}] ({signal.metric}): {error}") from None
        unwritable = [] if is_classic_name(item.series) else [item.series]
        unwritable += [label for label in (*item.resources.values(), *item.selector) if not is_classic_label(label)]
        if unwritable:
            raise RenderError(
                f"autoscaling[{index}] ({signal.metric}): {unwritable[0]!r} is not a classic Prometheus name, which"
                f" adapter templates and PromQL selectors need; use a strategy with escaping, not {chosen.value}"
            )
        resolved.append(item)
    return tuple(resolved)


@dataclass(frozen=True, slots=True)
class Workload:
    """One scale target and the signals that drive it: one HPA, or one ScaledObject."""

    api_version: str
    kind: str
    name: str
    signals: tuple[ResolvedSignal, ...]

    @property
    def min_replicas(self) -> int | None:
        return next((s.signal.min_replicas for s in self.signals if s.signal.min_replicas is not None), None)

    @property
    def max_replicas(self) -> int:
        value = next((s.signal.max_replicas for s in self.signals if s.signal.max_replicas is not None), None)
        if value is None:  # check reports it; kept for contracts loaded without check
            raise RenderError(f"{self.kind} {self.name}: no signal sets max_replicas")
        return value

    @property
    def behavior(self) -> Mapping[str, Any] | None:
        return next((s.signal.behavior for s in self.signals if s.signal.behavior), None)

    def target_ref(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}


def workloads(signals: Sequence[ResolvedSignal]) -> list[Workload]:
    """Signals grouped by scale target, in the order the contract first names each target."""
    grouped: dict[tuple[str, str, str], list[ResolvedSignal]] = {}
    for item in signals:
        signal = item.signal
        if signal.scale_target is None:
            raise RenderError(f"the signal on {signal.metric} has no scale_target")
        key = (signal.scale_target_api_version, signal.scale_target_kind, signal.scale_target)
        grouped.setdefault(key, []).append(item)
    return [Workload(*key, tuple(items)) for key, items in grouped.items()]


def check_namespace(namespace: str | None) -> None:
    if namespace is not None and not _LABEL.match(namespace):
        raise RenderError(f"namespace {namespace!r} is not a Kubernetes namespace name (RFC 1123 label)")


def check_object_name(name: str, what: str) -> None:
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        raise RenderError(f"{what} {name!r} is not a Kubernetes object name (RFC 1123 subdomain)")


def metadata(contract: Contract, name: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = dict(MANAGED_BY)
    meta["annotations"] = {CONTRACT_ANNOTATION: contract.id}
    return meta


def promql_string(value: str) -> str:
    """``value`` as a PromQL double-quoted string (Go escapes; JSON's are a subset)."""
    return json.dumps(value, ensure_ascii=False)


def matchers(labels: Mapping[str, str], *, regex: Mapping[str, str] | None = None) -> str:
    """``a="x",b=~"y"``: equality matchers, then regex ones."""
    parts = [f"{label}={promql_string(value)}" for label, value in labels.items()]
    parts += [f"{label}=~{promql_string(value)}" for label, value in (regex or {}).items()]
    return ",".join(parts)


def value_query(signal: ResolvedSignal, selector: str, by: str | None) -> str:
    """The query of one signal: sum (by ``by``) of the series, through rate() for a raw counter."""
    inner = f"rate({selector}[{signal.signal.rate_window}])" if signal.needs_rate else selector
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def group_by_selector(signal: ResolvedSignal) -> str | None:
    """An external metric's grouping: its selector labels, so each selected series stays one value."""
    return ", ".join(signal.selector) or None


def is_custom(signal: ResolvedSignal) -> bool:
    """Pods and object signals are custom metrics (per object); external ones are not."""
    return signal.kind is not SignalKind.EXTERNAL


def documents(contract: Contract, command: str, docs: Sequence[Mapping[str, Any]], empty: str) -> str:
    """The header, then each document after ``---``; a comment saying why when there is none."""
    lines = header(contract, command)
    if not docs:
        lines += yaml_comment(empty)
    for doc in docs:
        lines.append("---")
        lines += yaml_block(dict(doc))
    return "\n".join(lines) + "\n"


def plain(value: Any) -> Any:
    """Frozen mappings and tuples from the model as the dicts and lists YAML writes."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value
