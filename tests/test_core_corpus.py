"""The compiled core replays its recorded corpus (``tests/core_corpus.py``): the outcomes the Python
engine it replaced gave on generated requests, under four contracts, with and without audit mode."""

from __future__ import annotations

from typing import Any

import pytest

from otel_contract._core import CoreError, _panic_at_the_boundary
from otel_contract.contract.compiled import CompiledContract
from otel_contract.otlp import FACTS, Signal

from . import core_corpus

_CASES = core_corpus.load()


@pytest.fixture(scope="module")
def contracts() -> dict[str, CompiledContract]:
    return core_corpus.contracts()


def _parsed(signal: Signal, output: str | None) -> Any:
    return FACTS[signal].request_type.FromString(bytes.fromhex(output)) if output is not None else None


def test_the_corpus_covers_every_signal_and_outcome() -> None:
    results = [result for case in _CASES for result in case["results"]]
    assert {case["signal"] for case in _CASES} == {signal.value for signal in Signal}
    assert any("error" in result for result in results)
    assert any(result.get("output") is None and "error" not in result for result in results)
    assert len({finding[0] for result in results for finding in result.get("findings", ())}) >= 12


@pytest.mark.parametrize("index", range(0, len(_CASES), 50), ids=lambda index: f"cases{index}")
def test_the_core_gives_the_recorded_outcomes(contracts: dict[str, CompiledContract], index: int) -> None:
    for case in _CASES[index : index + 50]:
        signal = Signal(case["signal"])
        payload = bytes.fromhex(case["payload"])
        for expected in case["results"]:
            where = f"{signal.value} under {expected['contract']} (audit={expected['audit']}): {case['payload']}"
            actual = core_corpus.run(signal, payload, contracts[expected["contract"]], audit=expected["audit"])
            assert {k: v for k, v in actual.items() if k != "output"} == {
                k: v for k, v in expected.items() if k not in ("output", "contract", "audit")
            }, where
            assert _parsed(signal, actual.get("output")) == _parsed(signal, expected.get("output")), where


def test_a_panic_in_the_core_is_an_error_the_process_survives(contracts: dict[str, CompiledContract]) -> None:
    """A panic crosses the boundary as CoreError (an Exception: the sidecar's on_engine_error policy
    handles it), not as a crash, and the next request is served as before."""
    with pytest.raises(CoreError, match="the compiled core failed: a deliberate panic"):
        _panic_at_the_boundary()
    assert issubclass(CoreError, Exception)
    request = FACTS[Signal.LOGS].request_type()
    request.resource_logs.add().scope_logs.add().log_records.add()
    result = core_corpus.run(Signal.LOGS, request.SerializeToString(), contracts["ecommerce.yaml"], audit=False)
    assert result["items"] == 1
