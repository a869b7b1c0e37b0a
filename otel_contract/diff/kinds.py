"""The change catalog: every kind of contract change ``diff`` reports, with its impact, defined once.

A kind's impact is fixed; where the same edit can break or not depending on context (a unit that
the sidecar can convert or cannot, a removed metric that was archived or was not), there are two
kinds. The README's change table is generated from the same data (a test keeps them in step).

Impact, from the point of view of everyone who relied on the old contract:

* ``breaking``: telemetry that the old contract accepted is rejected or flagged under the new one,
  or a query, dashboard, alert or HPA written against the old contract loses data or changes
  meaning. Needs a major version.
* ``compatible``: everything that worked keeps working; something new is allowed or promised.
  Needs a version bump (a minor one, by semver's rules for additions).
* ``informational``: documentation and tuning that change neither what is accepted nor what
  consumers read. Needs a version bump.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class Impact(enum.IntEnum):
    """Ordered so that ``max()`` of a set of changes is the most serious."""

    INFORMATIONAL = 1
    COMPATIBLE = 2
    BREAKING = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Area(enum.Enum):
    """Sections of a contract, in the order reports list them."""

    CONTRACT = "contract"
    NAMING = "naming"
    DEFAULTS = "defaults"
    POLICY = "policy"
    RESOURCE = "resource"
    ATTRIBUTES = "attributes"
    METRICS = "metrics"
    COMPAT = "compat"
    INVARIANTS = "invariants"
    AUTOSCALING = "autoscaling"


@dataclass(frozen=True, slots=True)
class ChangeKind:
    slug: str
    impact: Impact
    summary: str

    def __str__(self) -> str:
        return self.slug


_CATALOG: list[ChangeKind] = []


def _kind(slug: str, impact: Impact, summary: str) -> ChangeKind:
    kind = ChangeKind(slug, impact, summary)
    _CATALOG.append(kind)
    return kind


B, C, I = Impact.BREAKING, Impact.COMPATIBLE, Impact.INFORMATIONAL  # noqa: E741 - reads as a table

# --- the contract as a whole ------------------------------------------------------------------------
CONTRACT_RENAMED = _kind(
    "contract-renamed", B, "The contract id changed; reports, health and logs name it differently."
)
CONTRACT_METADATA = _kind("contract-metadata", I, "Description or owners changed.")

# --- metrics ------------------------------------------------------------------------------------------
METRIC_ADDED = _kind("metric-added", C, "A metric was added.")
METRIC_REMOVED = _kind("metric-removed", B, "A metric was removed: its data becomes unknown and its queries go empty.")
ARCHIVED_METRIC_REMOVED = _kind(
    "archived-metric-removed", C, "An archived metric was removed, and unknown metrics are not rejected."
)
METRIC_RENAMED = _kind("metric-renamed", B, "A metric was renamed (the new one lists the old name as an alias).")
METRIC_RENAMED_WITH_SHIM = _kind(
    "metric-renamed-with-shim", C, "A metric was renamed, and a compat shim keeps recording the old name."
)
METRIC_TYPE = _kind("metric-type", B, "The metric's data type changed.")
METRIC_UNIT = _kind("metric-unit", B, "The unit changed to one the old unit cannot be converted to.")
METRIC_UNIT_SCALED = _kind(
    "metric-unit-scaled",
    B,
    "The unit changed to a convertible one: data is converted, but every value consumers read changes scale.",
)
METRIC_UNIT_DROPPED = _kind("metric-unit-dropped", C, "The unit is no longer fixed.")
METRIC_TEMPORALITY = _kind("metric-temporality", B, "The required aggregation temporality changed or was added.")
METRIC_TEMPORALITY_DROPPED = _kind("metric-temporality-dropped", C, "The temporality is no longer fixed.")
METRIC_MONOTONIC = _kind("metric-monotonic", B, "The required monotonicity changed or was added.")
METRIC_MONOTONIC_DROPPED = _kind("metric-monotonic-dropped", C, "The monotonicity is no longer fixed.")
METRIC_DEPRECATED = _kind(
    "metric-deprecated", C, "A metric became deprecated or archived; its data is still accepted and flagged."
)
METRIC_DEPRECATED_REJECTED = _kind(
    "metric-deprecated-rejected",
    B,
    "A metric became deprecated or archived, and the policy rejects deprecated metrics.",
)
METRIC_STABILITY = _kind("metric-stability", I, "The stability changed in a way that accepts everything it did.")
METRIC_DOCUMENTATION = _kind("metric-documentation", I, "Description, owner, collection, since or replaced_by changed.")
METRIC_PRECISION_REDUCED = _kind("metric-precision-reduced", B, "Consumers may rely on fewer decimals than before.")
METRIC_PRECISION_RAISED = _kind("metric-precision-raised", C, "Consumers may rely on more decimals than before.")
ALIAS_ADDED = _kind("alias-added", C, "A legacy name is now accepted and normalized.")
ALIAS_REMOVED = _kind("alias-removed", B, "A legacy name is no longer accepted: its data becomes an unknown metric.")
ALIAS_UNIT = _kind(
    "alias-unit", B, "The unit a legacy name is converted from changed: its values are scaled differently."
)
MAX_SERIES_REDUCED = _kind(
    "max-series-reduced", B, "The cardinality budget shrank or was added: series accepted before can be refused."
)
MAX_SERIES_RAISED = _kind("max-series-raised", C, "The cardinality budget grew or was removed.")

# --- attributes (of a metric, of every signal, or of the resource) -----------------------------------
ATTRIBUTE_REQUIRED = _kind("attribute-required", B, "An attribute became required: data without it is reported.")
ATTRIBUTE_RELAXED = _kind("attribute-relaxed", C, "An attribute is no longer required.")
ATTRIBUTE_OPTIONAL = _kind("attribute-optional", I, "The documented optional attributes changed.")
ATTRIBUTE_FORBIDDEN = _kind("attribute-forbidden", B, "An attribute became forbidden: data carrying it is reported.")
ATTRIBUTE_ALLOWED = _kind("attribute-allowed", C, "An attribute is no longer forbidden.")
ATTRIBUTE_VALUES_REMOVED = _kind(
    "attribute-values-removed", B, "Values were removed from an allowed list, or an allowed list was added."
)
ATTRIBUTE_VALUES_ADDED = _kind(
    "attribute-values-added", C, "Values were added to an allowed list, or the list was removed."
)
ATTRIBUTE_PATTERN = _kind(
    "attribute-pattern", B, "A value pattern was added or changed: values accepted before can fail it."
)
ATTRIBUTE_PATTERN_DROPPED = _kind("attribute-pattern-dropped", C, "A value pattern was removed.")
ATTRIBUTE_TYPE = _kind("attribute-type", B, "An attribute's declared type was added or changed.")
ATTRIBUTE_TYPE_DROPPED = _kind("attribute-type-dropped", C, "An attribute's declared type was removed.")
ATTRIBUTE_RENAME = _kind(
    "attribute-rename", B, "An attribute rename was added, changed or removed: consumers see a different key."
)

# --- resource -------------------------------------------------------------------------------------------
RESOURCE_ACTION_INSERT_ADDED = _kind(
    "resource-action-insert-added", C, "An insert action fills an attribute only where it is absent."
)
RESOURCE_ACTION_ADDED = _kind(
    "resource-action-added", B, "An action that overwrites, renames or deletes attributes was added."
)
RESOURCE_ACTION_REMOVED = _kind(
    "resource-action-removed", B, "A resource action was removed: what it set is no longer set."
)
RESOURCE_ACTION_CHANGED = _kind("resource-action-changed", B, "A resource action sets a different value or source.")
RESOURCE_ACTIONS_REORDERED = _kind("resource-actions-reordered", B, "Resource actions run in a different order.")

# --- naming ----------------------------------------------------------------------------------------------
NAMING_PATTERN = _kind("naming-pattern", B, "A name pattern was added or changed: names accepted before can fail it.")
NAMING_PATTERN_DROPPED = _kind("naming-pattern-dropped", C, "A name pattern was removed.")
NAMING_RULE = _kind("naming-rule", B, "A naming rule was added or changed.")
NAMING_RULE_DROPPED = _kind("naming-rule-dropped", C, "A naming rule was removed.")

# --- policy and defaults ----------------------------------------------------------------------------------
POLICY_STRICTER = _kind("policy-stricter", B, "A rule's action became stricter (ignore < flag < reject).")
POLICY_LOOSER = _kind("policy-looser", C, "A rule's action became more lenient.")

# --- compat shims ---------------------------------------------------------------------------------------------
SHIM_ADDED = _kind("shim-added", C, "A compat shim was added.")
SHIM_REMOVED = _kind("shim-removed", B, "A compat shim was removed: dashboards on its series go empty.")
SHIM_CHANGED = _kind("shim-changed", B, "A shim's expression, labels or unit changed: its series changes.")
SHIM_EXPIRY_EARLIER = _kind("shim-expiry-earlier", B, "A shim expires earlier: consumers have less time to migrate.")
SHIM_EXPIRY_LATER = _kind("shim-expiry-later", C, "A shim expires later.")
SHIM_METADATA = _kind("shim-metadata", I, "A shim's owner or reason changed.")

# --- invariants -------------------------------------------------------------------------------------------------
INVARIANT_ADDED = _kind("invariant-added", B, "An invariant was added: telemetry that passed validate can fail it.")
INVARIANT_REMOVED = _kind("invariant-removed", C, "An invariant was removed.")
INVARIANT_TIGHTENED = _kind("invariant-tightened", B, "An invariant's check changed or its tolerance shrank.")
INVARIANT_LOOSENED = _kind("invariant-loosened", C, "An invariant's tolerance grew.")
INVARIANT_METADATA = _kind("invariant-metadata", I, "An invariant's description changed.")

# --- autoscaling ----------------------------------------------------------------------------------------------------
SIGNAL_ADDED = _kind("signal-added", C, "An autoscaling signal was added.")
SIGNAL_REMOVED = _kind("signal-removed", B, "An autoscaling signal was removed: its HPA loses its metric.")
SIGNAL_CHANGED = _kind(
    "signal-changed", B, "What a signal reads changed (kind, name, selector, rate window, resources, target object)."
)
SIGNAL_TUNED = _kind(
    "signal-tuned", I, "How a signal scales changed (target, replicas, behavior, smoothing), not what it reads."
)

KINDS: Mapping[str, ChangeKind] = MappingProxyType({kind.slug: kind for kind in _CATALOG})
