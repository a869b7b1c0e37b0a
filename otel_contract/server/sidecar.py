"""The sidecar's pipeline, wired: receivers (OTLP/gRPC, OTLP/HTTP) -> intake (the contract pipeline) ->
per exporter: sending queue -> sender.

Lifecycle: ``start()`` loads the contract (a broken one stops the start with every reason), opens each
exporter's queue (a persistent one re-delivers what a previous run left), then starts sending,
self-telemetry, health, the receivers and the reload watcher. ``shutdown()`` is SIGTERM's path: refuse
new requests with UNAVAILABLE (gRPC) or 503 (HTTP), let in-flight ones finish, drain every queue up to
the deadline, flush, close.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from otel_contract.contract import ContractError
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import EngineOptions
from otel_contract.loading import load_contract
from otel_contract.pipeline import Pipeline
from otel_contract.server.config import SidecarConfig
from otel_contract.server.endpoints import check_bindable, parse_endpoint
from otel_contract.server.exporters import Exporter
from otel_contract.server.fanout import ExporterQueue, ExporterQueues, adopt_shared_queue, open_exporter_queue
from otel_contract.server.grpc_receiver import GrpcReceiver
from otel_contract.server.health import Health
from otel_contract.server.http_receiver import HttpReceiver
from otel_contract.server.intake import Intake
from otel_contract.server.queue import SendingQueue
from otel_contract.server.reload import ContractWatcher
from otel_contract.server.status import StatusServer
from otel_contract.server.telemetry import SelfTelemetry

_log = logging.getLogger("otel_contract.sidecar")


def build_exporters(config: SidecarConfig) -> list[tuple[str, str, Exporter]]:
    """Each configured exporter as (name, destination, exporter); the name is also its queue's directory."""
    return [(name, settings.destination, settings.create()) for name, settings in config.exporter.configured]


def _capacity(queue: SendingQueue) -> Callable[[], int]:
    return lambda: queue.capacity


