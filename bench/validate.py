"""``otel-contract validate`` on large captures against the bare parse of the same files, in one run.

    .venv/bin/python bench/validate.py [--megabytes N] [--quick]

Into a temporary directory (deleted afterwards) it writes, at N MB (default 256, ``--quick`` 32) and
at N/4 MB:

* ``capture-*.jsonl``: OTLP JSON lines as the Collector's file exporter writes them, one export request
  of 800 data points per line for ``contracts/ecommerce.yaml`` (bench/workload.py's requests with the
  contract's metric names), repeated with advancing timestamps;
* ``exposition-*.prom``: the same requests as Prometheus text 0.0.4 (rendered by prometheus_client),
  one scrape after another, as ``curl .../metrics >> file`` would collect them.

Each file is then read by a fresh child process, once by ``python -m otel_contract validate`` and once
by a bare parse: ``json.loads`` + ``json_format.ParseDict`` per line (what validate itself used until the
compiled core read OTLP/JSON; validate is now faster than it), or
``prometheus_client.parser.text_fd_to_metric_families`` over the file. Wall time, CPU time and the
child's own peak RSS (from GNU time, see ``run_child``) are reported, with the ratios validate/parse
and peak RSS at N against N/4. Nothing is asserted: the run always exits 0. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import google.protobuf
from google.protobuf.internal import api_implementation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric as Family
from prometheus_client.openmetrics.exposition import ALLOWUTF8
from workload import COLLECTION_NS, build_request, count_points

from otel_contract.inputs.otlp import write_capture

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONTRACT = ROOT / "contracts" / "ecommerce.yaml"
MB = 1_000_000
DEFAULT_MEGABYTES = 256
QUICK_MEGABYTES = 32
SMALL_DIVISOR = 4  # the second size, to see whether memory follows the input size
CHILD_TIMEOUT = 3_600.0  # seconds for one child process, after which it is killed and reported
INTERVAL_NS = 15 * 10**9  # one export (or scrape) of every series per 15 s

# The workload: four requests, one per seed, in turn. 10 resources x 2 metrics x 40 points = 800 points
# each; at most 4 x 10 x 40 = 1,600 series per metric, under the contract's max_series of 2,000, so the
# cardinality budget never rejects and the same series recur throughout the file.
RESOURCES = 10
POINTS = 40
BASE_REQUESTS = (("legacy20", 1), ("legacy20", 2), ("legacy100", 3), ("compliant", 4))
# bench/workload.py names its metrics for bench/contract.yaml; metric 00 is a histogram, 01 a counter.
RENAMES = {
    "bench_http_server_duration_seconds_00": "http_server_duration_seconds",
    "bench.http.server.duration.00": "http.server.duration",  # the contract's alias, in ms
    "bench_http_requests_total_01": "http_requests_total",
    "bench.http.server.request.count.01": "http.server.request.count",  # the contract's alias
}

# The collection time as each format spells it, replaced by the time of each repetition.
_OTLP_TIME = b'"timeUnixNano":"%d"'
_PROM_TIME = b" %d\n"

OTLP_PARSE = """
import json, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
lines = 0
with open(sys.argv[1], "rb") as capture:
    for line in capture:
        json_format.ParseDict(json.loads(line), ExportMetricsServiceRequest())
        lines += 1
print(lines)
"""

PROM_PARSE = """
import sys
from prometheus_client.parser import text_fd_to_metric_families
samples = 0
with open(sys.argv[1], encoding="utf-8") as exposition:
    for family in text_fd_to_metric_families(exposition):
        samples += len(family.samples)
print(samples)
"""


# --- the workload -----------------------------------------------------------------------------------


def ecommerce_request(variant: str, seed: int) -> ExportMetricsServiceRequest:
    """bench/workload.py's request with its first two metrics named as contracts/ecommerce.yaml names them."""
    request = build_request(variant, resources=RESOURCES, metrics=2, points=POINTS, seed=seed)
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                metric.name = RENAMES[metric.name]
    return request


def otlp_lines(directory: Path) -> list[bytes]:
    """The base requests as the Collector's file exporter writes them: one compact JSON line each."""
    path = directory / "base.jsonl"
    write_capture(path, [ecommerce_request(variant, seed) for variant, seed in BASE_REQUESTS])
    lines = path.read_bytes().splitlines(keepends=True)
    path.unlink()
    return lines


