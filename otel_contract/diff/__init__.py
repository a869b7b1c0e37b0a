"""``otel-contract diff``: what changed between two contract versions, how it breaks, and the semver gate."""

from otel_contract.diff.compare import compare
from otel_contract.diff.kinds import KINDS, Area, ChangeKind, Impact
from otel_contract.diff.model import Change, ContractDiff, FailOn, Side, VersionGate
from otel_contract.diff.version import Bump, bump_between, next_version, required_bump

__all__ = [
    "KINDS",
    "Area",
    "Bump",
    "Change",
    "ChangeKind",
    "ContractDiff",
    "FailOn",
    "Impact",
    "Side",
    "VersionGate",
    "bump_between",
    "compare",
    "next_version",
    "required_bump",
]
