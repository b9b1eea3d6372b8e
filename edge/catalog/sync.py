"""Central's retained catalog messages applied to the local catalog, in batches.

Central publishes retained state under ``kiosk-edge/v1/{store}/catalog/{products|offers|
reviews|shoppers}/{key}``; an empty retained message deletes the record. Turning a message
into a :class:`CatalogChange` is pure (:func:`change_from_message`); :class:`CatalogSync`
collects changes from the MQTT thread and applies them on its own thread through the narrow
:class:`~edge.catalog.CatalogSink` interface, many per transaction, so a 50,000-record
resync does not become 50,000 commits. Applying is idempotent: within a batch only the last
change of a record counts, and the store upserts.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from edge.catalog import CatalogSink
from edge.catalog.models import CatalogChange
from edge.relay.topics import Topics

_LOGGER = logging.getLogger(__name__)

# Most changes applied in one transaction: big enough to amortise the commit, small enough
# that the kiosk's readers never wait long for the write lock.
BATCH_SIZE: Final = 2000
# A lone change waits at most this long for others to share its transaction.
LINGER_S: Final = 0.05
# A retained record larger than this is refused: product pages are a few kilobytes.
MAX_PAYLOAD_BYTES: Final = 1024 * 1024
# Rejection messages kept for store IT (the newest).
ERRORS_KEPT: Final = 50
# While no catalog store exists yet (start-up), changes wait; at most this many.
MAX_WAITING: Final = 500_000
# A batch the store could not take (database locked by an import, disk full for a moment) is
# tried again this many times, the wait doubling from APPLY_RETRY_S, before it is counted as
# rejected (its records then come back on the next resync).
APPLY_RETRIES: Final = 5
APPLY_RETRY_S: Final = 0.5


class CatalogMessageError(ValueError):
    """A retained catalog message cannot be applied; the message says why and what fits."""


def change_from_message(topics: Topics, topic: str, payload: bytes) -> CatalogChange:
    """The change a retained catalog message asks for (pure; raises CatalogMessageError)."""
    found = topics.catalog_key(topic)
    if found is None:
        raise CatalogMessageError(
            f"{topic}: not a catalog topic; expected {topics.catalog_filter[:-1]}"
            "{products|offers|reviews|shoppers}/{key}"
        )
    kind, key = found
    if not payload:
        return CatalogChange(kind=kind, key=key, payload=None)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CatalogMessageError(f"{topic}: payload over {MAX_PAYLOAD_BYTES} bytes")
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CatalogMessageError(f"{topic}: payload is not JSON ({exc})") from None
    if kind == "reviews":
        # Central sends the product's reviews as a list; the store takes {"reviews": [...]}.
        if isinstance(body, dict) and isinstance(body.get("reviews"), list):
            return CatalogChange(kind=kind, key=key, payload=body)
        if not isinstance(body, list):
            raise CatalogMessageError(f"{topic}: expected a JSON list of review objects")
        return CatalogChange(kind=kind, key=key, payload={"reviews": body})
    if not isinstance(body, dict):
        raise CatalogMessageError(f"{topic}: expected a JSON object, got {type(body).__name__}")
    return CatalogChange(kind=kind, key=key, payload=body)


@dataclass
class SyncStats:
    """Counters of the catalog sync."""

    received: int = 0
    applied: int = 0
    rejected: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        """JSON-able view."""
        return {
            "received": self.received,
            "applied": self.applied,
            "rejected": self.rejected,
            "batches": self.batches,
        }


class CatalogSync:
    """Collects retained catalog messages (any thread) and applies them in batches."""

    def __init__(
        self,
        topics: Topics,
        sink: Callable[[], CatalogSink | None],
        *,
        batch_size: int = BATCH_SIZE,
        linger_s: float = LINGER_S,
        retry_s: float = APPLY_RETRY_S,
    ) -> None:
        self.topics = topics
        self._sink = sink
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.retry_s = retry_s
        self._failures = 0  # consecutive batches the store refused
        self.stats = SyncStats()
        self.errors: list[str] = []
        self._pending: dict[tuple[str, str], CatalogChange] = {}
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the applying thread."""
        if self._thread is None or not self._thread.is_alive():
            self._closed = False
            self._thread = threading.Thread(target=self._run, name="catalog-sync", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Apply what is pending (bounded by ``timeout``) and end the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def offer(
        self, topic: str, payload: bytes, _properties: Any = None, _retain: bool = True
    ) -> None:
        """Queue one message (matches the relay's handler signature); never raises."""
        self.stats.received += 1
        try:
            change = change_from_message(self.topics, topic, payload)
        except CatalogMessageError as exc:
            self._reject(str(exc))
            return
        with self._cond:
            if len(self._pending) >= MAX_WAITING:
                self._reject(f"{topic}: too many changes waiting for the catalog store")
                return
            # The newest state of a record wins; older pending state is superseded.
            self._pending.pop((change.kind, change.key), None)
            self._pending[(change.kind, change.key)] = change
            self._cond.notify()

    def _reject(self, message: str) -> None:
        self.stats.rejected += 1
        _LOGGER.warning("catalog message rejected: %s", message)
        self.errors.append(message)
        del self.errors[:-ERRORS_KEPT]

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending or being applied (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending and self._closed:
                    return
            if len(self._pending) < self.batch_size and not self._closed:
                time.sleep(self.linger_s)
            sink = self._sink()
            if sink is None:
                # No catalog store yet: keep the changes until it appears.
                if self._closed:
                    return
                time.sleep(0.2)
                continue
            with self._cond:
                # islice: a resync can leave 500k waiting; copying every key per batch
                # made taking a batch quadratic in the backlog (under the lock offer() needs).
                keys = list(itertools.islice(self._pending, self.batch_size))
                batch = [self._pending.pop(k) for k in keys]
                self._busy = True
            last_try = self._failures >= APPLY_RETRIES or self._closed
            done = False
            try:
                done = self._apply(sink, batch, last_try=last_try)
            finally:
                with self._cond:
                    if not done:
                        # Put the batch back; state that arrived meanwhile is newer and wins.
                        for change in batch:
                            self._pending.setdefault((change.kind, change.key), change)
                    self._busy = False
                    self._cond.notify_all()
            if done:
                self._failures = 0
                continue
            delay = self.retry_s * 2**self._failures
            self._failures += 1
            with self._cond:
                if not self._closed:
                    self._cond.wait(delay)

    def _apply(self, sink: CatalogSink, batch: list[CatalogChange], *, last_try: bool) -> bool:
        """Apply one batch; False when the store failed and the batch should be tried again."""
        try:
            problems = sink.apply_changes(batch)
        except Exception as exc:
            if not last_try:
                _LOGGER.warning(
                    "catalog batch of %d changes failed (%s: %s); trying again",
                    len(batch),
                    type(exc).__name__,
                    exc,
                )
                return False
            # A broken store must not kill the sync: the records come again on the next
            # resync (sync-catalog command or reconnect).
            _LOGGER.exception("catalog batch of %d changes failed", len(batch))
            self.stats.rejected += len(batch)
            self.errors.append(f"batch of {len(batch)} failed: {type(exc).__name__}: {exc}")
            del self.errors[:-ERRORS_KEPT]
            return True
        self.stats.batches += 1
        self.stats.applied += len(batch) - len(problems)
        for problem in problems:
            self._reject(problem)
        return True
