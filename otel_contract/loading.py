"""A contract through every check: ``lint_contract`` (``check``) and ``load_contract`` (the sidecar, ``validate``).

contract/ reads, validates, merges and compiles a contract and checks what the contract model alone
tells; the compat shims' checks (is the expr in the evaluated subset?) and the autoscaling signals'
(can this signal feed an HPA?) need the layers above it. This module is the one place that runs them
all, in ``CHECKS`` order, so contract/ imports nothing above it.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Any

from otel_contract import rules
from otel_contract.autoscaling import signals
from otel_contract.contract.checks import CHECKS as MODEL_CHECKS
from otel_contract.contract.checks import Check, Reporter, run_checks
from otel_contract.contract.compiled import CompiledContract, compile_contract
from otel_contract.contract.files import ContractFiles
from otel_contract.contract.loader import ContractError, LintResult, read_contract
from otel_contract.contract.model import Contract
from otel_contract.findings import Finding
from otel_contract.rules import Level
from otel_contract.shims import UnsupportedExpression, compile_shim, shim_inputs

# Findings the sidecar and `validate` load a contract despite: an expired shim keeps emitting
# (a dashboard must not break at 3 a.m.) and is reported at runtime instead.
_TOLERATED_AT_RUNTIME = frozenset({rules.EXPIRED_SHIM})


def _selector_names(expr: Any) -> list[str]:
    import promql_parser  # here, not above: about 2 MiB, loaded only for a contract with shims

    names: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.append(node.name)
            else:
                names.extend(
                    m.value
                    for m in node.matchers.matchers
                    if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal
                )

    promql_parser.walk(expr, visit)
    return names


def _check_shims(contract: Contract, out: Reporter) -> None:
    if not contract.compat:
        return
    import promql_parser  # here, not above: about 2 MiB, loaded only for a contract with shims

    inputs = shim_inputs(contract)  # the series the contract's metrics yield (prometheus_names)
    for index, shim in enumerate(contract.compat):
        try:
            expr = promql_parser.parse(shim.expr)
        except ValueError as error:
            out.report(
                rules.SHIM_EXPRESSION,
                ("compat", index, "expr"),
                f"expr of shim {shim.record!r} is not valid PromQL: {error}",
                metric=shim.record,
            )
        else:
            names = _selector_names(expr)
            unknown = [name for name in names if name not in inputs]
            if not names or len(unknown) == len(names):
                what = ", ".join(repr(n) for n in unknown) if unknown else "no metric by name"
                out.report(
                    rules.SHIM_INPUT,
                    ("compat", index, "expr"),
                    f"shim {shim.record!r} reads {what}; a shim must read metrics of the contract",
                    metric=shim.record,
                )
            else:
                try:
                    compile_shim(shim, inputs)
                except UnsupportedExpression as error:
                    out.report(
                        rules.SHIM_UNSUPPORTED,
                        ("compat", index, "expr"),
                        f"shim {shim.record!r} cannot be evaluated in the stream: {error}"
                        " (see the README, 'Compat shims', for the subset)",
                        metric=shim.record,
                    )
        if shim.expires < out.today:
            out.report(
                rules.EXPIRED_SHIM,
                ("compat", index, "expires"),
                f"shim {shim.record!r} expired on {shim.expires.isoformat()} (today is {out.today.isoformat()});"
                " migrate its consumers and remove it, or move the date in a reviewed change",
                metric=shim.record,
            )


def _check_autoscaling(contract: Contract, out: Reporter) -> None:
    for index, signal in enumerate(contract.autoscaling):
        for problem in signals.problems(contract, signal):
            out.report(
                rules.AUTOSCALING_SIGNAL, ("autoscaling", index, problem.field), problem.message, metric=signal.metric
            )
    for index, problem in signals.conflicts(contract):
        out.report(
            rules.AUTOSCALING_SIGNAL,
            ("autoscaling", index, problem.field),
            problem.message,
            metric=contract.autoscaling[index].metric,
        )


CHECKS: tuple[Check, ...] = (*MODEL_CHECKS, _check_shims, _check_autoscaling)


def lint_contract(
    path: str | os.PathLike[str],
    *,
    today: date | None = None,
    files: ContractFiles | None = None,
    allow_include_outside: bool = False,
) -> LintResult:
    """Every finding of the contract at ``path`` and its includes, read from ``files`` (default: the
    working tree). An include that resolves (symlinks followed) outside the directory of ``path`` is
    a ``contract-include`` error and is not read, unless ``allow_include_outside``.

    Raises ``ContractUnreadable`` when a file cannot be read or parsed as YAML.
    """
    read = read_contract(path, files=files, allow_include_outside=allow_include_outside)
    findings = list(read.findings)
    if read.contract is not None:
        findings += run_checks(read.contract, read.document, today or date.today(), CHECKS)
    findings.sort(key=Finding.sort_key)
    return LintResult(read.path, read.contract, tuple(findings))


def load_contract(
    path: str | os.PathLike[str], *, today: date | None = None, allow_include_outside: bool = False
) -> CompiledContract:
    """The compiled contract at ``path``, for the sidecar and ``validate``.

    Raises ``ContractError`` listing every error (expired shims excepted: they are reported at
    runtime), or ``ContractUnreadable``.
    """
    result = lint_contract(path, today=today, allow_include_outside=allow_include_outside)
    errors = [f for f in result.findings if f.level is Level.ERROR and f.rule not in _TOLERATED_AT_RUNTIME]
    if errors or result.contract is None:
        raise ContractError(errors)
    return compile_contract(result.contract)
