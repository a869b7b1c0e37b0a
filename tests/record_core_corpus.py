"""Record the core's corpus (``tests/core_corpus.py``) from the fuzz test's generators.

    .venv/bin/python -m tests.record_core_corpus

    .venv/bin/python -m tests.record_core_corpus --draw    # a new set of requests

By default the recorded requests are kept and only their outcomes are recorded again, so the diff
shows exactly what a behaviour change changed. The first recording (issue 18) was checked against
the Python engine the core replaced: both gave these outcomes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from otel_contract.otlp import Signal

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


def _outcomes(signal: Signal, payload: bytes, contracts: dict[str, Any]) -> dict[str, Any]:
    results = [
        {"contract": name, "audit": audit, **core_corpus.run(signal, payload, contract, audit=audit)}
        for name, contract in contracts.items()
        for audit in (False, True)
    ]
    return {"signal": signal.value, "payload": payload.hex(), "results": results}


def _drawn() -> list[tuple[Signal, bytes]]:
    requests: list[tuple[Signal, bytes]] = []
    for strategy, count in _DRAWS:
        for signal, payload in _draw(strategy, count):
            signals = list(Signal) if strategy is _DRAWS[2][0] else [signal]
            requests += [(each, payload) for each in signals if (each, payload) not in requests]
    return requests


def main(argv: list[str] | None = None, progress: Callable[[str], Any] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draw", action="store_true", help="draw a new set of requests from the generators")
    args = parser.parse_args(argv)
    if args.draw:
        requests = _drawn()
    else:
        requests = [(Signal(case["signal"]), bytes.fromhex(case["payload"])) for case in core_corpus.load()]
    contracts = core_corpus.contracts()
    cases = [_outcomes(signal, payload, contracts) for signal, payload in requests]
    core_corpus.save(cases)
    progress(f"wrote {len(cases)} cases to {core_corpus.CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
