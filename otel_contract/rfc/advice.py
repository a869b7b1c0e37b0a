"""What ``rfc new`` and ``rfc update`` tell the author about the version gate once the RFC is written."""

from __future__ import annotations

from dataclasses import dataclass

from otel_contract.diff import Bump, ContractDiff


@dataclass(frozen=True, slots=True)
class Advice:
    message: str | None  # a line for stderr, None when there is nothing to say
    fails: bool  # the gate fails: exit 1, though the RFC is written (the reviewer must see it)


def gate_advice(result: ContractDiff | None, *, contract_path: str, rfc_path: str) -> Advice:
    """``result`` None is a new contract: nothing to compare, nothing to gate."""
    if result is None:
        return Advice(None, fails=False)
    gate = result.gate
    if not gate.passed:
        return Advice(
            f"warning: the version gate fails: {'; '.join(gate.problems)}. The RFC shows it; set version:"
            f" {gate.suggested} in {contract_path}, then: otel-contract rfc update {rfc_path} -c {contract_path}",
            fails=True,
        )
    if gate.actual is Bump.NONE:
        return Advice(
            f"note: the version is still {gate.new}, so check --require-rfc does not ask for this RFC", fails=False
        )
    return Advice(None, fails=False)
