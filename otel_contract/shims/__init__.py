"""Compat shims: recording-rule-style PromQL evaluated on the OTLP stream (see the README, "Compat shims").

``compile_shims(contract)`` builds the plans (``UnsupportedExpression`` names what is outside the
subset); a ``ShimEvaluator`` turns each metrics request into the shims' legacy series.

The series view of a metrics request (``metrics_of``, ``observations``, ``Labels``, ``Element``) and
the emitter of recorded series (``Recorded``, ``emit``) are public too: the smoothed signals
(``otel_contract.autoscaling.stream``) read and write the stream through them.
"""

from otel_contract.shims._emit import SCOPE_NAME, Recorded, emit
from otel_contract.shims._plan import Element, UnsupportedExpression
from otel_contract.shims._series import Labels, metrics_of, observations
from otel_contract.shims.evaluator import (
    CompiledShim,
    PlainCopy,
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
    "Element",
    "Labels",
    "PlainCopy",
    "Recorded",
    "ShimEvaluator",
    "ShimResult",
    "UnsupportedExpression",
    "absent_input",
    "compile_shim",
    "compile_shims",
    "emit",
    "metrics_of",
    "observations",
    "shim_inputs",
]
