"""The rule catalog: every finding otel-contract can report, defined once.

Output, configuration (``policy:``), documentation and tests all name a rule by its slug. Code
refers to the constants below (``rules.METRIC_NAME``), never to a slug spelled as a string, so a
rename happens here and nowhere else.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class Level(enum.IntEnum):
    """How serious a finding is; ordered so that ``level >= threshold`` works."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Level:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown level {text!r} (expected error, warning or info)") from None


class Action(enum.Enum):
    """What the sidecar does with the data a telemetry finding is about."""

    REJECT = "reject"  # drop the offending data points, count them in OTLP partial_success
    FLAG = "flag"  # forward unchanged, count and report
    IGNORE = "ignore"  # neither count nor report


class Scope(enum.Flag):
    """Where a rule can fire: on telemetry (sidecar, ``validate``), on a contract file (``check``),
    on a sidecar pipeline config (``serve``)."""

    TELEMETRY = enum.auto()
    CONTRACT = enum.auto()
    PIPELINE = enum.auto()


@dataclass(frozen=True, slots=True)
class Rule:
    slug: str
    level: Level
    action: Action
    scope: Scope
    summary: str
    only_in: str = ""
    """The one command that reports the rule, where the other commands of its scope never do."""

    def __str__(self) -> str:
        return self.slug

    @property
    def scope_names(self) -> tuple[str, ...]:
        """Where it fires, lower case, in ``Scope`` order: ``("telemetry", "contract")``."""
        return tuple(scope.name.lower() for scope in Scope if scope in self.scope and scope.name)


_CATALOG: list[Rule] = []


def _rule(slug: str, level: Level, action: Action, scope: Scope, summary: str, only_in: str = "") -> Rule:
    rule = Rule(slug, level, action, scope, summary, only_in)
    _CATALOG.append(rule)
    return rule


def _validate_rule(slug: str, level: Level, action: Action, scope: Scope, summary: str) -> Rule:
    # The CI gate reads scrapes and lints Prometheus names; the sidecar does neither.
    return _rule(slug, level, action, scope, summary, only_in="validate")


_T = Scope.TELEMETRY
_C = Scope.CONTRACT
E, W, I = Level.ERROR, Level.WARNING, Level.INFO  # noqa: E741 - the catalog reads better as a table
REJECT, FLAG = Action.REJECT, Action.FLAG

# --- telemetry rules (design §4) -------------------------------------------------------------------
UNKNOWN_METRIC = _rule("unknown-metric", W, FLAG, _T, "The metric name is neither a contract metric nor an alias.")
METRIC_NAME = _rule("metric-name", E, FLAG, _T | _C, "The metric name breaks the naming pattern or a naming rule.")
DEPRECATED_METRIC = _rule(
    "deprecated-metric", W, FLAG, _T, "An alias or a deprecated metric was used; it was normalized."
)
TYPE_MISMATCH = _rule(
    "type-mismatch", E, REJECT, _T, "Data type, monotonicity or temporality differs from the contract."
)
UNIT_MISMATCH = _rule(
    "unit-mismatch", E, REJECT, _T | _C, "The unit differs from the contract and cannot be converted."
)
MISSING_ATTRIBUTE = _rule("missing-attribute", E, FLAG, _T, "A required attribute is absent.")
FORBIDDEN_ATTRIBUTE = _rule("forbidden-attribute", E, REJECT, _T, "A forbidden attribute is present.")
ATTRIBUTE_VALUE = _rule(
    "attribute-value",
    E,
    FLAG,
    _T,
    "An attribute value is not allowed, has the wrong type or cannot be coerced.",
)
IDENTITY_CONFLICT = _rule(
    "identity-conflict", W, FLAG, _T, "After renames, two series collapsed into one identity; one was kept."
)
CARDINALITY = _rule("cardinality", E, REJECT, _T, "A metric went over its max_series budget; new series are refused.")
MISSING_RESOURCE_ATTRIBUTE = _rule(
    "missing-resource-attribute",
    E,
    FLAG,
    _T,
    "A required resource attribute is absent after resource actions.",
)
RESOURCE_ATTRIBUTE_VALUE = _rule("resource-attribute-value", E, FLAG, _T, "A resource attribute value is not allowed.")
INVALID_DATA_POINT = _rule(
    "invalid-data-point",
    E,
    REJECT,
    _T,
    "NaN, a negative counter, bucket counts that do not add up, and the like.",
)
EXPIRED_SHIM = _rule("expired-shim", E, FLAG, _T | _C, "A compat shim is past its expiry date.")
SHIM_INPUT_ABSENT = _rule(
    "shim-input-absent",
    W,
    FLAG,
    _T,
    "A compat shim's input metric does not arrive, so the legacy series it keeps alive is not emitted.",
)
INVARIANT = _rule("invariant", E, FLAG, _T, "A cross-metric invariant does not hold.")
CONTRACT_SCHEMA = _rule("contract-schema", E, FLAG, _C, "The contract file does not match the contract schema.")

# --- input rules (``otel-contract validate`` on a scrape) -------------------------------------------
SCRAPE_CONTENT_TYPE = _validate_rule(
    "scrape-content-type",
    W,
    FLAG,
    _T,
    "A /metrics endpoint answered with a Content-Type that is not Prometheus text 0.0.4 or OpenMetrics 1.0.0.",
)
POD_MAPPING = _validate_rule(
    "pod-mapping",
    W,
    FLAG,
    _T,
    "Series carry no pod/namespace labels (nor k8s.pod.name/k8s.namespace.name); prometheus-adapter cannot map them.",
)

