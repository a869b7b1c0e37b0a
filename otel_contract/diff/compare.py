"""Field-by-field comparison of two contract models (pure: no I/O).

Every change is classified by its kind (``kinds.py``) and carries the consequence in words. Where the
consequence depends on what the sidecar does with such data, the reason names the new contract's
action for the rule concerned ("is rejected (attribute-value)", "is flagged as missing-attribute").
"""

from __future__ import annotations

from otel_contract.contract.model import Contract
from otel_contract.diff._metrics import _MetricDiffer
from otel_contract.diff._sections import _SectionDiffer
from otel_contract.diff._signals import _SignalDiffer
from otel_contract.diff.model import Change, ContractDiff, Side, version_gate


def compare(old: Contract, new: Contract) -> ContractDiff:
    """Every change from ``old`` to ``new``, most serious first, and the semver gate over them."""
    differ = _Differ(old, new)
    differ.run()
    changes = tuple(sorted(differ.changes, key=Change.sort_key))
    return ContractDiff(
        old=Side(old.name, old.version, old.source),
        new=Side(new.name, new.version, new.source),
        changes=changes,
        gate=version_gate(old.version, new.version, changes),
    )


class _Differ(_SectionDiffer, _MetricDiffer, _SignalDiffer):
    """Every area, one module each (``_sections``, ``_metrics``, ``_signals``); ``compare`` orders the result."""

    def run(self) -> None:
        self._contract()
        self._naming()
        self._defaults_and_policy()
        self._resource()
        self._global_attributes()
        self._metrics()
        self._compat()
        self._invariants()
        self._autoscaling()
