"""The compiled core's recorded corpus: generated requests with the outcomes the core and the Python
engine it replaced agreed on (issue 18), replayed by ``test_core_corpus``.

Each case is one payload of one signal, run under every corpus contract with and without audit mode,
with a fresh cardinality state per run. A result is the output request (hex of its bytes, compared
after parse; ``null`` when nothing changed), the findings (slug, metric, attribute, count, action,
message) sorted by ``repr``, and the item, rejected and merged counts; or the decode error's text.

The contracts are frozen copies in ``data/core-corpus`` (the examples in ``contracts/`` may move on).
Re-record (``python -m tests.record_core_corpus``) only when a behaviour is meant to change, and
review the diff of the findings: the corpus is the regression test of the Python engine's behaviour.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from otel_contract import load_contract
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import CardinalityState, EngineOptions, process_signal
from otel_contract.otlp import Signal

from .conftest import TODAY

DIRECTORY = Path(__file__).parent / "data" / "core-corpus"
CORPUS = DIRECTORY / "cases.json.gz"
CONTRACTS = ("records.yaml", "ecommerce.yaml", "hpa-app.yaml", "shop.yaml")
ENV = {"CORE_DIFF_REGION": "eu-west-1"}

Result = dict[str, Any]


def contracts() -> dict[str, CompiledContract]:
    return {name: load_contract(DIRECTORY / name, today=TODAY) for name in CONTRACTS}


def run(signal: Signal, payload: bytes, contract: CompiledContract, *, audit: bool, **options: Any) -> Result:
    """One run as the corpus records it; ``options`` go to ``EngineOptions``."""
    engine = EngineOptions(audit=audit, env=ENV, **options)
    try:
        outcome = process_signal(signal, payload, contract, state=CardinalityState(), options=engine)
    except DecodeError as error:
        return {"error": str(error)}
    # repr as the key: a rule may have findings with and without an attribute (None beside a str).
    findings = sorted(
        ([f.rule.slug, f.metric, f.attribute, f.count, f.action.value, f.message] for f in outcome.findings), key=repr
    )
    return {
        "output": outcome.to_bytes().hex() if outcome.changed else None,
        "findings": findings,
        "items": outcome.items,
        "rejected": outcome.rejected,
        "merged": outcome.merged,
    }


def load() -> list[dict[str, Any]]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as file:
        cases: list[dict[str, Any]] = json.load(file)
    return cases


def save(cases: list[dict[str, Any]]) -> None:
    # mtime=0: the same cases give the same file, so a re-record without a change shows no diff.
    with CORPUS.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as file:
        file.write(json.dumps(cases, indent=1, sort_keys=True).encode("utf-8"))
