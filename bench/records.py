"""Traces and logs through the engine: the compiled core against the floor.

    .venv/bin/python bench/records.py [--records 10000] [--repeat 9]

For a traces and a logs request of ``--records`` records (4 attributes each, spans with one event of
2), compliant and with 20 % of the records carrying a legacy key with a string value to coerce, times in
one process, interleaved: the floor (a plain upb parse + serialize of the same bytes) and the core
(``process_signal`` + ``to_bytes``). Prints best and median milliseconds and the core's cost as a
multiple of the floor; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import process_signal
from otel_contract.loading import load_contract
from otel_contract.otlp import Signal

CONTRACT = Path(__file__).resolve().parent.parent / "contracts" / "ecommerce.yaml"
RESOURCE = {
    "service.name": "checkout",
    "service.namespace": "shop",
    "k8s.pod.name": "p-1",
    "k8s.namespace.name": "shop",
}
HEADER = ("signal", "variant", "floor ms", "core ms", "core/floor")


def _attributes(target: object, index: int, legacy: bool) -> None:
    add = target.add  # type: ignore[attr-defined]
    add(key="http.method").value.string_value = "GET"
    add(key="http.route").value.string_value = f"/item/{index % 50}"
    if legacy:
        add(key="status_code").value.string_value = "200"
    else:
        add(key="http.status_code").value.int_value = 200
    add(key="net.peer.port").value.int_value = 443


def build(signal: Signal, records: int, legacy_share: float) -> bytes:
    legacy_every = int(1 / legacy_share) if legacy_share else 0
    request = ExportTraceServiceRequest() if signal is Signal.TRACES else ExportLogsServiceRequest()
    resource = (request.resource_spans if signal is Signal.TRACES else request.resource_logs).add()
    for key, value in RESOURCE.items():
        resource.resource.attributes.add(key=key).value.string_value = value
    scope = (resource.scope_spans if signal is Signal.TRACES else resource.scope_logs).add()
    scope.scope.name = "bench"
    for index in range(records):
        legacy = bool(legacy_every) and index % legacy_every == 0
        if signal is Signal.TRACES:
            span = scope.spans.add(name="GET /item", trace_id=bytes(16), span_id=index.to_bytes(8, "big"))
            _attributes(span.attributes, index, legacy)
            event = span.events.add(name="retry")
            event.attributes.add(key="attempt").value.int_value = 1
            event.attributes.add(key="http.method").value.string_value = "GET"
        else:
            record = scope.log_records.add(severity_text="INFO", time_unix_nano=index)
            record.body.string_value = "request served"
            _attributes(record.attributes, index, legacy)
    return request.SerializeToString()


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure(signal: Signal, payload: bytes, contract: CompiledContract, repeat: int) -> dict[str, list[float]]:
    """Milliseconds per run of the floor and the core, interleaved."""
    request_type = ExportTraceServiceRequest if signal is Signal.TRACES else ExportLogsServiceRequest
    times: dict[str, list[float]] = {"floor": [], "core": []}
    for _ in range(repeat):
        times["floor"].append(_timed(lambda: request_type.FromString(payload).SerializeToString()))
        times["core"].append(_timed(lambda: process_signal(signal, payload, contract).to_bytes()))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    contract = load_contract(CONTRACT)
    print(f"{args.records} records per request, {args.repeat} interleaved runs; contract {contract.id}")
    print("{:7} {:10} {:>16} {:>16} {:>11}".format(*HEADER))
    for signal in (Signal.TRACES, Signal.LOGS):
        for variant, share in (("compliant", 0.0), ("legacy20", 0.2)):
            times = measure(signal, build(signal, args.records, share), contract, args.repeat)
            shown = {k: f"{min(v):7.2f} / {statistics.median(v):6.2f}" for k, v in times.items()}
            floor = min(times["floor"])
            print(
                f"{signal.value:7} {variant:10} {shown['floor']:>16} {shown['core']:>16}"
                f" {min(times['core']) / floor:10.2f}x"
            )
    print("ms: best / median; ratios: best engine run / best floor run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
