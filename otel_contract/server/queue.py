"""The sending queue between the receiver and the exporters: bounded, FIFO, in memory or on disk.

The receiver ``offer``s each accepted request; a full (or closed) queue refuses it, and the receiver
answers UNAVAILABLE with RetryInfo so the client retries later: nothing is dropped. Consumers
``take`` a *lease* over one or more requests of one signal, export them, then ``ack`` (delivered, or
dropped for good) or ``release`` them (back to the head of the queue, for a later attempt).

``SqliteQueue`` keeps every request in a SQLite file until it is acked, so a request the receiver
answered OK survives a restart or SIGKILL: rows left by a previous process are pending again on
open (at-least-once delivery).
"""

from __future__ import annotations

import abc
import builtins
import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from otel_contract.durations import parse_duration
from otel_contract.otlp import Signal
from otel_contract.server._batch import Batch

if TYPE_CHECKING:
    import sqlite3  # imported by SqliteQueue when one is opened: an in-memory queue needs none of it

_log = logging.getLogger("otel_contract.exporter")

QUEUE_FILE = "queue.sqlite3"
_MIB = 2**20  # the pipeline config gives byte bounds in MiB


@dataclass(frozen=True)
class QueueSettings:
    """``exporter.sending_queue``: bounds of the queue, and where it persists when ``directory`` is set.

    A request is refused when the queue holds ``queue_size`` requests, or when adding it would take
    the queued payload past ``queue_size_bytes`` (in memory) or ``max_disk_bytes`` (on disk). An empty
    queue accepts any one request, so a request larger than the bound is not refused forever.
    ``max_disk_bytes`` counts payload bytes, not the size of the SQLite file. Consumers forward up to
    ``batch_max_size`` items per call, waiting up to ``flush_timeout`` seconds for them to gather.
    """

    num_consumers: int = 4
    queue_size: int = 1000
    queue_size_bytes: int = 256 * 2**20
    directory: str | None = None
    max_disk_bytes: int = 1 * 2**30
    flush_timeout: float = 0.2
    batch_max_size: int = 8192

    def __post_init__(self) -> None:
        problems = [
            f"{name}: must be a positive integer, got {value!r}"
            for name, value in (
                ("num_consumers", self.num_consumers),
                ("queue_size", self.queue_size),
                ("queue_size_bytes", self.queue_size_bytes),
                ("max_disk_bytes", self.max_disk_bytes),
                ("batch_max_size", self.batch_max_size),
            )
            if not _is_positive_int(value)
        ]
        if not (isinstance(self.flush_timeout, int | float) and 0 <= self.flush_timeout <= 60):
            problems.append(f"flush_timeout: must be between 0 and 60 seconds, got {self.flush_timeout!r}")
        if self.directory is not None and (not isinstance(self.directory, str) or not self.directory.strip()):
            problems.append(f"directory: must be a non-empty path, got {self.directory!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], directory: str | None = None) -> QueueSettings:
        """``exporter.sending_queue`` as the pipeline config writes it (MiB, durations such as ``200ms``),
        persisted in ``directory`` (resolved by the caller) when set; a key not set keeps the default
        above. Raises ``ValueError`` naming every value refused."""
        defaults = cls()
        batch, storage = raw.get("batch", {}), raw.get("storage", {})
        return cls(
            num_consumers=raw.get("num_consumers", defaults.num_consumers),
            queue_size=raw.get("queue_size", defaults.queue_size),
            queue_size_bytes=int(raw.get("queue_size_mib", defaults.queue_size_bytes / _MIB) * _MIB),
            directory=directory,
            max_disk_bytes=int(storage.get("max_size_mib", defaults.max_disk_bytes / _MIB) * _MIB),
            flush_timeout=parse_duration(batch.get("flush_timeout", defaults.flush_timeout)),
            batch_max_size=batch.get("max_size", defaults.batch_max_size),
        )


def _is_positive_int(value: object) -> bool:
    # bool is an int to Python but never a size a user meant.
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True, eq=False)
class Lease:
    """Requests of one signal handed to one consumer, oldest first, until it acks or releases them."""

    batches: tuple[Batch, ...]
    token: int  # which take() handed it out; only the issuing queue interprets it

    @property
    def signal(self) -> Signal:
        return self.batches[0].signal

    @property
    def items(self) -> int:
        return sum(batch.items for batch in self.batches)

    @property
    def size(self) -> int:
        return sum(batch.size for batch in self.batches)

    @property
    def payload(self) -> bytes:
        """The requests as one export request: serialized requests of one signal concatenate into one."""
        return b"".join(batch.payload for batch in self.batches)


