"""The sidecar's pipeline, wired: receiver -> contract pipeline -> sending queue -> sender -> exporters.

Lifecycle: ``start()`` loads the contract (a broken one stops the start with every reason), opens the
queue (a persistent one re-delivers what a previous run left), then starts sending, self-telemetry,
health, the receiver and the reload watcher. ``shutdown()`` is SIGTERM's path: refuse new requests with
UNAVAILABLE, let in-flight ones finish, drain the queue up to the deadline, flush, close.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from otel_contract.contract import ContractError, load_contract
from otel_contract.contract.compiled import CompiledContract
from otel_contract.engine import EngineOptions
from otel_contract.pipeline import Pipeline
from otel_contract.server.config import SidecarConfig
from otel_contract.server.endpoints import check_bindable
from otel_contract.server.exporters import ConsoleExporter, Exporter, FanoutExporter, FileExporter, OtlpGrpcExporter
from otel_contract.server.health import Health
from otel_contract.server.queue import SendingQueue, open_queue
from otel_contract.server.receiver import Receiver
from otel_contract.server.reload import ContractWatcher
from otel_contract.server.sender import QueuedSender
from otel_contract.server.status import StatusServer
from otel_contract.server.telemetry import SelfTelemetry

_log = logging.getLogger("otel_contract.sidecar")


def build_exporter(config: SidecarConfig) -> Exporter:
    settings = config.exporter
    exporters: list[Exporter] = []
    if settings.otlp is not None:
        exporters.append(OtlpGrpcExporter(settings.otlp))
    if settings.file:
        exporters.append(FileExporter(settings.file))
    if settings.console:
        exporters.append(ConsoleExporter(verbosity=settings.console))
    return exporters[0] if len(exporters) == 1 else FanoutExporter(exporters)


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
        self.queue: SendingQueue | None = None
        self.telemetry: SelfTelemetry | None = None
        self.receiver: Receiver | None = None
        self.status: StatusServer | None = None
        self._sender: QueuedSender | None = None
        self._exporter: Exporter | None = None
        self._health: Health | None = None
        self._watcher: ContractWatcher | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Raises ``ContractError`` for an invalid contract and ``OSError`` naming the address for a port
        in use or a host that does not resolve."""
        config = self.config
        # Before anything starts (and logs): a port in use is then the one line the user sees.
        check_bindable(config.receiver.endpoint, what="receiver.endpoint", reuse_port=config.workers > 1)
        contract = load_contract(config.contract_path, allow_include_outside=config.allow_include_outside)
        self.processor = Pipeline(contract, EngineOptions(audit=config.audit, env=MappingProxyType(dict(self._env))))
        self.telemetry = SelfTelemetry(
            instance_id=self._instance_id,
            otlp_endpoint=config.otlp_telemetry_endpoint,
            otlp_interval=config.otlp_telemetry_interval,
        )
        self.telemetry.set_contract(contract.contract.name, contract.contract.version)
        self.queue = open_queue(config.exporter.queue)
        queue = self.queue
        self.telemetry.observe_queue(queue.size, lambda: queue.capacity)
        if queue.size():
            _log.info("sending queue holds %d request(s) from a previous run; delivering them first", queue.size())
        self._exporter = build_exporter(config)
        self._sender = QueuedSender(
            queue,
            self._exporter,
            config.exporter.retry,
            consumers=config.exporter.queue.num_consumers,
            observer=self.telemetry,
            max_batch_items=config.exporter.queue.batch_max_size,
            flush_timeout=config.exporter.queue.flush_timeout,
            destination=config.exporter.destinations,
        )
        self._sender.start()
        self._health = Health()
        if config.prometheus_endpoint:
            self.status = StatusServer(config.prometheus_endpoint, self.telemetry, self.ready, self.health)
            self.status.start()
        try:
            self.receiver = Receiver(
                config.receiver,
                self.processor,
                queue,
                self.telemetry,
                reuse_port=config.workers > 1,
                extra_services=self._health.add_to,
            )
        except RuntimeError as error:  # gRPC's "Failed to bind": the port was taken since the check
            raise OSError(f"cannot listen on {config.receiver.endpoint} (receiver.endpoint): {error}") from None
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
        _log.info(
            "otel-contract sidecar%s listening on %s (OTLP/gRPC), contract %s (%s), exporting to %s%s",
            f" worker {self._worker}" if config.workers > 1 else "",
            self.endpoint,
            contract.id,
            "audit" if config.audit else "enforce",
            config.exporter.destinations,
            telemetry_at,
        )

    @property
    def endpoint(self) -> str:
        assert self.receiver is not None
        host = self.config.receiver.endpoint.rpartition(":")[0]
        return f"{host}:{self.receiver.port}"

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
        if self.receiver is not None:
            self.receiver.stop_accepting()
            self.receiver.stop(grace=min(5.0, self.config.drain_timeout))
        if self._watcher is not None:
            self._watcher.stop()
        left = 0
        if self._sender is not None:
            left = self._sender.drain(self.config.drain_timeout)
        if self._exporter is not None:
            self._exporter.close()
        if self.queue is not None:
            self.queue.shutdown()  # drain() closed it; this releases the database of a persistent queue
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
        if self.queue is None or not self.queue.accepting():
            return False, "sending queue full"
        return True, f"ready, contract {self.processor.label}"

    def health(self) -> dict[str, Any]:
        queue = self.queue
        return {
            "status": "shutting_down" if self._shutting_down.is_set() else "ok",
            "contract": self.processor.label if self.processor else None,
            "mode": "audit" if self.config.audit else "enforce",
            "queue": {"size": queue.size(), "capacity": queue.capacity} if queue else None,
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
