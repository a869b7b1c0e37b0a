"""``render rules``: the contract's compat shims as a Prometheus rule file.

One group, one recording rule per shim (``record``, ``expr``, ``labels``), so that the legacy series
the sidecar emits in the stream can instead (or also) be recorded by Prometheus from the canonical
series. Prometheus rejects annotations on recording rules, so owner, reason, unit and expiry go in
a comment above each rule, where a reviewer of the rule file sees them.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from otel_contract.contract.model import Contract, Shim
from otel_contract.prometheus_names import is_classic_label, is_classic_name
from otel_contract.render import ArtefactOptions, RenderError, header, yaml_block, yaml_comment

# Prometheus' duration syntax (model.ParseDuration): units from largest to smallest, each at most once.
_DURATION = re.compile(r"((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?")

_RULE_INDENT = 6  # groups: / - name: / rules: / - record:


def default_group(contract: Contract) -> str:
    """The rule group's name unless ``--group`` says otherwise."""
    return f"otel-contract-compat-{contract.name}"


def render(contract: Contract, options: ArtefactOptions) -> str:
    """The Prometheus rule file of ``contract``'s compat shims."""
    group = default_group(contract) if options.group is None else options.group
    if not group.strip():
        raise RenderError("the rule group name must not be empty")
    if options.interval is not None:
        _check_interval(options.interval)
    lines = header(contract, "render rules")
    if not contract.compat:
        lines += [
            *yaml_comment("The contract has no compat: shims, so there is nothing to record."),
            *yaml_block({"groups": []}),
        ]
        return "\n".join(lines) + "\n"
    _check_names(contract.compat)
    group_keys: dict[str, str] = {"name": group}
    if options.interval is not None:
        group_keys["interval"] = options.interval
    lines.append("groups:")
    lines += yaml_block([group_keys], indent=2)
    lines.append("    rules:")
    for shim in contract.compat:
        lines += _comment(shim, options.today)
        lines += yaml_block([_rule(shim)], indent=_RULE_INDENT)
    return "\n".join(lines) + "\n"


def _rule(shim: Shim) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": shim.record, "expr": shim.expr}
    if shim.labels:
        rule["labels"] = dict(shim.labels)
    return rule


def _comment(shim: Shim, today: date) -> list[str]:
    """Who owns the shim, until when, and why: what a reviewer needs to know before touching the rule."""
    lines = yaml_comment(f"compat shim {shim.record}", _RULE_INDENT)
    if shim.owner is not None:
        lines += yaml_comment(shim.owner, _RULE_INDENT, first="owner: ", rest="  ")
    expires = shim.expires.isoformat()
    if shim.expires < today:
        # The same test as check's expired-shim rule, so the comment and the CI gate agree.
        expires += f" -- EXPIRED on {shim.expires.isoformat()} (judged on {today.isoformat()}): remove the shim"
    lines += yaml_comment(expires, _RULE_INDENT, first="expires: ")
    if shim.unit is not None:
        lines += yaml_comment(shim.unit, _RULE_INDENT, first="unit: ", rest="  ")
    if shim.reason is not None:
        lines += yaml_comment(shim.reason, _RULE_INDENT, first="reason: ", rest="  ")
    return lines


def _check_names(shims: tuple[Shim, ...]) -> None:
    problems = [
        f"compat shim {shim.record!r}: record is not a Prometheus metric name"
        for shim in shims
        if not is_classic_name(shim.record)
    ]
    problems += [
        f"compat shim {shim.record!r}: label {label!r} is not a Prometheus label name"
        for shim in shims
        for label in shim.labels
        if not is_classic_label(label)
    ]
    if problems:
        raise RenderError(
            "; ".join(problems) + " (Prometheus 2.x accepts [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]*)"
        )


def _check_interval(interval: str) -> None:
    match = _DURATION.fullmatch(interval)
    if not interval or match is None:
        raise RenderError(f"interval {interval!r} is not a Prometheus duration such as 30s, 1m or 1h30m")
    if not any(int(value) for value in match.groups()[1::2] if value is not None):
        raise RenderError(f"interval {interval!r} must be longer than 0s")
