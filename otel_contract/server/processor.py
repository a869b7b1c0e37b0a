"""How the sidecar answers a request the pipeline (``otel_contract.pipeline``) processed.

Rejected items go in ``partial_success`` with an English message naming rule and metric; flag-only
findings give 0 rejected and a warning (OTLP spec, "Partial Success").
"""

from __future__ import annotations

from typing import Any

from otel_contract.engine import Outcome
from otel_contract.findings import Finding
from otel_contract.otlp import FACTS, Signal
from otel_contract.pipeline import Result
from otel_contract.rules import Action

_MAX_MESSAGE_FINDINGS = 5
# A finding's text quotes names and values from the request; an attacker's megabyte-long metric name
# must not come back in a response larger than the client's receive limit (gRPC's default is 4 MiB).
_MAX_FINDING_TEXT = 300


def _describe(findings: list[Finding]) -> str:
    parts = [
        _cut(f"{f.rule.slug} on {f.metric or f.attribute or 'the request'} ({f.count} times: {f.message})")
        for f in sorted(findings, key=lambda f: -f.count)[:_MAX_MESSAGE_FINDINGS]
    ]
    more = len(findings) - _MAX_MESSAGE_FINDINGS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _cut(text: str) -> str:
    if len(text) <= _MAX_FINDING_TEXT:
        return text
    return f"{text[: _MAX_FINDING_TEXT - 40]}... ({len(text) - _MAX_FINDING_TEXT + 40} more characters)"


def response_for(signal: Signal, outcome: Outcome[Any] | Result, contract: str) -> bytes:
    """The serialized ``Export<Signal>ServiceResponse`` telling the client what happened to its data."""
    if not outcome.dropped and not outcome.findings:
        return b""  # the empty response, serialized: most requests, so no message is built for them
    wording = FACTS[signal]
    response = wording.response_type()
    if outcome.dropped:
        rejecting = [f for f in outcome.findings if f.action is Action.REJECT]
        duplicates = f"{outcome.merged} duplicate(s) after renames; " if outcome.merged else ""
        setattr(response.partial_success, wording.rejected_field, outcome.dropped)
        response.partial_success.error_message = (
            f"contract {contract} rejected {outcome.dropped} {wording.noun}(s): {duplicates}{_describe(rejecting)}"
        )
    elif outcome.findings:
        response.partial_success.error_message = (
            f"warning: contract {contract} accepted the data with findings: {_describe(list(outcome.findings))}"
        )
    serialized: bytes = response.SerializeToString()
    return serialized
