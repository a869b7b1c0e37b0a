"""The monitoring contract: file format, loader, model and compiled lookup tables."""

from otel_contract.contract.compiled import AliasTarget, CompiledContract, CompiledMetric, compile_contract
from otel_contract.contract.loader import (
    ContractError,
    ContractUnreadable,
    LintResult,
    ReadContract,
    read_contract,
    schema,
)
from otel_contract.contract.model import Contract, Metric, MetricType, Stability

__all__ = [
    "AliasTarget",
    "CompiledContract",
    "CompiledMetric",
    "Contract",
    "ContractError",
    "ContractUnreadable",
    "LintResult",
    "Metric",
    "MetricType",
    "ReadContract",
    "Stability",
    "compile_contract",
    "read_contract",
    "schema",
]
