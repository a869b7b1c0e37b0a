"""Per-point cost against the size of the contract: the engine on one workload under bench/contract.yaml
(20 metrics) and under the same contract grown to ``--metrics`` metrics, each with a legacy alias.

    .venv/bin/python bench/aliases.py [--metrics 10000] [--variant legacy20] [--repeat 7]

The extra metrics are never sent: only the lookups and the legacy-name scan can grow with them. The
issue's target is the large contract within 1.2x of the small one. Times are taken in one process,
interleaved; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from workload import VARIANTS, build_request

from otel_contract.engine import CardinalityState, EngineOptions, process_metrics
from otel_contract.loading import load_contract

CONTRACT = Path(__file__).resolve().with_name("contract.yaml")


def grown_contract(directory: Path, metrics: int) -> Path:
    """bench/contract.yaml with metrics added up to ``metrics``, each a gauge with an alias in ms."""
    document = yaml.safe_load(CONTRACT.read_text())
    extra = metrics - len(document["metrics"])
    for index in range(max(extra, 0)):
        document["metrics"].append(
            {
                "name": f"grown_queue_wait_seconds_{index:05d}",
                "type": "gauge",
                "unit": "s",
                "description": "A metric no request sends: only the contract grows",
                "owner": "team-bench",
                "stability": "experimental",
                "since": "1.0.0",
                "aliases": [{"name": f"grown.queue.wait.{index:05d}", "unit": "ms"}],
            }
        )
    path = directory / f"contract-{metrics}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--variant", choices=VARIANTS, default="legacy20")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    payload = build_request(args.variant).SerializeToString()
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        large = load_contract(grown_contract(Path(directory), args.metrics))
        loaded = time.perf_counter() - started
    contracts = {"20 metrics": load_contract(CONTRACT), f"{args.metrics} metrics": large}
    times: dict[str, list[float]] = {name: [] for name in contracts}
    for _ in range(args.repeat):
        for name, contract in contracts.items():
            state = CardinalityState()
            start = time.perf_counter()
            process_metrics(payload, contract, state=state, options=EngineOptions()).to_bytes()
            times[name].append((time.perf_counter() - start) * 1000)
    print(
        f"workload {args.variant}, {len(payload):,} bytes; the {args.metrics}-metric contract loaded in {loaded:.1f} s"
    )
    for name, runs in times.items():
        print(f"  {name:>16}: best {min(runs):7.2f} ms, median {statistics.median(runs):7.2f} ms")
    small, grown = (min(runs) for runs in times.values())
    print(f"  large / small: {grown / small:.2f}x (target <= 1.2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