class Sidecar:
    """One sidecar process (a worker, with ``--workers``)."""

    def __init__(self, config: SidecarConfig, *, env: Mapping[str, str], worker: int = 0) -> None:
        self.config = config
        self._env = env
        self._worker = worker
        self._instance_id = f"{socket.gethostname()}-{os.getpid()}"
        self._shutting_down = threading.Event()
        self._stopped = threading.Event()
        self._started = threading.Event()
        self._reload_pending = False
        self.processor: Pipeline | None = None
        self.queues: ExporterQueues | None = None
        self.telemetry: SelfTelemetry | None = None
        self.intake: Intake | None = None
        self.receiver: GrpcReceiver | None = None
        self.http_receiver: HttpReceiver | None = None
        self.status: StatusServer | None = None
        self._health: Health | None = None
        self._watcher: ContractWatcher | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Raises ``ContractError`` for an invalid contract and ``OSError`` naming the address for a port
        in use or a host that does not resolve."""
        config = self.config
        # Before anything starts (and logs): a port in use is then the one line the user sees.
        check_bindable(config.receiver.endpoint, what="receiver.endpoint", reuse_port=config.workers > 1)
        if config.http_receiver is not None:
            check_bindable(config.http_receiver.endpoint, what="receiver.http.endpoint", reuse_port=config.workers > 1)
        contract = load_contract(config.contract_path, allow_include_outside=config.allow_include_outside)
        self.processor = Pipeline(contract, EngineOptions(audit=config.audit, env=MappingProxyType(dict(self._env))))
        self.telemetry = SelfTelemetry(
            instance_id=self._instance_id,
            otlp_endpoint=config.otlp_telemetry_endpoint,
            otlp_interval=config.otlp_telemetry_interval,
        )
        self.telemetry.set_contract(contract.contract.name, contract.contract.version)
        self.queues = self._open_queues(self.telemetry)
        for each in self.queues.exporters:
            self.telemetry.observe_queue(each.name, each.queue.size, _capacity(each.queue))
            if each.queue.size():
                _log.info(
                    "the %s exporter's queue holds %d request(s) from a previous run; delivering them first",
                    each.name,
                    each.queue.size(),
                )
        self.queues.start()
        self._health = Health()
        if config.prometheus_endpoint:
            self.status = StatusServer(config.prometheus_endpoint, self.telemetry, self.ready, self.health)
            self.status.start()
        self.intake = Intake(
            self.processor, self.queues, self.telemetry, on_engine_error=config.receiver.on_engine_error
        )
        try:
            self.receiver = GrpcReceiver(
                config.receiver, self.intake, reuse_port=config.workers > 1, extra_services=self._health.add_to
            )
        except RuntimeError as error:  # gRPC's "Failed to bind": the port was taken since the check
            raise OSError(f"cannot listen on {config.receiver.endpoint} (receiver.endpoint): {error}") from None
        if config.http_receiver is not None:
            http_receiver = HttpReceiver(config.http_receiver, self.intake, reuse_port=config.workers > 1)
            http_receiver.start()
            # Only once bound: /healthz, already serving, reads the address from it.
            self.http_receiver = http_receiver
        self.receiver.start()
        self._health.set_serving(True)
        self._watcher = ContractWatcher(
            config.contract_path,
            contract,
            interval=config.reload_interval,
            watch=config.reload,
            allow_include_outside=config.allow_include_outside,
            on_loaded=self._contract_loaded,
            on_refused=self._contract_refused,
        )
        self._watcher.start()
        if self._reload_pending:  # a SIGHUP that came while starting
            self._watcher.request()
        self._started.set()
        telemetry_at = f", metrics and health on http://{self.status.address}" if self.status else ""
        http_at = f" and http://{self.http_endpoint} (OTLP/HTTP)" if self.http_endpoint else ""
        _log.info(
            "otel-contract sidecar%s listening on %s (OTLP/gRPC)%s, contract %s (%s), exporting to %s%s",
            f" worker {self._worker}" if config.workers > 1 else "",
            self.endpoint,
            http_at,
            contract.id,
            "audit" if config.audit else "enforce",
            config.exporter.destinations,
            telemetry_at,
        )

    def _open_queues(self, telemetry: SelfTelemetry) -> ExporterQueues:
        exporters = build_exporters(self.config)
        opened: list[ExporterQueue] = []
        try:
            for name, destination, exporter in exporters:
                settings = self.config.exporter
                observer = telemetry.for_exporter(name)
                opened.append(
                    open_exporter_queue(name, destination, exporter, settings.queue, settings.retry, observer)
                )
            adopt_shared_queue(self.config.exporter.queue, opened)
        except BaseException:
            # Nothing started yet: close what was opened, so that no database stays locked.
            if opened:
                ExporterQueues(opened).close()
            for _, _, exporter in exporters[len(opened) :]:
                exporter.close()
            raise
        return ExporterQueues(opened)

    @property
    def endpoint(self) -> str:
        assert self.receiver is not None
        # The configured host with the port bound (port 0 picks one).
        return str(replace(parse_endpoint(self.config.receiver.endpoint, listen=True), port=self.receiver.port))

    @property
    def http_endpoint(self) -> str | None:
        """The OTLP/HTTP receiver's ``host:port`` as bound, or None when it is off."""
        return self.http_receiver.address if self.http_receiver is not None else None

    def reload(self) -> None:
        """Reload the contract now (SIGHUP); during start-up, as soon as the watcher runs."""
        if self._watcher is not None:
            self._watcher.request()
        else:
            self._reload_pending = True

    def request_shutdown(self) -> None:
        """Safe from a signal handler: ``wait()`` returns and the caller runs ``shutdown()``."""
        self._shutting_down.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._shutting_down.wait(timeout)

    def shutdown(self) -> int:
        """Stop accepting, drain up to the deadline; returns the requests left undelivered."""
        self._shutting_down.set()
        if self._stopped.is_set():
            return 0
        self._stopped.set()
        if self._health is not None:
            self._health.set_serving(False)
        if self.intake is not None:
            self.intake.stop_accepting()
        grace = min(5.0, self.config.drain_timeout)
        if self.http_receiver is not None:
            self.http_receiver.stop(grace)
        if self.receiver is not None:
            self.receiver.stop(grace)
        if self._watcher is not None:
            self._watcher.stop()
        left = 0
        if self.queues is not None:
            left = sum(self.queues.drain(self.config.drain_timeout).values())
            self.queues.close()  # drain() closed the queues; this releases a persistent queue's database
        if self.status is not None:
            self.status.stop()
        if self.telemetry is not None:
            self.telemetry.shutdown()
        if self._started.is_set():  # a start that failed has said why; "stopped" would only add noise
            _log.info("otel-contract sidecar stopped (%d request(s) left undelivered)", left)
        return left

    # --- health and reload -----------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        if self.processor is None:
            return False, "no contract loaded"
        if not self._started.is_set():
            return False, "starting"
        if self._shutting_down.is_set():
            return False, "shutting down"
        if self.queues is None:
            return False, "sending queue full"
        full = [each.name for each in self.queues.exporters if not each.queue.accepting()]
        if full:
            return False, f"sending queue full ({', '.join(full)})"
        return True, f"ready, contract {self.processor.label}"

    def health(self) -> dict[str, Any]:
        queues = self.queues.exporters if self.queues else ()
        return {
            "status": "shutting_down" if self._shutting_down.is_set() else "ok",
            "contract": self.processor.label if self.processor else None,
            "mode": "audit" if self.config.audit else "enforce",
            "receivers": {
                "grpc": self.endpoint if self.receiver else None,
                "http": self.http_endpoint,
            },
            # The fullest queue is the one that refuses requests first.
            "queue": max(
                ({"size": each.queue.size(), "capacity": each.queue.capacity} for each in queues),
                key=lambda queue: queue["size"],
                default=None,
            ),
            "queues": {each.name: {"size": each.queue.size(), "capacity": each.queue.capacity} for each in queues},
            "worker": self._worker,
        }

    def _contract_loaded(self, contract: CompiledContract) -> None:
        assert self.processor is not None and self.telemetry is not None
        previous = self.processor.label
        self.processor.swap(contract)
        self.telemetry.contract_reloaded(True)
        self.telemetry.set_contract(contract.contract.name, contract.contract.version)
        _log.info("contract reloaded: %s (was %s)", contract.id, previous)

    def _contract_refused(self, error: ContractError) -> None:
        assert self.telemetry is not None
        self.telemetry.contract_reloaded(False)