class SendingQueue(Protocol):
    """What the receiver and the sender need of a queue; every method is thread-safe."""

    @property
    def capacity(self) -> int:
        """The most requests the queue holds."""
        ...

    @property
    def path(self) -> str | None:
        """The file the queue persists to, or None for an in-memory queue."""
        ...

    def offer(self, batch: Batch) -> bool:
        """Queue a request; False when full or closed. True means it is stored (on disk, if persistent)."""
        ...

    def take(
        self,
        max_batches: int,
        max_bytes: int,
        timeout: float,
        *,
        max_items: int | None = None,
        linger: float = 0.0,
    ) -> Lease | None:
        """Lease the oldest requests, all of the head's signal, within the limits (always at least one).

        Waits up to ``timeout`` seconds for a request; None if none came, or at once when the queue is
        closed and nothing is queued or leased. Once a request is there, waits up to ``linger`` more
        seconds for ``max_items`` items to gather (the Collector batch processor's timeout), unless
        the queue is closed.
        """
        ...

    def ack(self, lease: Lease) -> None:
        """Remove the leased requests: delivered, or dropped for good."""
        ...

    def release(self, lease: Lease) -> None:
        """Put the leased requests back at the head of the queue, in their original order."""
        ...

    def size(self) -> int:
        """Requests queued, leased ones included."""
        ...

    def pending_items(self) -> int:
        """Data points, spans and log records queued, leased ones included."""
        ...

    def accepting(self, size: int = 1) -> bool:
        """Whether a request of ``size`` payload bytes would be accepted now: not closed and not full."""
        ...

    def close(self) -> None:
        """Refuse further offers; queued requests can still be taken."""
        ...

    def shutdown(self) -> None:
        """Close and release the storage: take returns None, and leases still out settle in memory
        only, so un-acked requests of a persistent queue stay on disk for the next start."""
        ...

    # Last, so that the method does not shadow the builtin in the annotations above.
    def bytes(self) -> int:
        """Payload bytes queued, leased ones included."""
        ...


class _Entry(NamedTuple):
    key: int  # arrival order: a sequence number in memory, the row id on disk
    signal: Signal
    items: int
    size: int


