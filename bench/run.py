"""Benchmark the engine against the cost of merely parsing and re-serializing the same request.

    .venv/bin/python bench/run.py [--variant all|compliant|legacy20|legacy100] [--repeat N] [--profile]

For each variant the payload is built once (bench/workload.py), then parse, floor (parse + serialize)
and engine (process_metrics + to_bytes) are timed in the same process, interleaved, ``--repeat`` times
each; figures are reported with the spec's targets beside them and never asserted. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import ctypes
import gc
import platform
import pstats
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import google.protobuf
from google.protobuf.internal import api_implementation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from workload import VARIANTS, build_request, count_points, metric_specs

from otel_contract.contract import CompiledContract
from otel_contract.loading import load_contract

CONTRACT = Path(__file__).resolve().with_name("contract.yaml")
MEMORY_PAYLOAD_BYTES = 4 * 2**20  # the memory figure processes a payload of about this size
DEFAULT_POINTS = 50

# Issue 18's targets, reported beside the figures (never asserted): the engine's cost as a multiple
# of the floor's, per variant.
TARGET_FLOOR_RATIO = {"compliant": 0.5, "legacy20": 1.0, "legacy100": 1.5}
TARGET_MEMORY_RATIO = 4.0


# --- the engine, which may not exist yet --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Engine:
    process_metrics: Callable[..., Any]
    new_state: Callable[[], Any]
    new_options: Callable[[], Any]


@dataclass(frozen=True, slots=True)
class EngineImport:
    engine: Engine | None
    problem: str = ""
    broken: bool = False  # the engine exists but does not import: that is the engine raising


def import_engine() -> EngineImport:
    try:
        from otel_contract.engine import CardinalityState, EngineOptions, process_metrics
    except ModuleNotFoundError as exc:
        if exc.name in ("otel_contract.engine", "otel_contract"):
            return EngineImport(None, "otel_contract.engine does not exist yet")
        return EngineImport(None, f"otel_contract.engine failed to import: {type(exc).__name__}: {exc}", True)
    except Exception as exc:
        return EngineImport(None, f"otel_contract.engine failed to import: {type(exc).__name__}: {exc}", True)
    return EngineImport(Engine(process_metrics, CardinalityState, EngineOptions))


def run_engine(
    engine: Engine, payload: bytes, compiled: CompiledContract, state: Any, options: Any
) -> tuple[Any, bytes]:
    outcome = engine.process_metrics(payload, compiled, state=state, options=options)
    return outcome, outcome.to_bytes()


# --- what is measured ---------------------------------------------------------------------------------


def parse(payload: bytes) -> None:
    ExportMetricsServiceRequest.FromString(payload)


def floor(payload: bytes) -> None:
    ExportMetricsServiceRequest.FromString(payload).SerializeToString()


@dataclass(slots=True)
class Timings:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, []).append(seconds)

    def best(self, name: str) -> float:
        return min(self.samples[name])

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_engine(engine: Engine, payload: bytes, compiled: CompiledContract) -> tuple[float, Any, bytes]:
    """One engine run with a fresh CardinalityState and EngineOptions, built outside the timer."""
    state, options = engine.new_state(), engine.new_options()
    gc.collect()
    start = time.perf_counter()
    outcome, out = run_engine(engine, payload, compiled, state, options)
    return time.perf_counter() - start, outcome, out


@dataclass(frozen=True, slots=True)
class EngineRun:
    """What the last timed engine run returned (only its size is kept of the output bytes)."""

    outcome: Any
    out_size: int
    forwarded: str  # how to_bytes() relates to the payload: "same object", "equal bytes", "new bytes"

    @classmethod
    def of(cls, outcome: Any, out: bytes, payload: bytes) -> EngineRun:
        forwarded = "same object" if out is payload else "equal bytes" if out == payload else "new bytes"
        return cls(outcome, len(out), forwarded)


def measure(
    payload: bytes, compiled: CompiledContract, engine: Engine | None, repeat: int
) -> tuple[Timings, EngineRun | None]:
    """Interleave parse, floor and engine ``repeat`` times each, after one untimed warm-up round."""
    timings, last = Timings(), None
    for round_ in range(repeat + 1):
        parse_s = timed(lambda: parse(payload))
        floor_s = timed(lambda: floor(payload))
        if engine is not None:
            engine_s, outcome, out = timed_engine(engine, payload, compiled)
            last = EngineRun.of(outcome, out, payload)
        if round_ == 0:
            continue
        timings.add("parse", parse_s)
        timings.add("floor", floor_s)
        if engine is not None:
            timings.add("engine", engine_s)
    return timings, last


# --- memory -------------------------------------------------------------------------------------------


def _proc_status(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_rss_peak() -> bool:
    """Return freed heap to the OS and reset VmHWM (Linux); False where that is not possible."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Memory:
    traced_peak: int  # tracemalloc peak above the baseline: Python-allocated memory only
    rss_peak: int | None  # RSS high-water mark above the RSS before: includes upb's arenas