def _label_value(attribute: KeyValue) -> str:
    value = attribute.value
    return str(getattr(value, value.WhichOneof("value") or "string_value"))


def _labels(attributes: Iterable[KeyValue]) -> dict[str, str]:
    return {attribute.key: _label_value(attribute) for attribute in attributes}


class _RequestCollector:
    """One request much as a Prometheus exporter on an OpenTelemetry SDK exposes it: a ``target_info``
    per resource (``job`` = service.name, ``instance`` = the pod), a family per metric, every label
    spelled as its attribute key (UTF-8 names, quoted, as Prometheus 3 scrapes them)."""

    def __init__(self, request: ExportMetricsServiceRequest) -> None:
        self._request = request

    def collect(self) -> Iterator[Family]:
        stamp = COLLECTION_NS / 1e9
        targets = InfoMetricFamily("target", "Target metadata")
        families: dict[str, Family] = {}
        for resource_metrics in self._request.resource_metrics:
            resource = _labels(resource_metrics.resource.attributes)
            target = {"job": resource.pop("service.name"), "instance": resource["k8s.pod.name"]}
            targets.add_metric([], {**target, **resource})
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.WhichOneof("data") == "histogram":
                        family = families.setdefault(
                            metric.name, HistogramMetricFamily(metric.name, metric.description)
                        )
                        for hpoint in metric.histogram.data_points:
                            labels = {**target, **_labels(hpoint.attributes)}
                            bounds = [*(repr(bound) for bound in hpoint.explicit_bounds), "+Inf"]
                            cumulative = 0
                            for bound, count in zip(bounds, hpoint.bucket_counts, strict=True):
                                cumulative += count
                                family.add_sample(f"{metric.name}_bucket", {**labels, "le": bound}, cumulative, stamp)
                            family.add_sample(f"{metric.name}_count", labels, hpoint.count, stamp)
                            family.add_sample(f"{metric.name}_sum", labels, hpoint.sum, stamp)
                    else:
                        family = families.setdefault(metric.name, CounterMetricFamily(metric.name, metric.description))
                        for npoint in metric.sum.data_points:
                            labels = {**target, **_labels(npoint.attributes)}
                            family.add_sample(f"{family.name}_total", labels, npoint.as_int, stamp)
        yield targets
        yield from families.values()


def exposition_blocks() -> list[bytes]:
    """The base requests as Prometheus text, one scrape each. The legacy100 request's metric aliases
    (dotted names, ms) are an OTLP spelling no exporter would expose, so its scrape is rendered from
    the compliant variant of the same seed: the same data, spelled as the contract wants."""
    blocks = []
    for variant, seed in BASE_REQUESTS:
        registry = CollectorRegistry(auto_describe=False)
        spelled = "compliant" if variant == "legacy100" else variant
        registry.register(_RequestCollector(ecommerce_request(spelled, seed)))
        blocks.append(generate_latest(registry, ALLOWUTF8))
    return blocks


@dataclass(frozen=True, slots=True)
class Written:
    path: Path
    size: int  # bytes
    records: int  # JSON lines or scrapes
    points: int  # OTLP data points