class _QueueBase(abc.ABC):
    """Bounds, FIFO order, leases and waiting, over a store that subclasses provide."""

    def __init__(self, settings: QueueSettings, max_bytes: int) -> None:
        self._capacity = settings.queue_size
        self._max_bytes = max_bytes
        self._cond = threading.Condition()
        self._pending: deque[_Entry] = deque()
        self._leases: dict[int, tuple[_Entry, ...]] = {}
        self._next_token = 0
        self._count = 0
        self._bytes = 0
        self._items = 0
        self._closed = False
        self._detached = False  # after shutdown(): the store is gone, leases settle in memory only
        # take() calls lingering for more items, and the items they wait for: an offer wakes a consumer
        # only when one has work to start or a lingering batch is full, not once per request.
        self._lingering = 0
        self._linger_items = 0
        # What the store raises when it cannot store or delete (a full or failing disk).
        self._store_errors: tuple[type[Exception], ...] = ()

    # --- the store: called with self._cond held ---------------------------------------------------

    @abc.abstractmethod
    def _store(self, batch: Batch) -> int: ...

    @abc.abstractmethod
    def _load(self, keys: Sequence[int]) -> list[builtins.bytes]: ...

    @abc.abstractmethod
    def _delete(self, keys: Sequence[int]) -> None: ...

    def _close_store(self) -> None:  # noqa: B027 (most stores have nothing to close)
        pass

    # --- SendingQueue ----------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def path(self) -> str | None:
        return None

    def offer(self, batch: Batch) -> bool:
        with self._cond:
            if self._closed or not self._has_room(batch.size):
                return False
            try:
                key = self._store(batch)
            except self._store_errors as err:
                # A full or failing disk refuses the request like a full queue: the client retries.
                _log.error("sending queue: cannot store a %s request: %s", batch.signal, err)
                return False
            self._pending.append(_Entry(key, batch.signal, batch.items, batch.size))
            self._count += 1
            self._bytes += batch.size
            self._items += batch.items
            # A consumer is woken for the head; one that takes leaves none behind unwoken (take()), and a
            # lingering one is woken when its batch is full.
            if len(self._pending) == 1 or (self._lingering and self._items >= self._linger_items):
                self._cond.notify()
            return True

    def take(
        self,
        max_batches: int,
        max_bytes: int,
        timeout: float,
        *,
        max_items: int | None = None,
        linger: float = 0.0,
    ) -> Lease | None:
        with self._cond:
            self._cond.wait_for(self._takeable, timeout=timeout)
            if linger > 0 and self._pending and max_items is not None:
                self._lingering += 1
                self._linger_items = max_items
                try:
                    self._cond.wait_for(lambda: self._items >= max_items or self._closed or not self._pending, linger)
                finally:
                    self._lingering -= 1
            if not self._pending or self._detached:
                return None
            entries = self._select(max_batches, max_bytes, max_items)
            payloads = self._load([entry.key for entry in entries])
            for _ in entries:
                self._pending.popleft()
            if self._pending:
                self._cond.notify()  # what the limits left behind is the next consumer's
            self._next_token += 1
            self._leases[self._next_token] = entries
            batches = tuple(
                Batch(entry.signal, payload, entry.items) for entry, payload in zip(entries, payloads, strict=True)
            )
            return Lease(batches, self._next_token)

    def ack(self, lease: Lease) -> None:
        with self._cond:
            entries = self._settle(lease)
            if not self._detached:
                try:
                    self._delete([entry.key for entry in entries])
                except self._store_errors as err:
                    # Forgetting the lease anyway keeps this process going; the rows it could not delete
                    # are sent again after a restart, which at-least-once delivery allows.
                    _log.error("sending queue: cannot remove %d delivered request(s): %s", len(entries), err)
            self._count -= len(entries)
            self._bytes -= sum(entry.size for entry in entries)
            self._items -= sum(entry.items for entry in entries)
            # Consumers waiting on a closed queue stop once nothing is left.
            self._cond.notify_all()

    def release(self, lease: Lease) -> None:
        with self._cond:
            self._put_back(self._settle(lease))
            self._cond.notify_all()

    def size(self) -> int:
        with self._cond:
            return self._count

    def pending_items(self) -> int:
        with self._cond:
            return self._items

    def accepting(self, size: int = 1) -> bool:
        with self._cond:
            return not self._closed and self._has_room(size)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._detached = True
            self._cond.notify_all()
            self._close_store()

    def bytes(self) -> int:
        with self._cond:
            return self._bytes

    # --- helpers ---------------------------------------------------------------------------------

    def _has_room(self, size: int) -> bool:
        if self._count >= self._capacity:
            return False
        return self._bytes == 0 or self._bytes + size <= self._max_bytes

    def _takeable(self) -> bool:
        return bool(self._pending) or (self._closed and not self._leases) or self._detached

    def _select(self, max_batches: int, max_bytes: int, max_items: int | None) -> tuple[_Entry, ...]:
        """The head and the requests right behind it of the same signal, within the limits."""
        head = self._pending[0]
        chosen = [head]
        size, items = head.size, head.items
        for entry in itertools.islice(self._pending, 1, None):
            if len(chosen) >= max_batches or entry.signal is not head.signal:
                break
            if size + entry.size > max_bytes or (max_items is not None and items + entry.items > max_items):
                break
            chosen.append(entry)
            size += entry.size
            items += entry.items
        return tuple(chosen)

    def _settle(self, lease: Lease) -> tuple[_Entry, ...]:
        entries = self._leases.pop(lease.token, None)
        if entries is None:
            raise ValueError(f"lease {lease.token} was already acked or released, or is not from this queue")
        return entries

    def _put_back(self, entries: tuple[_Entry, ...]) -> None:
        # Keys grow with arrival, so sorting by key restores FIFO order even when several leases come
        # back out of order; the common case (the lease is older than everything queued) is cheap.
        if not self._pending or entries[-1].key < self._pending[0].key:
            self._pending.extendleft(reversed(entries))
        else:
            self._pending = deque(sorted([*entries, *self._pending], key=lambda entry: entry.key))