def memory_of(fn: Callable[[], object]) -> Memory:
    gc.collect()
    rss_reset = _reset_rss_peak()
    rss_before = _proc_status("VmRSS")
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    result = fn()
    traced_peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    rss_after = _proc_status("VmHWM")
    del result
    rss_peak = rss_after - rss_before if rss_reset and rss_before is not None and rss_after is not None else None
    return Memory(traced_peak, rss_peak)


def memory_payload(variant: str, size: int) -> tuple[bytes, int]:
    """A payload of about MEMORY_PAYLOAD_BYTES: ``points`` scaled from the default payload's ``size``."""
    points = max(1, round(DEFAULT_POINTS * MEMORY_PAYLOAD_BYTES / size))
    request = build_request(variant, points=points)
    return request.SerializeToString(), count_points(request)


# --- reporting ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VariantReport:
    variant: str
    points: int
    size: int
    timings: Timings
    run: EngineRun | None
    memory_points: int
    memory_size: int
    floor_memory: Memory
    engine_memory: Memory | None


def _mib(size: float) -> str:
    return f"{size / 2**20:.2f} MiB"


def _verdict_of(ok: bool | None) -> str:
    return "open (engine not measured)" if ok is None else "met" if ok else "MISSED"


def rejected_points(outcome: Any) -> int | None:
    """The rejected data point count, wherever this outcome keeps it."""
    for path in (
        "rejected_data_points",
        "rejected",
        "partial_success.rejected_data_points",
        "response.partial_success.rejected_data_points",
    ):
        value: Any = outcome
        for part in path.split("."):
            value = getattr(value, part, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def findings_summary(outcome: Any) -> str:
    findings = getattr(outcome, "findings", None)
    if not isinstance(findings, Iterable):
        return "n/a"
    counts: Counter[str] = Counter()
    for finding in findings:
        rule = getattr(finding, "rule", None)
        counts[str(getattr(rule, "slug", rule))] += int(getattr(finding, "count", 1))
    return ", ".join(f"{slug} x{count:,}" for slug, count in counts.most_common()) or "none"


def print_timings(report: VariantReport, repeat: int) -> None:
    timings = report.timings
    labels = {"parse": "parse", "floor": "floor (parse+serialize)", "engine": "engine (+to_bytes)"}
    print(f"  {'':24}{'best ms':>9}{'median ms':>11}{'points/s':>12}{'cost/floor':>12}{'cost/parse':>12}")
    for name, label in labels.items():
        if name not in timings.samples:
            continue
        best, median = timings.best(name), timings.median(name)
        print(
            f"  {label:24}{best * 1e3:9.1f}{median * 1e3:11.1f}{report.points / best:12,.0f}"
            f"{best / timings.best('floor'):11.2f}x{best / timings.best('parse'):11.2f}x"
        )
    print(f"  ({repeat} timed runs each, interleaved; points/s and ratios from the best run)")


def print_outcome(run: EngineRun) -> None:
    outcome, rejected = run.outcome, rejected_points(run.outcome)
    counts = [f"{name}={getattr(outcome, name):,}" for name in ("items", "merged") if hasattr(outcome, name)]
    print(
        f"  outcome: changed={getattr(outcome, 'changed', '?')}, rejected data points="
        f"{'n/a' if rejected is None else f'{rejected:,}'}, {', '.join(counts) or 'no counts'}; "
        f"to_bytes(): {run.forwarded} ({run.out_size:,} bytes)"
    )
    print(f"  findings: {findings_summary(run.outcome)}")


def print_memory(report: VariantReport) -> None:
    size = report.memory_size
    print(f"  memory, processing {report.memory_points:,} points in {size:,} bytes ({_mib(size)}), above baseline:")
    rows = [("floor", report.floor_memory), ("engine", report.engine_memory)]
    for label, memory in rows:
        if memory is None:
            continue
        rss = "n/a" if memory.rss_peak is None else f"{_mib(memory.rss_peak)} = {memory.rss_peak / size:.2f}x"
        print(
            f"    {label:7} tracemalloc peak {_mib(memory.traced_peak)} = {memory.traced_peak / size:.2f}x size"
            f"   RSS peak {rss}"
        )


def _target(label: str, figure: float | None, unit: str, ok: bool | None) -> None:
    shown = "-" if figure is None else f"{figure:,.0f}{unit}" if figure >= 1000 else f"{figure:.2f}{unit}"
    print(f"    {label:48}{shown:>18}  {_verdict_of(ok)}")


def print_targets(report: VariantReport) -> None:
    print("  targets (reported, never asserted):")
    timings, run, memory = report.timings, report.run, report.engine_memory
    engine = timings.best("engine") if "engine" in timings.samples else None
    ratio = None if engine is None else engine / timings.best("floor")
    target_ratio = TARGET_FLOOR_RATIO.get(report.variant)
    if target_ratio is not None:
        _target(
            f"engine <= {target_ratio}x the floor's cost", ratio, "x", None if ratio is None else ratio <= target_ratio
        )
    if report.variant == "compliant":
        unchanged = (
            None if run is None else getattr(run.outcome, "changed", None) is False and run.forwarded != "new bytes"
        )
        print(f"    {'not changed, forwarded without re-serialization':66}  {_verdict_of(unchanged)}")
    traced = None if memory is None else memory.traced_peak / report.memory_size
    label = f"memory peak < {TARGET_MEMORY_RATIO}x request size (tracemalloc)"
    _target(label, traced, "x", None if traced is None else traced < TARGET_MEMORY_RATIO)


def print_report(report: VariantReport, repeat: int, engine_problem: str) -> None:
    print(f"\n== {report.variant}: {report.points:,} data points, {report.size:,} payload bytes ({_mib(report.size)})")
    print_timings(report, repeat)
    if report.run is None:
        print(f"  engine: not measured ({engine_problem})")
    else:
        print_outcome(report.run)
    print_memory(report)
    print_targets(report)


# --- the run ------------------------------------------------------------------------------------------


def workload_mismatches(compiled: CompiledContract) -> list[str]:
    """Where bench/workload.py and the contract disagree (they must describe the same metrics)."""
    problems = []
    for spec in metric_specs():
        metric = compiled.metrics.get(spec.name)
        if metric is None:
            problems.append(f"{spec.name} is not in the contract")
        elif (metric.metric.unit, metric.metric.description) != (spec.unit, spec.description):
            problems.append(f"{spec.name}: unit or description differs from the contract")
        if spec.alias not in compiled.aliases:
            problems.append(f"{spec.alias} is not an alias in the contract")
    return problems


def measure_variant(variant: str, compiled: CompiledContract, engine: Engine | None, repeat: int) -> VariantReport:
    request = build_request(variant)
    payload = request.SerializeToString()
    timings, run = measure(payload, compiled, engine, repeat)
    big, big_points = memory_payload(variant, len(payload))
    floor_memory = memory_of(lambda: floor(big))
    engine_memory = None
    if engine is not None:
        engine_memory = memory_of(lambda: run_engine(engine, big, compiled, engine.new_state(), engine.new_options()))
    return VariantReport(
        variant, count_points(request), len(payload), timings, run, big_points, len(big), floor_memory, engine_memory
    )


def profile_engine(variant: str, compiled: CompiledContract, engine: Engine) -> None:
    payload = build_request(variant).SerializeToString()
    state, options = engine.new_state(), engine.new_options()
    profiler = cProfile.Profile()
    profiler.runcall(run_engine, engine, payload, compiled, state, options)
    for order, label in (("cumulative", "cumulative time"), ("tottime", "total (own) time")):
        print(f"\n== profile of the engine on {variant}: top 25 functions by {label}")
        pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(25)


def print_header(compiled: CompiledContract, repeat: int) -> None:
    print(
        f"otel-contract bench: Python {platform.python_version()}, protobuf {google.protobuf.__version__} "
        f"({api_implementation.Type()}), contract {compiled.id} ({CONTRACT.name}), {repeat} runs each"
    )
    ratios = ", ".join(f"{variant} <= {ratio}x" for variant, ratio in TARGET_FLOOR_RATIO.items())
    print(
        f"targets: the engine's cost against the floor's: {ratios}; compliant not changed; "
        f"memory peak < {TARGET_MEMORY_RATIO}x request size"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the otel-contract engine against parse and parse+serialize."
    )
    parser.add_argument("--variant", choices=("all", *VARIANTS), default="all")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each measurement (default 7)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the engine on the chosen variant(s)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    variants = VARIANTS if args.variant == "all" else (args.variant,)
    compiled = load_contract(CONTRACT)
    print_header(compiled, args.repeat)
    for problem in workload_mismatches(compiled):
        print(f"warning: workload and contract disagree: {problem}")
    imported = import_engine()
    if imported.engine is None:
        print(f"engine: {imported.problem}; reporting parse and floor only")
    for variant in variants:
        print_report(measure_variant(variant, compiled, imported.engine, args.repeat), args.repeat, imported.problem)
    if args.profile and imported.engine is not None:
        for variant in variants:
            profile_engine(variant, compiled, imported.engine)
    return 1 if imported.broken else 0


if __name__ == "__main__":
    sys.exit(main())
