"""The Python face of the compiled core (``otel_contract._core``, Rust): the contract's tables, built
once per contract version, one call per request, and the core's aggregated answer turned into
``Finding``s with their messages."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from otel_contract import rules
from otel_contract._core import Contract as CoreContract
from otel_contract._core import WireError
from otel_contract._core import check as core_check
from otel_contract._core import process as core_process
from otel_contract._wire import DATA_MEMBERS, SHIM_SCOPE
from otel_contract.contract.compiled import CompiledContract, CompiledMetric
from otel_contract.contract.model import AttributeType, Scalar, Stability
from otel_contract.engine import _messages
from otel_contract.engine._coerce import MAX_FACTOR_TERM, coerced, factor, power_of_two
from otel_contract.engine._outcome import EngineOptions, Outcome
from otel_contract.engine.cardinality import CardinalityState
from otel_contract.findings import Finding, Location
from otel_contract.otlp import CORE_SIGNALS, FACTS, Signal
from otel_contract.patterns import Pattern
from otel_contract.rules import Action

_KEY = "engine._native"


# (numerator, denominator as doubles; both as ints when below 2**64; numerator == 1; denominator == 1;
# a term too big for a double; k when the factor is 2**k)
_FactorAnswer = tuple[float, float, tuple[int, int] | None, bool, bool, bool, int | None]


class _Oracle:
    """What the core asks Python: coercions with Python's text rules, UCUM factors, exact scaling."""

    @staticmethod
    def coerce(value: Scalar, type_name: str) -> Scalar | None:
        return coerced(value, AttributeType(type_name))

    @staticmethod
    def unit_factor(
        arrived: str, target: str
    ) -> tuple[float, float, tuple[int, int] | None, bool, bool, bool, int | None] | None:
        exact_factor = factor(arrived, target)
        if exact_factor is None:
            return None
        numerator, denominator = exact_factor.numerator, exact_factor.denominator
        huge = max(numerator, denominator) >= MAX_FACTOR_TERM
        exact = (numerator, denominator) if max(numerator, denominator) < 2**64 else None
        return (
            0.0 if huge else float(numerator),
            0.0 if huge else float(denominator),
            exact,
            numerator == 1,
            denominator == 1,
            huge,
            power_of_two(exact_factor),
        )

    @staticmethod
    def exact_int(value: int, arrived: str, target: str) -> int | None:
        exact_factor = factor(arrived, target)
        exact = value * exact_factor if exact_factor is not None else Fraction(value)
        return int(exact) if exact.denominator == 1 else None


