"""Running the sidecar as a process: logging, signals, and ``--workers`` processes.

Signals: SIGTERM and SIGINT drain and exit 0, or 3 when requests clients were told were accepted
are lost (an in-memory queue not drained by ``shutdown.drain_timeout``); SIGHUP reloads the
contract. With ``--workers N`` the parent starts N worker processes that share the receiver port
through SO_REUSEPORT (the kernel spreads connections across them; the approach gRPC Python
recommends for CPU-bound servers), forwards signals to them and exits when they have exited. Each
worker has its own cardinality state, queue directory (``worker-K``) and self-telemetry port
(configured port + K). Because the kernel balances connections, not series, an OTLP client keeps
one connection and so one worker; cardinality budgets are therefore enforced per worker (a budget of
B admits at most N x B series).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Mapping
from types import FrameType

from otel_contract.contract import ContractError
from otel_contract.reports.text import format_error
from otel_contract.server.config import SidecarConfig, with_worker
from otel_contract.server.sidecar import Sidecar

_log = logging.getLogger("otel_contract.sidecar")

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_LOST = 3  # stopped, but accepted requests were lost with the in-memory queue

# glibc gives threads that allocate at once arenas of their own (up to 8 per core), and each arena keeps
# what is freed into it: the receiver's threads allocate the requests the sender's threads free, so
# every arena came to hold freed payloads, about 7 MiB of RSS at 100 requests/s. The GIL lets one
# thread run Python at a time, so two arenas cost no contention worth measuring.
_MALLOC_ARENAS = 2
# glibc serves blocks from 128 KiB up with mmap, but raises that threshold to the size of each such block
# freed: after the first joined batch of queued requests (hundreds of KiB) was freed, every later one
# came from the heap and stayed resident. A fixed threshold (glibc's own starting value) gives them back
# to the system when freed, about 1 MiB of peak RSS, for a few page faults per batch.
_MMAP_THRESHOLD = 128 * 1024
_M_ARENA_MAX = -8  # mallopt's parameter numbers, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _print_contract_error(error: ContractError, path: str) -> None:
    # One line per problem, as validate prints them, so that a log line is a whole error.
    for finding in error.named_as(path):
        print(f"otel-contract serve: {format_error(finding)}", file=sys.stderr)
    if not error.findings:
        print(f"otel-contract serve: the contract {path} cannot be loaded: {error}", file=sys.stderr)


def _tune_malloc() -> None:
    """Cap glibc's malloc arenas and fix its mmap threshold before the sidecar starts its threads, each
    unless its variable (which glibc read at start-up) already says; nothing on another C library."""
    if not sys.platform.startswith("linux"):
        return
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return
    except (ValueError, OSError):  # not glibc: musl has no such name
        return
    import ctypes  # only here: nothing else needs it

    with contextlib.suppress(OSError, AttributeError):
        mallopt = ctypes.CDLL(None).mallopt
        for variable, parameter, value in (
            ("MALLOC_ARENA_MAX", _M_ARENA_MAX, _MALLOC_ARENAS),
            ("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
        ):
            if variable not in os.environ:
                mallopt(parameter, value)


def run_sidecar(config: SidecarConfig, env: Mapping[str, str], worker: int = 0) -> int:
    """Run one sidecar until SIGTERM/SIGINT; the exit code."""
    _tune_malloc()
    sidecar = Sidecar(config, env=env, worker=worker)

    def on_stop(signum: int, frame: FrameType | None) -> None:
        _log.info("%s received: refusing new requests and draining the queue", signal.Signals(signum).name)
        sidecar.request_shutdown()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        _log.info("SIGHUP received: reloading the contract")
        sidecar.reload()

    # Before start(): once the sidecar reports ready, a SIGTERM must already mean "drain".
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        sidecar.start()
    except ContractError as error:
        _print_contract_error(error, config.contract_path)
        sidecar.shutdown()
        return EXIT_USAGE
    except (OSError, ValueError) as error:
        print(f"otel-contract serve: {error}", file=sys.stderr)
        sidecar.shutdown()
        return EXIT_USAGE
    # The main thread sleeps in short waits so that signal handlers run promptly.
    while not sidecar.wait(timeout=0.5):
        pass
    left = sidecar.shutdown()
    # A persistent queue keeps what is left for the next start: nothing is lost then.
    return EXIT_LOST if left and not config.exporter.queue.directory else EXIT_OK


def _worker_main(config: SidecarConfig, env: dict[str, str], index: int) -> None:
    configure_logging(env.get("OTEL_CONTRACT_LOG_LEVEL", "INFO"))
    raise SystemExit(run_sidecar(config, env, worker=index))


def run_workers(config: SidecarConfig, env: Mapping[str, str]) -> int:
    """Start ``config.workers`` sidecars sharing the port; forward signals; the worst exit code."""
    context = multiprocessing.get_context("spawn")  # gRPC must not be forked after it started threads
    workers = [
        context.Process(
            target=_worker_main, args=(with_worker(config, index), dict(env), index), name=f"worker-{index}"
        )
        for index in range(config.workers)
    ]
    for process in workers:
        process.start()

    def forward(signum: int, frame: FrameType | None) -> None:
        for process in workers:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    _log.info("started %d workers sharing %s", len(workers), config.receiver.endpoint)
    codes = []
    for process in workers:
        process.join()
        codes.append(process.exitcode or 0)
        if process.exitcode:  # one worker failing takes the pod down; the orchestrator restarts it
            forward(signal.SIGTERM, None)
    return max(codes, default=EXIT_OK)


def serve(config: SidecarConfig, env: Mapping[str, str]) -> int:
    if config.workers > 1:
        return run_workers(config, env)
    return run_sidecar(config, env)
