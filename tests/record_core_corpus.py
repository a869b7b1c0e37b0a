"""Record the core's corpus (``tests/core_corpus.py``) from the fuzz test's generators.

    .venv/bin/python -m tests.record_core_corpus

Deterministic (hypothesis' derandomized generation): the same generators give the same cases.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from otel_contract.otlp import FACTS, Signal

from . import core_corpus
from .test_engine_fuzz import _built, _built_records, _mutated

# (strategy, how many) per generator; the mutated requests run as every signal.
_DRAWS: tuple[tuple[st.SearchStrategy[tuple[Signal, bytes]], int], ...] = (
    (_built().map(lambda payload: (Signal.METRICS, payload)), 200),
    (_built_records(), 120),
    (_mutated().map(lambda payload: (Signal.METRICS, payload)), 150),
)


def _draw(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    collect()
    return drawn


def _agree(python: core_corpus.Result, native: core_corpus.Result, signal: Signal) -> bool:
    def parsed(result: core_corpus.Result) -> Any:
        output = result.get("output")
        return FACTS[signal].request_type.FromString(bytes.fromhex(output)) if output else None

    same_rest = {k: v for k, v in python.items() if k != "output"} == {k: v for k, v in native.items() if k != "output"}
    return same_rest and parsed(python) == parsed(native)


def main(progress: Callable[[str], Any] = print) -> int:
    contracts = core_corpus.contracts()
    cases: list[dict[str, Any]] = []
    seen: set[tuple[str, bytes]] = set()
    for strategy, count in _DRAWS:
        for signal, payload in _draw(strategy, count):
            signals = list(Signal) if strategy is _DRAWS[2][0] else [signal]
            for each in signals:
                if (each.value, payload) in seen:
                    continue
                seen.add((each.value, payload))
                results = []
                for name, contract in contracts.items():
                    for audit in (False, True):
                        native = core_corpus.run(each, payload, contract, audit=audit)
                        python = core_corpus.run(each, payload, contract, audit=audit, native=False)
                        if not _agree(python, native, each):
                            where = f"{each.value} under {name} (audit={audit})"
                            progress(f"the engines disagree: {where}: {payload.hex()}")
                            return 1
                        results.append({"contract": name, "audit": audit, **native})
                cases.append({"signal": each.value, "payload": payload.hex(), "results": results})
        progress(f"{len(cases)} cases")
    core_corpus.save(cases)
    progress(f"wrote {len(cases)} cases to {core_corpus.CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
