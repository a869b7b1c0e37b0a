"""The compiled core against the Python engine it replaces, on generated requests: identical output
(after parse), findings, counts and errors. Issue 18 keeps both until the core covers every signal;
then the Python engine goes and these generators stay as the core's regression test.

Generators are the fuzz test's (``test_engine_fuzz``): requests built field by field from the values
that broke the engine before, and real requests with their bytes mutated.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings

from otel_contract import load_contract
from otel_contract._core import CoreError, _panic_at_the_boundary
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import CardinalityState, EngineOptions, process_signal
from otel_contract.otlp import FACTS, Signal

from .conftest import CONTRACTS, TODAY
from .hostile_requests import SHOP_EXTRA
from .sidecar_harness import shop_contract
from .test_engine_fuzz import _built, _built_records, _mutated

_DATA = Path(__file__).parent / "data"
_RECORDS = (Signal.TRACES, Signal.LOGS)
_ENV = {"CORE_DIFF_REGION": "eu-west-1"}
_SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)


@pytest.fixture(scope="module")
def contracts(tmp_path_factory: pytest.TempPathFactory) -> list[CompiledContract]:
    shop = shop_contract(Path(tmp_path_factory.mktemp("core")) / "shop.yaml", extra=SHOP_EXTRA)
    return [
        load_contract(_DATA / "core-records.yaml", today=TODAY),
        load_contract(CONTRACTS / "ecommerce.yaml", today=TODAY),
        load_contract(CONTRACTS / "hpa-app.yaml", today=TODAY),
        load_contract(shop, today=TODAY),
    ]


def _run(signal: Signal, payload: bytes, contract: CompiledContract, *, native: bool, audit: bool) -> Any:
    options = EngineOptions(audit=audit, env=_ENV, native=native)
    try:
        # A fresh budget state per run: both engines admit the same series into the same budgets.
        outcome = process_signal(signal, payload, contract, state=CardinalityState(), options=options)
    except DecodeError as error:
        return ("DecodeError", str(error))
    # repr as the key: a rule may have findings with and without an attribute (None beside a str).
    findings = sorted(
        ((f.rule.slug, f.metric, f.attribute, f.count, f.action.value, f.message) for f in outcome.findings), key=repr
    )
    return (outcome.request, findings, outcome.items, outcome.rejected, outcome.merged)


def _same(signal: Signal, payload: bytes, contracts: list[CompiledContract]) -> None:
    for contract in contracts:
        for audit in (False, True):
            python = _run(signal, payload, contract, native=False, audit=audit)
            native = _run(signal, payload, contract, native=True, audit=audit)
            where = f"{signal.value} under {contract.id} (audit={audit}), payload {payload.hex()}"
            assert native[1:] == python[1:], where
            if native[0] != python[0]:  # a readable diff of the two requests, not two 80 kB reprs
                diff = difflib.unified_diff(str(python[0]).splitlines(), str(native[0]).splitlines(), lineterm="")
                pytest.fail(f"{where}: the output differs (- Python engine, + core):\n" + "\n".join(diff))


@_SETTINGS
@given(built=_built_records())
def test_built_records_give_what_the_python_engine_gives(
    contracts: list[CompiledContract], built: tuple[Signal, bytes]
) -> None:
    _same(*built, contracts)


@_SETTINGS
@given(payload=_built())
def test_built_metrics_give_what_the_python_engine_gives(contracts: list[CompiledContract], payload: bytes) -> None:
    _same(Signal.METRICS, payload, contracts)


@_SETTINGS
@given(payload=_mutated())
def test_mutated_requests_give_what_the_python_engine_gives(contracts: list[CompiledContract], payload: bytes) -> None:
    for signal in (Signal.METRICS, *_RECORDS):
        _same(signal, payload, contracts)


def test_the_core_is_what_runs(contracts: list[CompiledContract]) -> None:
    """The native path answers with bytes (parsed only when asked), the Python one with a message."""
    request = FACTS[Signal.LOGS].request_type()
    request.resource_logs.add().scope_logs.add().log_records.add().attributes.add(
        key="status_code"
    ).value.string_value = "7"
    payload = request.SerializeToString()
    native = process_signal(Signal.LOGS, payload, contracts[0], state=None, options=EngineOptions())  # type: ignore[arg-type]
    assert native.payload is not None and native.changed
    python = process_signal(Signal.LOGS, payload, contracts[0], state=None, options=EngineOptions(native=False))  # type: ignore[arg-type]
    assert python.payload is None
    assert native.request == python.request


def test_a_panic_in_the_core_is_an_error_the_process_survives(contracts: list[CompiledContract]) -> None:
    """A panic crosses the boundary as CoreError (an Exception: the sidecar's on_engine_error policy
    handles it), not as a crash, and the next request is served as before."""
    with pytest.raises(CoreError, match="the compiled core failed: a deliberate panic"):
        _panic_at_the_boundary()
    assert issubclass(CoreError, Exception)
    request = FACTS[Signal.LOGS].request_type()
    request.resource_logs.add().scope_logs.add().log_records.add()
    outcome = process_signal(
        Signal.LOGS, request.SerializeToString(), contracts[1], state=None, options=EngineOptions()
    )  # type: ignore[arg-type]
    assert outcome.items == 1
