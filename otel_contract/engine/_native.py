"""The Python face of the compiled core (``otel_contract._core``, Rust): the contract's tables, built
once per contract version, one call per request, and the core's aggregated answer turned into the
same ``Finding``s, messages and counts as the Python engine's.

What the core does not cover yet goes to the Python engine: metrics, and requests protobuf would
merge (a singular message repeated in one message), which a copying rewrite cannot express.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_contract import rules
from otel_contract._core import Contract as CoreContract
from otel_contract._core import process_records as core_records
from otel_contract.contract.compiled import CompiledContract
from otel_contract.contract.model import AttributeType, Scalar
from otel_contract.engine import _messages
from otel_contract.engine._values import coerced
from otel_contract.findings import Finding, Location
from otel_contract.otlp import Signal
from otel_contract.patterns import Pattern
from otel_contract.rules import Action

_SIGNALS = {Signal.TRACES: 1, Signal.LOGS: 2}
_MESSAGE_TYPES = {Signal.TRACES: "ExportTraceServiceRequest", Signal.LOGS: "ExportLogsServiceRequest"}
_KEY = "engine._native"


class NativeContract:
    """The core's tables for one compiled contract, and what formatting its answers needs."""

    def __init__(self, contract: CompiledContract) -> None:
        spec = contract.contract
        self.contract = contract
        self.env_keys = tuple(action.from_env for action in spec.resource.actions)
        patterns: list[Pattern] = []
        constraints = []
        # Per constrained key: the allowed values or the pattern, for the message.
        self.constraints: dict[str, Any] = {}
        for key, constraint in contract.resource_constraints.items():
            pattern_index = None
            if constraint.pattern is not None:
                pattern_index = len(patterns)
                patterns.append(constraint.pattern)
            allowed = list(constraint.allowed) if constraint.allowed is not None else None
            constraints.append((key, allowed, pattern_index))
            self.constraints[key] = constraint
        self.core = CoreContract(
            {rule.slug: action.value for rule, action in contract.actions.items()},
            dict(contract.attribute_renames),
            {key: kind.value for key, kind in contract.attribute_types.items()},
            [
                (action.action.value, action.key, action.from_attribute, action.from_env is not None, action.value)
                for action in spec.resource.actions
            ],
            list(contract.resource_required),
            constraints,
            patterns,
            _coerce,
        )

    @staticmethod
    def of(contract: CompiledContract) -> NativeContract:
        native = contract.derived.get(_KEY)
        if not isinstance(native, NativeContract):
            native = contract.derived[_KEY] = NativeContract(contract)
        return native

    def env_values(self, env: Mapping[str, str]) -> list[str | None]:
        return [env.get(key) if key is not None else None for key in self.env_keys]

    def message(self, template: str, prefix: str | None, args: tuple[Any, ...]) -> str:
        if template == "resource.not_allowed":
            key, value = args
            text = _messages.resource_not_allowed(key, value, self.constraints[key].allowed)
        elif template == "resource.no_match":
            key, value = args
            text = _messages.resource_no_match(key, value, self.constraints[key].pattern)
        else:
            text = _messages.TEMPLATES[template](*args)
        return f"{prefix}: {text}" if prefix else text


def _coerce(value: Scalar, type_name: str) -> Scalar | None:
    return coerced(value, AttributeType(type_name))


class NotCovered(Exception):
    """The core does not take this request; the Python engine does."""


def process_records(
    signal: Signal,
    payload: bytes,
    contract: CompiledContract,
    *,
    audit: bool,
    env: Mapping[str, str],
    source: Location | None,
) -> tuple[bytes | None, tuple[Finding, ...], int, int]:
    """(new bytes or None when unchanged, findings, items, rejected) for one traces or logs request.

    Raises ``NotCovered`` for a request the core leaves to the Python engine, ``otel_contract._core.WireError``
    for bytes that are not such a request, ``otel_contract._core.CoreError`` for a bug in the core.
    """
    native = NativeContract.of(contract)
    answer = core_records(native.core, _SIGNALS[signal], payload, native.env_values(env), audit)
    if answer is None:
        raise NotCovered(signal)
    rewritten, rows, items, rejected = answer
    findings = tuple(
        Finding.of(
            rules.RULES[slug],
            native.message(template, prefix, args),
            location=source,
            metric=metric,
            attribute=attribute,
            count=count,
            action=Action(action),
        )
        for slug, metric, attribute, count, action, template, prefix, args in rows
    )
    return rewritten, findings, items, rejected
