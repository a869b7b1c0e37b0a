"""One queue, one set of consumers and one retry per exporter, as the Collector's exporterhelper does.

The receiver offers each accepted request to ``ExporterQueues``, which stores it in every exporter's
queue; each exporter's sender then delivers and retries on its own, so an OTLP downstream that is down
neither holds back the file and console exporters nor makes them write a request twice.

Admission is all or nothing as far as bounds go: under one lock, a request is offered only when every
queue has room for it, so a full queue refuses the request everywhere (UNAVAILABLE, the client retries).
Only a storage error in a later queue (a full or failing disk under a persistent one) can refuse a
request that earlier queues already hold; those copies are kept, as the Collector's fan-out keeps what
the exporters before the failing one took, and the client's retry delivers it to them a second time
(at-least-once).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from otel_contract.server._batch import Batch
from otel_contract.server.exporters import Exporter
from otel_contract.server.queue import QUEUE_FILE, QueueSettings, SendingQueue, SqliteQueue, open_queue
from otel_contract.server.sender import QueuedSender, RetrySettings, SendObserver

_log = logging.getLogger("otel_contract.sidecar")


@dataclass(frozen=True)
class ExporterQueue:
    """One exporter with the queue and sender that feed it; ``name`` labels its logs and metrics."""

    name: str
    destination: str
    queue: SendingQueue
    exporter: Exporter
    sender: QueuedSender


def open_exporter_queue(
    name: str,
    destination: str,
    exporter: Exporter,
    settings: QueueSettings,
    retry: RetrySettings,
    observer: SendObserver,
) -> ExporterQueue:
    """Open ``name``'s queue (under ``<directory>/<name>`` when persistent) and its sender, not started."""
    if settings.directory is not None:
        settings = replace(settings, directory=os.path.join(settings.directory, name))
    queue = open_queue(settings)
    sender = QueuedSender(
        queue,
        exporter,
        retry,
        consumers=settings.num_consumers,
        observer=observer,
        max_batch_items=settings.batch_max_size,
        flush_timeout=settings.flush_timeout,
        destination=destination,
    )
    return ExporterQueue(name, destination, queue, exporter, sender)


class ExporterQueues:
    """The receiver's ``Admission``: every request goes to every exporter's queue."""

    def __init__(self, exporters: Sequence[ExporterQueue]) -> None:
        if not exporters:
            raise ValueError("at least one exporter is needed")
        self.exporters = tuple(exporters)
        # Serializes admissions, so that room seen in every queue is still there when offering.
        self._lock = threading.Lock()
        self._only = self.exporters[0].queue if len(self.exporters) == 1 else None

    def offer(self, batch: Batch) -> bool:
        if self._only is not None:
            return self._only.offer(batch)  # one queue: its own offer checks the room, under its own lock
        with self._lock:
            if not all(each.queue.accepting(batch.size) for each in self.exporters):
                return False
            # Every queue offered to, even after a refusal: a copy stored is a copy delivered.
            results = [each.queue.offer(batch) for each in self.exporters]
        return all(results)

    def accepting(self) -> bool:
        return all(each.queue.accepting() for each in self.exporters)

    def start(self) -> None:
        for each in self.exporters:
            each.sender.start()

    def drain(self, deadline_seconds: float) -> dict[str, int]:
        """Drain every queue at once within the deadline; the requests each left undelivered."""
        with ThreadPoolExecutor(len(self.exporters), thread_name_prefix="otel-contract-drain") as pool:
            left = pool.map(lambda each: each.sender.drain(deadline_seconds), self.exporters)
            return {each.name: count for each, count in zip(self.exporters, left, strict=True)}

    def close(self) -> None:
        """Close the exporters and release the queues' storage (call after ``drain``)."""
        for each in self.exporters:
            each.exporter.close()
            each.queue.shutdown()


def adopt_shared_queue(settings: QueueSettings, exporters: Sequence[ExporterQueue]) -> int:
    """Move what the queue every exporter shared before each had its own (``<directory>/queue.sqlite3``)
    still holds into each exporter's queue, then remove it; the requests moved.

    Call before the senders start, so the moved requests go out first. Raises ``OSError`` with what to
    do when some exporter's queue has no room for them all: the old file is then left as it was.
    A crash while moving leaves the requests not moved yet in the old file and the next start moves
    them: only those already in a queue may be delivered twice (at least once, never lost).
    """
    if settings.directory is None or not os.path.exists(os.path.join(settings.directory, QUEUE_FILE)):
        return 0
    # Read all of it, whatever the bounds; what it holds is reported below, as moved or refused.
    shared = SqliteQueue(replace(settings, queue_size=2**62, max_disk_bytes=2**62), announce=False)
    try:
        count, size = shared.size(), shared.bytes()
        for each in exporters:
            capacity, max_bytes = each.queue.capacity, settings.max_disk_bytes
            if each.queue.size() + count > capacity or each.queue.bytes() + size > max_bytes:
                raise OSError(
                    f"{shared.path}: the sending queue of an older version holds {count} undelivered request(s)"
                    f" ({size} bytes), more than the {each.name} exporter's queue has room for ({capacity} requests,"
                    f" {max_bytes} bytes): raise exporter.sending_queue.queue_size or"
                    " exporter.sending_queue.storage.max_size_mib, or run the older version until it has delivered"
                    " them"
                )
        for _ in range(count):  # bounded: each lease holds one request at least
            lease = shared.take(count, size, 0)
            if lease is None:
                break
            for batch in lease.batches:
                for each in exporters:
                    if not each.queue.offer(batch):
                        raise OSError(
                            f"{shared.path}: cannot move a request of the older version's sending queue into the"
                            f" {each.name} exporter's queue {each.queue.path}; the rest stays in {shared.path}"
                        )
            shared.ack(lease)  # moved: gone from the old file, so a restart does not move it again
    finally:
        shared.shutdown()
    for suffix in ("", "-wal", "-shm"):  # SQLite's write-ahead log files go with the database
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{shared.path}{suffix}")
    if count:
        _log.warning(
            "moved %d request(s) from %s, the sending queue of an older version, into the queues of the %s"
            " exporter(s); removed it",
            count,
            shared.path,
            ", ".join(each.name for each in exporters),
        )
    else:
        _log.info("removed %s, the empty sending queue of an older version", shared.path)
    return count


__all__ = ["ExporterQueue", "ExporterQueues", "adopt_shared_queue", "open_exporter_queue"]
