"""Traces and logs share one shape: resources -> scopes -> records with attributes.

They get the resource actions and requirements and the global attribute renames and types (on
spans, span events and span links, and on log records), because a contract that fixes
``http.status_code`` in metrics but not on spans has fixed nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from otel_contract import rules
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine._native import process_native
from otel_contract.engine._outcome import EngineOptions, MessageT, Outcome, prepare
from otel_contract.engine._resource import process_resource
from otel_contract.engine._sink import FindingSink
from otel_contract.engine._values import normalize_attributes
from otel_contract.findings import Location
from otel_contract.otlp import Signal


@dataclass(frozen=True, slots=True)
class RecordShape:
    signal: Signal
    noun: str  # "span", "log record": for messages
    resources: str  # ExportTraceServiceRequest.resource_spans
    scopes: str  # ResourceSpans.scope_spans
    records: str  # ScopeSpans.spans
    attribute_lists: Callable[[Any], Iterable[Any]]  # every KeyValue list of one record


@dataclass
class RecordCounts:
    items: int = 0
    rejected: int = 0
    changed: bool = False


def process_records(
    payload: bytes | MessageT,
    message_type: type[MessageT],
    shape: RecordShape,
    contract: CompiledContract,
    options: EngineOptions | None,
    source: Location | None,
) -> Outcome[MessageT]:
    """Normalize one traces or logs request; ``items`` and ``rejected`` count its records."""
    options = options or EngineOptions()
    if options.native:
        return process_native(shape.signal, payload, message_type, contract, options, None, source)
    request, original, renames_possible = prepare(payload, message_type, contract)
    sink = FindingSink(source, options.audit)
    counts = _walk(request, shape, contract, options, sink, renames_possible)
    return Outcome(request, sink.findings(), counts.items, counts.rejected, 0, counts.changed, original)


def _walk(
    request: Any,
    shape: RecordShape,
    contract: CompiledContract,
    options: EngineOptions,
    sink: FindingSink,
    renames_possible: bool,
) -> RecordCounts:
    counts = RecordCounts()
    renames = contract.attribute_renames if renames_possible else {}
    types = contract.attribute_types
    actions = contract.actions

    def report(rule: rules.Rule, attribute: str, message: str) -> bool:
        return sink.report(rule, actions, f"{shape.noun}: {message}", attribute=attribute)

    resources = getattr(request, shape.resources)
    drop_resources: list[int] = []
    for resource_index, resource in enumerate(resources):
        changed, reject = process_resource(resource.resource, contract, options.env, sink)
        counts.changed |= changed
        scopes = getattr(resource, shape.scopes)
        if reject:
            gone = sum(len(getattr(scope, shape.records)) for scope in scopes)
            counts.items += gone
            counts.rejected += gone
            drop_resources.append(resource_index)
            continue
        emptied: list[int] = []
        for scope_index, scope in enumerate(scopes):
            records = getattr(scope, shape.records)
            counts.items += len(records)
            if not (renames or types):
                continue
            drop: list[int] = []
            for record_index, record in enumerate(records):
                record_reject = False
                for attributes in shape.attribute_lists(record):
                    changed, rejected = normalize_attributes(attributes, renames, types, report)
                    counts.changed |= changed
                    record_reject |= rejected
                if record_reject:
                    drop.append(record_index)
            for record_index in reversed(drop):
                del records[record_index]
            counts.rejected += len(drop)
            if drop:
                counts.changed = True
                if not records:
                    emptied.append(scope_index)
        for scope_index in reversed(emptied):
            del scopes[scope_index]
        if emptied and not scopes:
            drop_resources.append(resource_index)
    for resource_index in reversed(drop_resources):
        del resources[resource_index]
        counts.changed = True
    return counts