class MemoryQueue(_QueueBase):
    """An in-memory queue: fast, and lost with the process."""

    def __init__(self, settings: QueueSettings) -> None:
        super().__init__(settings, settings.queue_size_bytes)
        self._payloads: dict[int, builtins.bytes] = {}
        self._sequence = 0

    def _store(self, batch: Batch) -> int:
        self._sequence += 1
        self._payloads[self._sequence] = batch.payload
        return self._sequence

    def _load(self, keys: Sequence[int]) -> list[builtins.bytes]:
        return [self._payloads[key] for key in keys]

    def _delete(self, keys: Sequence[int]) -> None:
        for key in keys:
            del self._payloads[key]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    signal TEXT NOT NULL,
    items INT NOT NULL,
    payload BLOB NOT NULL
)
"""


class SqliteQueue(_QueueBase):
    """A queue persisted in ``<directory>/queue.sqlite3``: a request stays on disk until it is acked.

    When ``max_disk_bytes`` of payload are stored, ``offer`` returns False like a full in-memory queue,
    so clients get UNAVAILABLE and retry: nothing is dropped. A disk error on write does the same.
    Rows are ordered by an AUTOINCREMENT id, which SQLite never reuses, so FIFO order holds across
    restarts. Opening a file that is not a queue raises ``OSError`` naming it.
    """

    def __init__(self, settings: QueueSettings, *, announce: bool = True) -> None:
        """``announce`` False: what a previous run left is not logged (the caller says what it does with it)."""
        import sqlite3

        super().__init__(settings, settings.max_disk_bytes)
        self._store_errors = (sqlite3.Error,)
        if settings.directory is None:
            raise ValueError("directory: a persistent queue needs a directory")
        self._path = os.path.join(settings.directory, QUEUE_FILE)
        try:
            os.makedirs(settings.directory, exist_ok=True)
            self._db = self._open(self._path)
        except (OSError, sqlite3.Error) as err:
            raise OSError(f"{self._path}: cannot open the sending queue: {err}") from err
        try:
            self._recover(announce)
        except (sqlite3.Error, ValueError) as err:
            self._db.close()
            raise OSError(f"{self._path}: cannot open the sending queue: {err}") from err

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        import sqlite3

        # One connection serves every thread; self._cond serializes its use. isolation_level=None:
        # each statement commits on its own, and multi-row changes use explicit transactions.
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit is in the WAL file (the OS page cache) when offer() returns,
            # which survives the process being killed or restarted, the guarantee the receiver's OK
            # promises. Only a kernel crash or power loss can lose the last commits (the database stays
            # consistent), the same trade as the Collector's file_storage without fsync. FULL would
            # fsync on every offer and serialize all receivers behind disk latency.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _recover(self, announce: bool) -> None:
        """Rows a previous process left (queued or leased but never acked) are pending again."""
        rows = self._db.execute("SELECT id, signal, items, length(payload) FROM queue ORDER BY id").fetchall()
        for key, signal, items, size in rows:
            self._pending.append(_Entry(key, Signal(signal), items, size))
            self._count += 1
            self._bytes += size
            self._items += items
        if rows and announce:
            _log.info(
                "sending queue: %d request(s) with %d item(s) left by a previous run are pending again in %s",
                self._count,
                self._items,
                self._path,
            )

    @property
    def path(self) -> str | None:
        return self._path

    def _close_store(self) -> None:
        self._db.close()

    def _store(self, batch: Batch) -> int:
        cursor = self._db.execute(
            "INSERT INTO queue (signal, items, payload) VALUES (?, ?, ?)",
            (str(batch.signal), batch.items, batch.payload),
        )
        assert cursor.lastrowid is not None  # always set after an INSERT into a rowid table
        return cursor.lastrowid

    def _load(self, keys: Sequence[int]) -> list[builtins.bytes]:
        rows: dict[int, builtins.bytes] = {}
        for chunk, marks in _chunks(keys):
            rows.update(self._db.execute(f"SELECT id, payload FROM queue WHERE id IN ({marks})", chunk).fetchall())
        return [rows[key] for key in keys]

    def _delete(self, keys: Sequence[int]) -> None:
        self._db.execute("BEGIN")  # one transaction, however many chunks
        try:
            for chunk, marks in _chunks(keys):
                self._db.execute(f"DELETE FROM queue WHERE id IN ({marks})", chunk)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


# SQLite limits the parameters of one statement (32766 since 3.32, 999 before).
_CHUNK = 500


def _chunks(keys: Sequence[int]) -> Iterator[tuple[Sequence[int], str]]:
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        yield chunk, ",".join("?" * len(chunk))


def open_queue(settings: QueueSettings) -> SendingQueue:
    """A ``SqliteQueue`` when ``settings.directory`` is set, else a ``MemoryQueue``."""
    if settings.directory is not None:
        return SqliteQueue(settings)
    return MemoryQueue(settings)


__all__ = ["QUEUE_FILE", "Lease", "MemoryQueue", "QueueSettings", "SendingQueue", "SqliteQueue", "open_queue"]