class NativeContract:
    """The core's tables for one compiled contract, and what formatting its answers needs."""

    def __init__(self, contract: CompiledContract) -> None:
        spec = contract.contract
        self.contract = contract
        self.env_keys = tuple(action.from_env for action in spec.resource.actions)
        self.patterns: list[Pattern] = []
        # One index per distinct regex: a pattern shared by many metrics (a YAML anchor, a naming
        # convention) is one entry in the core's per-request memo of answers, not one per metric.
        self._pattern_index: dict[Pattern, int] = {}
        constraints = []
        for key, constraint in contract.resource_constraints.items():
            allowed = list(constraint.allowed) if constraint.allowed is not None else None
            constraints.append((key, allowed, self._pattern(constraint.pattern)))
        tables: dict[str, Any] = {
            "actions": {rule.slug: action.value for rule, action in contract.actions.items()},
            "renames": dict(contract.attribute_renames),
            "types": {key: kind.value for key, kind in contract.attribute_types.items()},
            "resource_actions": [
                (action.action.value, action.key, action.from_attribute, action.from_env is not None, action.value)
                for action in spec.resource.actions
            ],
            "resource_required": list(contract.resource_required),
            "resource_constraints": constraints,
            "metrics": [self._metric(metric) for metric in contract.metrics.values()],
            "aliases": [(name, target.metric.name, target.alias.unit) for name, target in contract.aliases.items()],
            "shim_records": sorted(contract.shim_records),
            "shim_scope": SHIM_SCOPE,
            "metric_pattern": self._pattern(contract.metric_pattern),
            "name_rules": [(self._pattern(rule.match), self._pattern(rule.pattern)) for rule in contract.name_rules],
            "legacy_tokens": list(contract.legacy_tokens),
        }
        self.core = CoreContract(tables, self.patterns, _Oracle())

    def _pattern(self, pattern: Pattern | None) -> int | None:
        if pattern is None:
            return None
        if pattern not in self._pattern_index:
            self._pattern_index[pattern] = len(self.patterns)
            self.patterns.append(pattern)
        return self._pattern_index[pattern]

    def _metric(self, compiled: CompiledMetric) -> dict[str, Any]:
        metric = compiled.metric
        retired = metric.stability in (Stability.DEPRECATED, Stability.ARCHIVED)
        return {
            "name": metric.name,
            "kind": DATA_MEMBERS[metric.type.value][0],  # the Metric.data member's field number
            "kind_name": metric.type.value,
            "monotonic": metric.monotonic,
            "temporality": (
                (
                    AggregationTemporality.Value(f"AGGREGATION_TEMPORALITY_{metric.temporality.name}"),
                    metric.temporality.value,
                )
                if metric.temporality
                else None
            ),
            "unit": metric.unit,
            "description": metric.description or "",
            "retired": (metric.stability.value, metric.replaced_by) if retired else None,
            "renames": dict(compiled.renames),
            "types": {key: kind.value for key, kind in compiled.types.items()},
            "required": list(compiled.required),
            "forbidden": list(compiled.forbidden),
            "allowed": [(key, list(values)) for key, values in compiled.allowed.items()],
            "patterns": [(key, self._pattern(pattern)) for key, pattern in compiled.patterns.items()],
            "actions": {rule.slug: action.value for rule, action in compiled.actions.items()},
            "checks_attributes": compiled.checks_attributes,
            "roles": dict(compiled.attribute_roles),
            "max_series": metric.max_series,
        }

    @staticmethod
    def of(contract: CompiledContract) -> NativeContract:
        native = contract.derived.get(_KEY)
        if not isinstance(native, NativeContract):
            native = contract.derived[_KEY] = NativeContract(contract)
        return native

    def env_values(self, env: Mapping[str, str]) -> list[str | None]:
        return [env.get(key) if key is not None else None for key in self.env_keys]

    def message(self, template: str, prefix: str | None, args: tuple[Any, ...]) -> str:
        contract = self.contract
        if template == "resource.not_allowed":
            key, value = args
            text = _messages.resource_not_allowed(key, value, contract.resource_constraints[key].allowed or frozenset())
        elif template == "resource.no_match":
            key, value = args
            pattern = contract.resource_constraints[key].pattern
            assert pattern is not None  # the core reports it only for a constraint with a pattern
            text = _messages.resource_no_match(key, value, pattern)
        elif template in ("metric.name_pattern", "metric.name_rule", "metric.no_match"):
            text = _messages.with_patterns(template, args, self.patterns, contract)
        else:
            text = _messages.TEMPLATES[template](*args)
        return f"{prefix}: {text}" if prefix is not None else text


def _decode_error(signal: Signal) -> DecodeError:
    # The Python parser's wording, so an error reads the same whichever of the two refused the bytes.
    return DecodeError(f"Error parsing message with type {FACTS[signal].request_type.DESCRIPTOR.full_name!r}")


def check_native(signal: Signal, payload: bytes) -> None:
    """Raise ``DecodeError`` unless ``payload`` parses as a request of ``signal``, as the Python parser
    would (the core's schema pass, without building the message)."""
    try:
        core_check(CORE_SIGNALS.index(signal), payload)
    except WireError as error:
        raise _decode_error(signal) from error


def process_native(
    signal: Signal,
    payload: bytes | bytearray | memoryview | Message,
    contract: CompiledContract,
    options: EngineOptions,
    state: CardinalityState | None,
    source: Location | None,
) -> Outcome[Any]:
    """The core's outcome for one request; raises ``DecodeError`` (as the Python parser does) for bytes
    that are not one, and ``otel_contract._core.CoreError`` for a bug in the core."""
    data = bytes(payload) if isinstance(payload, bytes | bytearray | memoryview) else payload.SerializeToString()
    native = NativeContract.of(contract)
    budgets = state.budgets if state is not None else None
    try:
        answer = core_process(
            native.core, CORE_SIGNALS.index(signal), data, native.env_values(options.env), options.audit, budgets
        )
    except WireError as error:
        raise _decode_error(signal) from error
    rewritten, rows, items, rejected, merged = answer
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
    return Outcome(FACTS[signal].request_type, data, rewritten, findings, items, rejected, merged)