# --- Prometheus naming lints (``validate``; what ``promtool check metrics`` reports) --------------
PROM_HELP = _validate_rule("prom-help", W, FLAG, _T, "A metric has no help text (HELP, or an OTLP description).")
PROM_COUNTER_SUFFIX = _validate_rule("prom-counter-suffix", W, FLAG, _T, 'A counter\'s name does not end in "_total".')
PROM_TOTAL_SUFFIX = _validate_rule("prom-total-suffix", W, FLAG, _T, 'A metric that is not a counter ends in "_total".')
PROM_BASE_UNIT = _validate_rule(
    "prom-base-unit", W, FLAG, _T, "The name carries a non-base unit (milliseconds, not seconds; kilobytes, not bytes)."
)
PROM_UNIT_ABBREVIATION = _validate_rule(
    "prom-unit-abbreviation", W, FLAG, _T, "The name carries an abbreviated unit (ms, sec, kb) instead of the word."
)
PROM_CAMEL_CASE = _validate_rule("prom-camel-case", W, FLAG, _T, "A metric or label name is camelCase, not snake_case.")
PROM_RESERVED_SUFFIX = _validate_rule(
    "prom-reserved-suffix", W, FLAG, _T, "A name ends in _bucket, _count or _sum without being a histogram or summary."
)
PROM_RESERVED_LABEL = _validate_rule(
    "prom-reserved-label", W, FLAG, _T, "An le label outside a histogram, quantile outside a summary, or a __ label."
)
PROM_RESERVED_CHARS = _validate_rule(
    "prom-reserved-chars", W, FLAG, _T, "A metric name contains ':', which is reserved for recording rules."
)
PROM_TYPE_IN_NAME = _validate_rule(
    "prom-type-in-name", W, FLAG, _T, "A metric name includes its type (counter, gauge, ...)."
)
PROM_DUPLICATE = _validate_rule(
    "prom-duplicate", E, FLAG, _T, "The same series (name and labels) appears twice in one exposition or request."
)

# --- contract rules (``otel-contract check``) ------------------------------------------------------
CONTRACT_SYNTAX = _rule("contract-syntax", E, FLAG, _C, "The contract file is not valid YAML.")
CONTRACT_INCLUDE = _rule(
    "contract-include", E, FLAG, _C, "An included contract file is missing, unreadable or part of a cycle."
)
CONTRACT_VERSION = _rule("contract-version", E, FLAG, _C, "The contract version is not a semantic version.")
DUPLICATE_METRIC = _rule("duplicate-metric", E, FLAG, _C, "Two contract metrics have the same name.")
ALIAS_CONFLICT = _rule("alias-conflict", E, FLAG, _C, "An alias is also a metric name or an alias of another metric.")
INVALID_PATTERN = _rule(
    "invalid-pattern", E, FLAG, _C, "A regular expression does not compile as RE2 (the syntax Prometheus uses)."
)
INVALID_UNIT = _rule("invalid-unit", E, FLAG, _C, "A unit is not valid UCUM.")
ATTRIBUTE_CONFLICT = _rule(
    "attribute-conflict", E, FLAG, _C, "An attribute is both required (or optional) and forbidden."
)
RENAME_CHAIN = _rule(
    "rename-chain", E, FLAG, _C, "An attribute rename leads to another renamed key, or renames form a cycle."
)
INVALID_BUDGET = _rule("invalid-budget", E, FLAG, _C, "max_series must be a positive number of series.")
SHIM_EXPRESSION = _rule("shim-expression", E, FLAG, _C, "A compat shim's expr is not valid PromQL.")
SHIM_INPUT = _rule("shim-input", E, FLAG, _C, "A compat shim's expr reads no metric of the contract.")
SHIM_UNSUPPORTED = _rule(
    "shim-unsupported", E, FLAG, _C, "A compat shim's expr uses PromQL outside the subset evaluated in the stream."
)
METRIC_METADATA = _rule("metric-metadata", E, FLAG, _C, "A stable metric has no owner or no description.")
RFC_FIELD = _rule(
    "rfc-field", W, FLAG, _C, "A stable metric lacks an RFC field (collection, precision) reviewers rely on."
)
AUTOSCALING_SIGNAL = _rule(
    "autoscaling-signal",
    E,
    FLAG,
    _C,
    "An autoscaling signal cannot feed its HPA: unknown metric, unmappable series, bad window, target or replicas.",
)
# Judged against a git base, so only ``check --require-rfc`` reports it (not lint_contract alone).
MISSING_RFC = _rule(
    "missing-rfc",
    E,
    FLAG,
    _C,
    "The contract version changed, but no RFC names the contract and its new version.",
    only_in="check --require-rfc",
)

# --- pipeline config rules (``otel-contract serve``) ---------------------------------------------
PIPELINE_CONFIG = _rule(
    "pipeline-config", E, FLAG, Scope.PIPELINE, "The sidecar's pipeline config is unreadable or breaks its schema."
)

RULES: Mapping[str, Rule] = MappingProxyType({rule.slug: rule for rule in _CATALOG})
"""Every rule by slug, in catalog order."""

del _T, _C, E, W, I, REJECT, FLAG


def get(slug: str) -> Rule:
    """The rule named by ``slug``; ``KeyError`` names the unknown slug."""
    try:
        return RULES[slug]
    except KeyError:
        raise KeyError(f"unknown rule {slug!r}") from None
