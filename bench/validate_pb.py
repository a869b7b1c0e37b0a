"""``otel-contract validate`` on a directory of binary OTLP captures against a plain parse + serialize.

    .venv/bin/python bench/validate_pb.py [--requests 40] [--variant legacy20] [--rounds 3]

Issue 18's whole-process target: validate on 400,000 data points (40 requests of 10,000, the
``bench/run.py`` workload, 20 % legacy names, one ``.metrics.pb`` file each) against the least any
reader of those files must do, in a fresh child process: read each file, ``FromString`` and
``SerializeToString`` it (the "floor"). Both run alternately, ``--rounds`` times; the medians of CPU
(user + system) and wall time are reported with the ratio validate/floor. A one-file directory is
timed the same way, to show what is fixed cost (interpreter, imports, loading the contract) rather
than per-point work. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from validate import Run, gnu_time, run_child
from workload import VARIANTS, build_request, count_points

CONTRACT = Path(__file__).resolve().with_name("contract.yaml")
FLOOR = """
import sys
from pathlib import Path
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
size = 0
for path in sorted(Path(sys.argv[1]).glob("*.pb")):
    size += len(ExportMetricsServiceRequest.FromString(path.read_bytes()).SerializeToString())
print(size)
"""


def _floor(directory: Path) -> list[str]:
    import sys

    return [sys.executable, "-c", FLOOR, str(directory)]


def _validate(directory: Path) -> list[str]:
    import sys

    return [sys.executable, "-m", "otel_contract", "validate", "-c", str(CONTRACT), str(directory)]


def _measure(directory: Path, work: Path, rounds: int) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {"floor": [], "validate": []}
    timer = gnu_time()
    for _ in range(rounds):
        runs["floor"].append(run_child("floor", _floor(directory), work, timer))
        runs["validate"].append(run_child("validate", [*_validate(directory), "--no-progress"], work, timer))
    for run in runs["validate"]:
        if run.exit_code not in (0, 1):
            raise SystemExit(f"validate failed (exit {run.exit_code}): {run.stderr.strip()}")
    return runs


def _row(label: str, points: int, runs: dict[str, list[Run]]) -> str:
    cpu = {name: statistics.median(run.cpu for run in each) for name, each in runs.items()}
    wall = {name: statistics.median(run.wall for run in each) for name, each in runs.items()}
    rss = {name: statistics.median(run.rss_mib for run in each) for name, each in runs.items()}
    return (
        f"{label:10} {points:>9,} {cpu['floor']:9.2f} {cpu['validate']:11.2f} {cpu['validate'] / cpu['floor']:8.2f}x"
        f" {wall['floor']:9.2f} {wall['validate']:10.2f} {wall['validate'] / wall['floor']:8.2f}x"
        f" {rss['floor']:7.1f} {rss['validate']:8.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40, help="files of 10,000 data points each (default 40)")
    parser.add_argument("--variant", choices=VARIANTS, default="legacy20")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="otel-contract-bench-") as temporary:
        root = Path(temporary)
        full, one = root / "captures", root / "one"
        full.mkdir()
        one.mkdir()
        points = 0
        for seed in range(1, args.requests + 1):
            request = build_request(args.variant, seed=seed)
            points += count_points(request)
            (full / f"request-{seed:04d}.metrics.pb").write_bytes(request.SerializeToString())
        (one / "request-0001.metrics.pb").write_bytes((full / "request-0001.metrics.pb").read_bytes())
        print(
            f"validate_pb: {args.requests} files of the {args.variant} workload, contract {CONTRACT.name},"
            f" medians of {args.rounds} alternating rounds"
        )
        print(
            f"{'input':10} {'points':>9} {'floor cpu':>9} {'validate cpu':>11} {'ratio':>9}"
            f" {'floor s':>9} {'validate s':>10} {'ratio':>9} {'floor MiB':>7} {'val. MiB':>8}"
        )
        print(_row("one file", points // args.requests, _measure(one, root, args.rounds)))
        print(_row("all files", points, _measure(full, root, args.rounds)))
    print("cpu: user + system seconds of the child; the one-file row is mostly fixed cost (imports, contract)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