def write_repeated(path: Path, units: Sequence[bytes], token: bytes, scale: int, target: int, points: int) -> Written:
    """``units`` in turn, up to ``target`` bytes; every turn through them ``INTERVAL_NS`` later.

    ``token % time`` is the collection time as it occurs in the units (``scale`` ns per unit of it);
    ``points`` is the number of data points in each unit.
    """
    original = token % (COLLECTION_NS // scale)
    for unit in units:
        if original not in unit:
            raise ValueError(f"{path.name}: the collection time {original!r} is not in a generated record")
    size = records = 0
    with open(path, "wb") as out:
        while size < target:
            stamp = (COLLECTION_NS + records // len(units) * INTERVAL_NS) // scale
            unit = units[records % len(units)].replace(original, token % stamp)
            out.write(unit)
            size += len(unit)
            records += 1
    return Written(path, size, records, records * points)


# --- child processes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    """One child process: what it was, how long it took, what it used, what it said."""

    label: str
    wall: float  # seconds
    cpu: float  # user + system seconds
    rss_mib: float  # its own peak resident set
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    load: float  # the 1-minute load average when it ended: how busy the machine was


GNU_TIME = "/usr/bin/time"
_TIME_RSS = "Maximum resident set size (kbytes):"


def gnu_time() -> str | None:
    """GNU time's path when it is there and understands ``-v -o`` (BSD time does not)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        probe = subprocess.run([GNU_TIME, "-v", "-o", os.devnull, "true"], capture_output=True, timeout=10, check=False)
        if probe.returncode == 0:
            return GNU_TIME
    return None


def _maxrss_mib(ru_maxrss: int) -> float:
    return ru_maxrss / 2**20 if sys.platform == "darwin" else ru_maxrss / 1024  # bytes on macOS, else KiB


def _timed_rss_mib(report: Path) -> float:
    for line in report.read_text("utf-8", "replace").splitlines():
        if line.strip().startswith(_TIME_RSS):
            return int(line.split(":", 1)[1]) / 1024
    return float("nan")


def run_child(
    label: str, argv: Sequence[str], directory: Path, timer: str | None, timeout: float = CHILD_TIMEOUT
) -> Run:
    """Run ``argv`` to its end (its process group killed after ``timeout``).

    The peak RSS comes from GNU time (``timer``) when there is one. The child's ``ru_maxrss`` from
    ``os.wait4`` would do otherwise, but Linux carries the parent's high-water mark into a child
    through fork/vfork and exec, so for a child that stays below this process it reads this process's
    peak; GNU time is a small process, so what it passes on is a few MiB. CPU time is the rusage of
    the child (GNU time included, which waits for the command) from ``os.wait4``.
    """
    out_path, err_path, rusage_path = directory / "child.out", directory / "child.err", directory / "child.rusage"
    command = [timer, "-v", "-o", str(rusage_path), *argv] if timer else list(argv)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=ROOT, start_new_session=True
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group: GNU time and the command under it

        killer = threading.Timer(timeout, kill)
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return Run(
        label,
        wall,
        usage.ru_utime + usage.ru_stime,
        _timed_rss_mib(rusage_path) if timer else _maxrss_mib(usage.ru_maxrss),
        process.returncode,
        out_path.read_text("utf-8", "replace"),
        err_path.read_text("utf-8", "replace"),
        timed_out=killed.is_set(),
        load=load_average(),
    )


def validate_argv(path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "otel_contract",
        "validate",
        "-c",
        str(CONTRACT),
        str(path),
        "--format",
        "json",
        "--no-progress",
    ]


def parse_argv(code: str, path: Path) -> list[str]:
    return [sys.executable, "-c", code, str(path)]


# --- measuring and reporting ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pair:
    """One input read by the parse floor and by validate."""

    kind: str  # "otlp" or "prom"
    written: Written
    parse: Run
    validate: Run

    @property
    def time_ratio(self) -> float:
        return self.validate.wall / self.parse.wall

    @property
    def cpu_ratio(self) -> float:
        return self.validate.cpu / self.parse.cpu if self.parse.cpu else float("nan")


def measure(kind: str, written: Written, directory: Path, timer: str | None) -> Pair:
    code = OTLP_PARSE if kind == "otlp" else PROM_PARSE
    parse = run_child(f"{kind} parse", parse_argv(code, written.path), directory, timer)
    validate = run_child(f"{kind} validate", validate_argv(written.path), directory, timer)
    return Pair(kind, written, parse, validate)


def describe_validate(run: Run) -> str:
    """What validate reported: data points read and rejected, findings by rule (or why it failed)."""
    if run.timed_out:
        return f"killed after {CHILD_TIMEOUT:.0f} s"
    try:
        document: dict[str, Any] = json.loads(run.stdout)
    except ValueError:
        tail = " | ".join(run.stderr.strip().splitlines()[-3:])
        return f"exit {run.exit_code}, no JSON report: {tail or 'no output'}"
    summary = document["summary"]
    rules = Counter[str]()
    for finding in document["findings"]:
        rules[finding["rule"]] += finding["count"]
    shown = ", ".join(f"{rule} {count:,}" for rule, count in sorted(rules.items())) or "none"
    return (
        f"exit {run.exit_code}, {summary['data_points']:,} data points, "
        f"{summary['rejected_data_points']:,} rejected; findings: {shown}"
    )


def describe_parse(run: Run, expected: int, what: str) -> str:
    if run.timed_out:
        return f"killed after {CHILD_TIMEOUT:.0f} s"
    counted = run.stdout.strip()
    if run.exit_code != 0 or counted != str(expected):
        tail = " | ".join(run.stderr.strip().splitlines()[-3:])
        return f"exit {run.exit_code}, counted {counted or 'nothing'} {what} (expected {expected:,}) {tail}"
    return f"exit 0, {expected:,} {what}"


def load_average() -> float:
    with contextlib.suppress(OSError):
        return float(Path("/proc/loadavg").read_text().split()[0])
    return float("nan")


def print_header(megabytes: int) -> None:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"machine: nproc {os.cpu_count()} (usable {usable}), {cpu or 'unknown CPU'}, "
        f"Python {platform.python_version()}, protobuf {google.protobuf.__version__} ({api_implementation.Type()}), "
        f"prometheus_client {version('prometheus-client')}, load {load_average():.2f}"
    )
    print(
        f"contract: {CONTRACT.relative_to(ROOT)}; inputs of {megabytes} MB and {megabytes / SMALL_DIVISOR:g} MB; "
        f"{len(BASE_REQUESTS)} requests of {RESOURCES * 2 * POINTS} points ({RESOURCES} resources x 2 metrics x "
        f"{POINTS} points, {', '.join(f'{v} seed {s}' for v, s in BASE_REQUESTS)}) in turn, 15 s apart"
    )


ROW = "{:<6} {:>8} {:>5} {:>10} {:<9} {:>8} {:>8} {:>7} {:>10} {:>8} {:>5}"
HEADINGS = ("input", "MB", "recs", "points", "reader", "wall s", "CPU s", "MB/s", "points/s", "RSS MiB", "load")


def print_table(pairs: Sequence[Pair]) -> None:
    print()
    print(ROW.format(*HEADINGS))
    for pair in pairs:
        written = pair.written
        for run in (pair.parse, pair.validate):
            print(
                ROW.format(
                    pair.kind,
                    f"{written.size / MB:.1f}",
                    written.records,
                    f"{written.points:,}",
                    run.label.split()[1],
                    f"{run.wall:.1f}",
                    f"{run.cpu:.1f}",
                    f"{written.size / MB / run.wall:.2f}",
                    f"{written.points / run.wall:,.0f}",
                    f"{run.rss_mib:.1f}",
                    f"{run.load:.2f}",
                )
            )
    print()
    for pair in pairs:
        unit = "lines" if pair.kind == "otlp" else "samples"
        expected = pair.written.records if pair.kind == "otlp" else _samples(pair.written)
        print(f"{pair.kind} {pair.written.size / MB:.0f} MB parse:    {describe_parse(pair.parse, expected, unit)}")
        print(f"{pair.kind} {pair.written.size / MB:.0f} MB validate: {describe_validate(pair.validate)}")


def _samples(written: Written) -> int:
    """Samples the parser sees in a generated exposition: target_info lines, 18 per histogram point
    (16 buckets, count, sum) and 1 per counter point; each scrape holds both metrics' points equally."""
    per_scrape = RESOURCES + (16 + 2) * RESOURCES * POINTS + RESOURCES * POINTS
    return written.records * per_scrape


def print_ratios(large: Sequence[Pair], small: Sequence[Pair]) -> None:
    print()
    print("validate / parse, same file, same run:")
    print(f"{'input':<16} {'wall':>6} {'CPU':>6}   {'RSS parse':>10} {'RSS validate':>13}")
    for pair in (*small, *large):
        print(
            f"{pair.kind + f' {pair.written.size / MB:.0f} MB':<16} {pair.time_ratio:>5.2f}x {pair.cpu_ratio:>5.2f}x"
            f"   {pair.parse.rss_mib:>6.1f} MiB {pair.validate.rss_mib:>9.1f} MiB"
        )
    print()
    print(f"peak RSS at N against N/{SMALL_DIVISOR} (the input {SMALL_DIVISOR}x larger):")
    for big, little in zip(large, small, strict=True):
        size_ratio = big.written.size / little.written.size
        for reader in ("parse", "validate"):
            a, b = getattr(big, reader).rss_mib, getattr(little, reader).rss_mib
            print(
                f"{big.kind:<5} {reader:<9} {b:>7.1f} MiB -> {a:>7.1f} MiB: {a / b:.2f}x ({a - b:+.1f} MiB) "
                f"for {size_ratio:.2f}x the bytes"
            )


def verdict(large: Sequence[Pair], small: Sequence[Pair]) -> str:
    """One paragraph from the figures; the wording follows them, nothing is judged pass or fail."""
    otlp, prom = large
    otlp_small, prom_small = small
    sentences = [
        f"On OTLP JSON lines validate ran at {otlp.written.size / MB / otlp.validate.wall:.1f} MB/s "
        f"({otlp.written.points / otlp.validate.wall:,.0f} data points/s), {otlp.time_ratio:.2f}x the wall time "
        f"({otlp.cpu_ratio:.2f}x the CPU) of json.loads + ParseDict alone;",
        f"on Prometheus text it ran at {prom.written.size / MB / prom.validate.wall:.1f} MB/s "
        f"({prom.written.points / prom.validate.wall:,.0f} data points/s), {prom.time_ratio:.2f}x the wall time "
        f"({prom.cpu_ratio:.2f}x the CPU) of prometheus_client's parser alone.",
    ]
    for name, big, little in (("OTLP", otlp, otlp_small), ("exposition", prom, prom_small)):
        ratio = big.validate.rss_mib / little.validate.rss_mib
        grows = ratio >= 1.10
        sentences.append(
            f"Its peak RSS on the {name} input went from {little.validate.rss_mib:.0f} MiB to "
            f"{big.validate.rss_mib:.0f} MiB ({ratio:.2f}x) when the input grew {SMALL_DIVISOR}x: "
            + ("memory grows with the input size." if grows else "memory does not follow the input size.")
        )
    sentences.append(
        f"The parse floors peaked at {otlp.parse.rss_mib:.0f} MiB (OTLP) and {prom.parse.rss_mib:.0f} MiB "
        f"(exposition), so validate's own overhead is about {otlp.validate.rss_mib - otlp.parse.rss_mib:.0f} "
        f"and {prom.validate.rss_mib - prom.parse.rss_mib:.0f} MiB (the contract, the engine, the linter, "
        "their imports)."
    )
    return " ".join(sentences)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark otel-contract validate on large captures against the bare parse of the same files."
    )
    parser.add_argument(
        "--megabytes",
        type=int,
        default=None,
        metavar="N",
        help=f"size of the larger inputs in MB (default {DEFAULT_MEGABYTES}; the smaller are N/{SMALL_DIVISOR})",
    )
    parser.add_argument("--quick", action="store_true", help=f"inputs of {QUICK_MEGABYTES} MB unless --megabytes")
    args = parser.parse_args(argv)
    if args.megabytes is None:
        args.megabytes = QUICK_MEGABYTES if args.quick else DEFAULT_MEGABYTES
    if args.megabytes < SMALL_DIVISOR:
        parser.error(f"--megabytes must be at least {SMALL_DIVISOR}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print_header(args.megabytes)
    timer = gnu_time()
    if timer is None:
        print(
            f"warning: no GNU time at {GNU_TIME}: peak RSS is the child's ru_maxrss, which Linux floors at this "
            "process's own peak (inherited through exec); small figures are this process's, not the child's"
        )
    points_per_unit = RESOURCES * 2 * POINTS
    with tempfile.TemporaryDirectory(prefix="otel-contract-bench-") as temporary:
        directory = Path(temporary)
        started = time.perf_counter()
        lines, blocks = otlp_lines(directory), exposition_blocks()
        if {count_points(ecommerce_request(v, s)) for v, s in BASE_REQUESTS} != {points_per_unit}:
            raise ValueError("the workload's requests do not hold the points this benchmark counts on")
        sizes = {"large": args.megabytes * MB, "small": args.megabytes * MB // SMALL_DIVISOR}
        pairs: dict[str, list[Pair]] = {"large": [], "small": []}
        for name in ("small", "large"):  # the small inputs first: a quick look before the long wait
            files = [
                write_repeated(directory / f"capture-{name}.jsonl", lines, _OTLP_TIME, 1, sizes[name], points_per_unit),
                write_repeated(
                    directory / f"exposition-{name}.prom", blocks, _PROM_TIME, 10**6, sizes[name], points_per_unit
                ),
            ]
            for kind, written in zip(("otlp", "prom"), files, strict=True):
                pair = measure(kind, written, directory, timer)
                print(
                    f"  {kind} {written.size / MB:.0f} MB: parse {pair.parse.wall:.1f} s, "
                    f"validate {pair.validate.wall:.1f} s, load {load_average():.2f}",
                    flush=True,
                )
                pairs[name].append(pair)
                written.path.unlink()
        total = time.perf_counter() - started
    print_table([*pairs["small"], *pairs["large"]])
    print_ratios(pairs["large"], pairs["small"])
    print()
    print(verdict(pairs["large"], pairs["small"]))
    print(f"\n(whole run {total:.0f} s, load {load_average():.2f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
