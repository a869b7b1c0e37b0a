"""Compat shims: recording-rule-style PromQL evaluated on the OTLP stream (see the README, "Compat shims").

``compile_shims(contract)`` builds the plans (``UnsupportedExpression`` names what is outside the
subset); a ``ShimEvaluator`` turns each metrics request into the shims' legacy series.
"""

from otel_contract.shims._emit import SCOPE_NAME
from otel_contract.shims._plan import UnsupportedExpression
from otel_contract.shims.evaluator import (
    CompiledShim,
    ShimEvaluator,
    ShimResult,
    absent_input,
    compile_shim,
    compile_shims,
    shim_inputs,
)

__all__ = [
    "SCOPE_NAME",
    "CompiledShim",
    "ShimEvaluator",
    "ShimResult",
    "UnsupportedExpression",
    "absent_input",
    "compile_shim",
    "compile_shims",
    "shim_inputs",
]
