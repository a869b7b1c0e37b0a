"""Hot reload of the contract: on file change (polled) and on demand (SIGHUP).

Polling ``os.stat`` of the contract and its includes, following symlinks, catches every way a file
changes: an editor's rename-over, and Kubernetes' ConfigMap update, which swaps the ``..data``
symlink to a new directory (new inode) and never modifies a file in place, so inotify on the
file itself would miss it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from otel_contract.contract import ContractError
from otel_contract.contract.compiled import CompiledContract
from otel_contract.loading import load_contract

_log = logging.getLogger("otel_contract.reload")

_Fingerprint = tuple[tuple[str, int, int, int, int], ...]


def _fingerprint(paths: list[Path]) -> _Fingerprint:
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            stamps.append((str(path), -1, -1, -1, -1))
            continue
        stamps.append((str(path), stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


class ContractWatcher:
    """Loads the contract again when its files change or ``request()`` is called.

    ``on_loaded`` gets the new compiled contract; ``on_refused`` gets the error of an invalid one,
    and the contract in force stays in force.
    """

    def __init__(
        self,
        path: str,
        current: CompiledContract,
        *,
        interval: float,
        watch: bool,
        allow_include_outside: bool = False,
        on_loaded: Callable[[CompiledContract], None],
        on_refused: Callable[[ContractError], None],
    ) -> None:
        self._path = Path(path)
        self._interval = interval
        self._watch = watch
        self._allow_include_outside = allow_include_outside
        self._on_loaded = on_loaded
        self._on_refused = on_refused
        self._files = self._files_of(current)
        self._seen = _fingerprint(self._files)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._forced = False
        self._thread = threading.Thread(target=self._run, name="contract-reload", daemon=True)

    def _files_of(self, contract: CompiledContract) -> list[Path]:
        return [self._path, *(Path(include) for include in contract.contract.includes)]

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        """Reload now, changed or not (SIGHUP). Safe to call from a signal handler."""
        self._forced = True
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._interval if self._watch else None)
            self._wake.clear()
            if self._stopped.is_set():
                return
            fingerprint = _fingerprint(self._files)
            if fingerprint == self._seen and not self._forced:
                continue
            self._forced = False
            self._seen = fingerprint
            self.reload_now()

    def reload_now(self) -> bool:
        try:
            contract = load_contract(self._path, allow_include_outside=self._allow_include_outside)
        except ContractError as error:
            _log.error(
                "contract reload refused, the previous contract stays in force: %s",
                "; ".join(f"{f.source}: {f.message}" if f.source else f.message for f in error.findings[:5]) or error,
            )
            self._on_refused(error)
            return False
        except Exception:  # a reload must never take the sidecar down
            _log.exception("contract reload failed, the previous contract stays in force")
            self._on_refused(ContractError([]))
            return False
        self._files = self._files_of(contract)
        self._seen = _fingerprint(self._files)
        self._on_loaded(contract)
        return True
