"""The sections of an RFC that the contract already answers, as Markdown tables of the metrics and
shims the change touches: how each is collected, its precision, lifecycle, owners and expiry.

The author still writes the prose; these tables keep the RFC honest about what the contract says.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_contract.contract.model import Contract, Metric, Shim, Stability
from otel_contract.reports.markdown import cell_text, code_span, table_row

_UNSTATED = "_not in the contract_"
_NO_METRIC = "_The change adds or changes no metric._"


def sections(old: Contract | None, new: Contract) -> dict[str, str]:
    """The template's ``{{collection}}``, ``{{precision}}``, ``{{lifecycle}}``, ``{{owners}}`` and
    ``{{shims}}``; ``old`` None means a new contract (everything in it is touched)."""
    touched = touched_metrics(old, new)
    removed = [metric for metric in (old.metrics if old else ()) if metric.name not in _names(new.metrics)]
    return {
        "collection": _collection(touched),
        "precision": _precision(touched),
        "lifecycle": _lifecycle(touched, removed),
        "owners": _owners(new, touched),
        "shims": _shims(old, new),
    }


def touched_metrics(old: Contract | None, new: Contract) -> tuple[Metric, ...]:
    """The metrics of ``new`` that are added or differ in any field from ``old``."""
    before = {metric.name: metric for metric in old.metrics} if old else {}
    return tuple(metric for metric in new.metrics if before.get(metric.name) != metric)


def _names(metrics: Sequence[Metric]) -> set[str]:
    return {metric.name for metric in metrics}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    if not rows:
        return empty
    lines = [table_row(header), table_row(["---"] * len(header)), *(table_row(row) for row in rows)]
    return "\n".join(lines)


def _or_unstated(value: object) -> str:
    return _UNSTATED if value is None else code_span(str(value))


def _collection(touched: Sequence[Metric]) -> str:
    rows = [[code_span(metric.name), _or_unstated(metric.collection), metric.stability.value] for metric in touched]
    return _table(["metric", "collection", "stability"], rows, _NO_METRIC)


def _precision(touched: Sequence[Metric]) -> str:
    rows = [
        [code_span(metric.name), metric.type.value, _or_unstated(metric.unit), _or_unstated(metric.precision)]
        for metric in touched
    ]
    return _table(["metric", "type", "unit", "precision (decimals)"], rows, _NO_METRIC)


def _lifecycle(touched: Sequence[Metric], removed: Sequence[Metric]) -> str:
    rows = [
        [code_span(metric.name), metric.stability.value, _or_unstated(metric.since), _or_unstated(metric.replaced_by)]
        for metric in touched
    ]
    rows += [[code_span(metric.name), "removed", _or_unstated(metric.since), ""] for metric in removed]
    table = _table(["metric", "stability", "since", "replaced by"], rows, _NO_METRIC)
    going = [metric for metric in touched if metric.stability in (Stability.DEPRECATED, Stability.ARCHIVED)]
    if removed or going:
        table += "\n\nRemoving or archiving a metric breaks whoever still reads it: check `otel-contract usage` first."
    return table


def _owners(new: Contract, touched: Sequence[Metric]) -> str:
    lines = [f"- contract {code_span(new.name)}: {_list(new.owners)}"]
    by_owner: dict[str, list[str]] = {}
    for metric in touched:
        if metric.owner:
            by_owner.setdefault(metric.owner, []).append(metric.name)
    lines += [f"- {code_span(owner)}: {_list(names)}" for owner, names in sorted(by_owner.items())]
    unowned = [metric.name for metric in touched if not metric.owner]
    if unowned:
        lines.append(f"- no owner in the contract: {_list(unowned)}")
    return "\n".join(lines)


def _list(names: Sequence[str]) -> str:
    return ", ".join(code_span(name) for name in names) if names else _UNSTATED


def _shims(old: Contract | None, new: Contract) -> str:
    before = {shim.record: shim for shim in old.compat} if old else {}
    after = {shim.record for shim in new.compat}
    rows = [
        _shim_row(shim, "added" if shim.record not in before else "changed")
        for shim in new.compat
        if before.get(shim.record) != shim
    ]
    rows += [_shim_row(shim, "removed") for record, shim in before.items() if record not in after]
    return _table(
        ["record", "change", "expires", "owner", "reason"],
        rows,
        "_The change adds, changes or removes no compat shim._",
    )


def _shim_row(shim: Shim, change: str) -> list[str]:
    return [
        code_span(shim.record),
        change,
        shim.expires.isoformat(),
        _or_unstated(shim.owner),
        cell_text(shim.reason) if shim.reason else _UNSTATED,
    ]


def new_contract_diff(new: Contract, base: str, *, heading_level: int = 3) -> str:
    """The schema diff section of an RFC for a contract that does not exist at ``base`` yet."""
    rows = [
        [code_span(metric.name), metric.type.value, _or_unstated(metric.unit), metric.stability.value]
        for metric in new.metrics
    ]
    return "\n".join(
        [
            f"{'#' * heading_level} Schema diff: new contract {cell_text(new.name)} {cell_text(new.version)}",
            "",
            f"There is no {code_span(new.name)} at {code_span(base)}: the whole contract is under review"
            f" ({len(new.metrics)} metrics, {len(new.compat)} compat shims).",
            "",
            _table(["metric", "type", "unit", "stability"], rows, _NO_METRIC),
        ]
    )
