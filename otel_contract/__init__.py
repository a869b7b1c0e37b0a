"""otel-contract: one versioned monitoring contract, enforced by a sidecar and a CI gate.

The public API: load and lint contracts, the rule catalog, findings and unit conversion.
"""

from otel_contract.contract import (
    CompiledContract,
    Contract,
    ContractError,
    ContractUnreadable,
    LintResult,
    compile_contract,
)
from otel_contract.findings import Finding, Location
from otel_contract.loading import lint_contract, load_contract
from otel_contract.rules import RULES, Action, Level, Rule

__version__ = "0.1.0"

__all__ = [
    "RULES",
    "Action",
    "CompiledContract",
    "Contract",
    "ContractError",
    "ContractUnreadable",
    "Finding",
    "Level",
    "LintResult",
    "Location",
    "Rule",
    "__version__",
    "compile_contract",
    "lint_contract",
    "load_contract",
]
