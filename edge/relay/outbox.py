"""The durable outbox: every relayed event is on disk before it counts as accepted.

Events arrive from the bus (any thread, never blocking) and a writer thread commits them in
batches to SQLite (WAL, ``synchronous=FULL``), stamping each with the device's gap-free
sequence inside the same transaction that persists the counter. The MQTT relay reads rows in
sequence order and deletes one only after the broker acknowledged it. The queue is bounded in
rows and bytes; when full it evicts the lowest priority, oldest first (telemetry, then
presence, then shopper events, system events last) and reports what it evicted with a
``kiosk.relay.dropped`` event. Rows of event types with a TTL are dropped once stale.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

from edge.events import EVENT_TYPES, Event, envelope, new_event, rfc3339, to_json

_LOGGER = logging.getLogger(__name__)

# File name of the outbox database inside the configured data directory.
DB_NAME: Final = "outbox.sqlite3"
# Schema version in PRAGMA user_version; bump with a migration when the tables change.
SCHEMA_VERSION: Final = 1
# The first sequence a fresh outbox hands out (central sees 1, 2, 3, ...).
FIRST_SEQUENCE: Final = 1
# Most events one transaction commits: large enough to amortise the fsync, small enough
# that one commit stays in the low milliseconds on an SD card.
MAX_BATCH: Final = 2000
# Events waiting for the writer beyond this are refused (disk stuck): RAM stays bounded.
MAX_PENDING: Final = 200_000
# At most one kiosk.relay.dropped event per this many seconds: eviction under a flood must
# not itself flood the outbox.
DROP_REPORT_INTERVAL_S: Final = 1.0
# How often stale (TTL-expired) rows are swept while the broker is unreachable.
EXPIRY_SWEEP_S: Final = 30.0
# SQLite waits this long for the other connection's write lock before giving up.
BUSY_TIMEOUT_MS: Final = 10_000
# A failed commit (disk full, I/O error) is retried after this pause; events stay pending.
WRITE_RETRY_S: Final = 1.0
# SQLite's default limit of bound parameters per statement is 32766; stay far below it.
_CHUNK: Final = 500
# Last accepted events kept for store IT's admin page (type, time and sequence only).
RECENT_KEPT: Final = 100

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,      -- the device's gap-free sequence
    id TEXT NOT NULL,             -- CloudEvents id, stable across redelivery
    type TEXT NOT NULL,
    priority INTEGER NOT NULL,    -- edge.events.Priority: eviction order
    accepted REAL NOT NULL,       -- Unix time the outbox committed it
    expires REAL,                 -- Unix time it goes stale, NULL: never
    size INTEGER NOT NULL,        -- payload bytes, for the byte bound
    payload BLOB NOT NULL         -- the CloudEvents JSON exactly as published
);
CREATE INDEX IF NOT EXISTS events_evict ON events (priority, seq);
CREATE INDEX IF NOT EXISTS events_expires ON events (expires) WHERE expires IS NOT NULL;
"""


class OutboxClosed(RuntimeError):
    """The outbox was closed; nothing more can be accepted."""


class OutboxRow(NamedTuple):
    """One accepted event as stored: what the relay publishes (a tuple: built per row read,
    a frozen dataclass cost several times more)."""

    seq: int
    id: str
    type: str
    expires: float | None
    payload: bytes


@dataclass(frozen=True)
class OutboxStats:
    """Depth, bytes, oldest age and per-type counts of the queue."""

    depth: int
    bytes: int
    oldest_age_s: float | None
    per_type: dict[str, int]
    epoch: str
    next_sequence: int
    max_rows: int
    max_bytes: int
    dropped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view (for `kiosk-edge outbox --json`, /admin and the health report)."""
        return {
            "depth": self.depth,
            "bytes": self.bytes,
            "oldest_age_s": None if self.oldest_age_s is None else round(self.oldest_age_s, 3),
            "per_type": dict(sorted(self.per_type.items())),
            "epoch": self.epoch,
            "next_sequence": self.next_sequence,
            "max_rows": self.max_rows,
            "max_bytes": self.max_bytes,
            "dropped": dict(sorted(self.dropped.items())),
        }


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged ``(first, last)`` runs of consecutive sequences (duplicates allowed)."""
    ranges: list[tuple[int, int]] = []
    first = last = None
    for seq in sorted(set(seqs)):
        if last is not None and seq == last + 1:
            last = seq
            continue
        if first is not None and last is not None:
            ranges.append((first, last))
        first = last = seq
    if first is not None and last is not None:
        ranges.append((first, last))
    return ranges


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class Outbox:
    """A bounded, durable, ordered queue of CloudEvents waiting for the broker."""

    def __init__(
        self,
        path: Path,
        *,
        store_id: str,
        device_id: str,
        max_rows: int = 1_000_000,
        max_bytes: int = 512 * 1024 * 1024,
        commit_interval_ms: float = 5.0,
        emit: Callable[[Event], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.store_id = store_id
        self.device_id = device_id
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.commit_interval_s = commit_interval_ms / 1000.0
        # Where kiosk.relay.dropped goes: the bus in the daemon (which brings it back here).
        self._emit = emit or self.submit
        self._clock = clock
        self._lock = threading.Lock()  # totals, pending list, counters
        self._wlock = threading.Lock()  # the durable connection and the sequence counter
        self._rlock = threading.Lock()  # the light connection (fetch, acks, stats)
        self._cond = threading.Condition(self._lock)
        self._pending: list[Event] = []
        self._writer_waiting = False  # the writer sleeps in _cond.wait: submit must notify
        self._submitted = 0
        self._settled = 0  # committed or refused
        self._refused = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self.last_error = ""  # why the last commit failed; empty once commits work again
        self._listeners: list[Callable[[int], None]] = []
        self._recent: collections.deque[tuple[str, str, int]] = collections.deque(
            maxlen=RECENT_KEPT
        )
        self._drop_pending: dict[str, dict[str, int]] = {}  # reason -> type -> count
        self._drop_seq: list[int] = []  # [first, last] evicted sequence in the pending report
        self._drop_totals: dict[str, int] = {}
        self._last_drop_report = 0.0
        self._last_sweep = clock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._wconn, self._rconn = self._open()
        self.epoch, self._next_seq = self._load_meta()
        self._depth = 0
        self._bytes = 0
        self._per_type: dict[str, int] = {}
        self._reload_totals()

    def _reload_totals(self) -> None:
        """Recount depth, bytes and per-type counts from the database."""
        per_type: dict[str, int] = {}
        depth = size = 0
        for type_, count, total in self._rconn.execute(
            "SELECT type, COUNT(*), COALESCE(SUM(size), 0) FROM events GROUP BY type"
        ):
            per_type[type_] = count
            depth += count
            size += total
        with self._lock:
            self._per_type, self._depth, self._bytes = per_type, depth, size

    @classmethod
    def for_config(cls, config: Any, emit: Callable[[Event], None] | None = None) -> Outbox:
        """The outbox of a :class:`edge.config.Config` (in its data directory)."""
        return cls(
            config.device.data_dir / DB_NAME,
            store_id=config.device.store_id,
            device_id=config.device.device_id,
            max_rows=config.outbox.max_rows,
            max_bytes=config.outbox.max_bytes,
            commit_interval_ms=config.outbox.commit_interval_ms,
            emit=emit,
        )

    # ----------------------------------------------------------------- opening
    def _open(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        try:
            return self._open_once()
        except sqlite3.OperationalError:
            # Locked by another process, read-only, unopenable, an I/O error: the file may be
            # sound and hold accepted events. Never set it aside; the supervisor retries.
            raise
        except sqlite3.DatabaseError as exc:
            # A database SQLite cannot read would stop every event forever: keep the damaged
            # file for forensics and start a new one, whose new epoch tells central.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            _LOGGER.error("outbox %s is unreadable (%s); moved to %s", self.path, exc, aside)
            self.path.replace(aside)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(str(self.path) + suffix).unlink()
            return self._open_once()

    def _open_once(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        # FULL: a commit is on stable storage before the event counts as accepted.
        wconn = _connect(self.path, "FULL")
        try:
            wconn.executescript(_SCHEMA)
            wconn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError:
            wconn.close()
            raise
        # NORMAL for the reader/acknowledger: a delete lost in a power cut only means a
        # duplicate delivery (same event id), never a loss; it saves one fsync per ack batch.
        rconn = _connect(self.path, "NORMAL")
        return wconn, rconn

    def _load_meta(self) -> tuple[str, int]:
        with self._wlock:
            conn = self._wconn
            conn.execute("BEGIN IMMEDIATE")
            try:
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                if "epoch" not in meta:
                    meta["epoch"] = uuid.uuid4().hex
                    conn.execute("INSERT INTO meta VALUES ('epoch', ?)", (meta["epoch"],))
                if "next_seq" not in meta:
                    meta["next_seq"] = str(FIRST_SEQUENCE)
                    conn.execute("INSERT INTO meta VALUES ('next_seq', ?)", (meta["next_seq"],))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return meta["epoch"], int(meta["next_seq"])

    # --------------------------------------------------------------- accepting
    def add_listener(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(last_sequence)`` after each commit (any thread; keep it quick)."""
        self._listeners.append(callback)

    def start(self) -> None:
        """Start the writer thread that commits submitted events in batches (again if it died)."""
        if self._thread is None or (not self._thread.is_alive() and not self._closed):
            self._thread = threading.Thread(target=self._writer, name="outbox-writer", daemon=True)
            self._thread.start()

    def submit(self, event: Event) -> bool:
        """Queue an event for the next commit without blocking; False if it was refused."""
        with self._cond:
            if self._closed:
                return False
            if len(self._pending) >= MAX_PENDING:
                self._refused += 1
                if self._refused % 1000 == 1:
                    _LOGGER.error("outbox writer is stuck: refused %d events", self._refused)
                return False
            self._pending.append(event)
            self._submitted += 1
            if self._writer_waiting:  # notify() costs a lock probe per event otherwise
                self._cond.notify()
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is committed (or refused); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            while self._settled < target:
                left = deadline - time.monotonic()
                if left <= 0 or (self._thread is None and not self._closed):
                    return False
                self._cond.wait(left)
        return True

    def _writer(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._writer_waiting = True
                    try:
                        self._cond.wait(self._housekeeping_due_in())
                    finally:
                        self._writer_waiting = False
                    if not self._pending:
                        break
                closed = self._closed
                have = len(self._pending)
            if have and have < MAX_BATCH and self.commit_interval_s > 0 and not closed:
                # Let a burst gather so one fsync covers many events.
                time.sleep(self.commit_interval_s)
            with self._cond:
                batch = self._pending[:MAX_BATCH]
                del self._pending[: len(batch)]
            if batch:
                try:
                    self.accept(batch)
                except Exception as exc:  # disk full, I/O error: keep the events, retry
                    self.last_error = f"cannot write the outbox: {exc}"
                    _LOGGER.error(
                        "outbox commit failed (%s); retrying in %.0f s", exc, WRITE_RETRY_S
                    )
                    with self._cond:
                        self._pending[:0] = batch
                    if closed:
                        return
                    time.sleep(WRITE_RETRY_S)
                    continue
                self.last_error = ""
                with self._cond:
                    self._settled += len(batch)
                    self._cond.notify_all()
            self._housekeeping()
            if closed and not batch:
                with self._cond:
                    if not self._pending:
                        return

    def _housekeeping_due_in(self) -> float:
        now = self._clock()
        due = self._last_sweep + EXPIRY_SWEEP_S - now
        if self._drop_pending:
            due = min(due, self._last_drop_report + DROP_REPORT_INTERVAL_S - now)
        return max(0.01, due)

    def _housekeeping(self) -> None:
        now = self._clock()
        if now - self._last_sweep >= EXPIRY_SWEEP_S:
            self._last_sweep = now
            try:
                self.purge_expired()
            except sqlite3.Error as exc:
                _LOGGER.warning("outbox expiry sweep failed: %s", exc)
        self._report_drops()

    def accept(self, events: Sequence[Event]) -> list[int]:
        """Commit events now (synchronously) and return their sequences, in order.

        Events of unknown or local-only types, or whose data is not JSON, are skipped with
        a log line (they get no sequence, so the sequence stays gap-free).
        """
        if self._closed and threading.current_thread() is not self._thread:
            raise OutboxClosed("the outbox is closed")
        with self._wlock:
            now = self._clock()
            recorded = datetime.fromtimestamp(now, UTC)
            when = rfc3339(recorded)  # once per batch, not per event
            seq = self._next_seq
            rows: list[tuple[int, str, str, int, float, float | None, int, bytes]] = []
            for event in events:
                kind = EVENT_TYPES.get(event.type)
                if kind is None or not kind.relayed:
                    _LOGGER.warning("outbox skipped event of non-relayed type %r", event.type)
                    continue
                try:
                    payload = to_json(
                        envelope(
                            event,
                            store_id=self.store_id,
                            device_id=self.device_id,
                            sequence=seq,
                            recorded_time=when,
                            outbox_epoch=self.epoch,
                        )
                    )
                except (TypeError, ValueError) as exc:
                    _LOGGER.error("outbox skipped malformed %s event: %s", event.type, exc)
                    continue
                expires = None if kind.ttl_s is None else event.time.timestamp() + kind.ttl_s
                rows.append(
                    (
                        seq,
                        event.id,
                        event.type,
                        int(kind.priority),
                        now,
                        expires,
                        len(payload),
                        payload,
                    )
                )
                seq += 1
            if not rows:
                return []
            added: dict[str, int] = collections.Counter(r[2] for r in rows)
            added_bytes = sum(r[6] for r in rows)
            conn = self._wconn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (str(seq),))
                with self._lock:
                    depth = self._depth + len(rows)
                    size = self._bytes + added_bytes
                evicted = self._evict_locked(conn, depth, size)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._next_seq = seq
            with self._lock:
                self._depth += len(rows)
                self._bytes += added_bytes
                for type_, count in added.items():
                    self._per_type[type_] = self._per_type.get(type_, 0) + count
                self._forget_locked(evicted)
                self._note_drops_locked("full", evicted)
                self._recent.extend((r[2], when, r[0]) for r in rows[-RECENT_KEPT:])
        for listener in self._listeners:
            try:
                listener(seq - 1)
            except Exception:
                _LOGGER.exception("outbox listener failed")
        if evicted:
            self._report_drops()
        return [r[0] for r in rows]

    def _evict_locked(
        self, conn: sqlite3.Connection, depth: int, size: int
    ) -> list[tuple[int, str, int]]:
        """Delete lowest-priority, oldest rows until the bounds hold; return what went."""
        evicted: list[tuple[int, str, int]] = []
        while depth > self.max_rows or size > self.max_bytes:
            # Enough candidates for the row bound in one query; the byte bound takes a few.
            limit = max(depth - self.max_rows, 256)
            victims = conn.execute(
                "SELECT seq, type, size FROM events ORDER BY priority, seq LIMIT ?", (limit,)
            ).fetchall()
            if not victims:
                break
            chosen: list[tuple[int, str, int]] = []
            for victim in victims:
                if depth <= self.max_rows and size <= self.max_bytes:
                    break
                chosen.append(victim)
                depth -= 1
                size -= victim[2]
            conn.executemany("DELETE FROM events WHERE seq = ?", [(v[0],) for v in chosen])
            evicted.extend(chosen)
        return evicted

    def _forget_locked(self, removed: Iterable[tuple[int, str, int]]) -> None:
        for _seq, type_, size in removed:
            self._subtract_locked(type_, 1, size)

    def _subtract_locked(self, type_: str, count: int, size: int) -> None:
        """Take ``count`` rows of ``size`` bytes in all off the in-memory totals."""
        self._depth -= count
        self._bytes -= size
        left = self._per_type.get(type_, 0) - count
        if left > 0:
            self._per_type[type_] = left
        else:
            self._per_type.pop(type_, None)

    def _note_drops_locked(self, reason: str, removed: Sequence[tuple[int, str, int]]) -> None:
        if not removed:
            return
        by_type = self._drop_pending.setdefault(reason, {})
        for seq, type_, _size in removed:
            by_type[type_] = by_type.get(type_, 0) + 1
            self._drop_totals[type_] = self._drop_totals.get(type_, 0) + 1
            if not self._drop_seq:
                self._drop_seq = [seq, seq]
            else:
                self._drop_seq = [min(self._drop_seq[0], seq), max(self._drop_seq[1], seq)]
        _LOGGER.warning("outbox dropped %d events (%s)", len(removed), reason)

    def _report_drops(self) -> None:
        """Emit one kiosk.relay.dropped summarising evictions since the last report."""
        with self._lock:
            now = self._clock()
            if not self._drop_pending or now - self._last_drop_report < DROP_REPORT_INTERVAL_S:
                return
            pending, self._drop_pending = self._drop_pending, {}
            first, last = self._drop_seq
            self._drop_seq = []
            self._last_drop_report = now
        for reason, by_type in sorted(pending.items()):
            data = {
                "reason": reason,
                "count": sum(by_type.values()),
                "by_type": dict(sorted(by_type.items())),
                "first_sequence": first,
                "last_sequence": last,
                "max_rows": self.max_rows,
                "max_bytes": self.max_bytes,
            }
            try:
                self._emit(new_event("kiosk.relay.dropped", data))
            except Exception:
                _LOGGER.exception("could not report dropped events")

    # ----------------------------------------------------------------- draining
    def fetch(self, after_seq: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` rows with a sequence above ``after_seq``, in order; stale rows are
        dropped (and reported) instead of returned."""
        now = self._clock()
        with self._rlock:
            raw = self._rconn.execute(
                "SELECT seq, id, type, expires, payload FROM events WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        rows = list(map(OutboxRow._make, raw))
        stale = [r.seq for r in rows if r.expires is not None and r.expires <= now]
        if stale:
            self._delete(stale, reason="expired")
            gone = set(stale)
            rows = [r for r in rows if r.seq not in gone]
        return rows

    def first_sequence(self) -> int | None:
        """The lowest sequence still queued, or None when empty."""
        with self._rlock:
            row = self._rconn.execute("SELECT MIN(seq) FROM events").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def delete(self, seqs: Sequence[int]) -> int:
        """Remove acknowledged rows; returns how many were still there.

        Acknowledgements come mostly in sequence order, so the rows go as a few contiguous
        ranges in one transaction: one DELETE and one grouped count per range instead of a
        row returned to Python per event.
        """
        if not seqs:
            return 0
        ranges = seq_ranges(seqs)
        removed = 0
        gone: dict[str, list[int]] = {}  # type -> [count, bytes]
        with self._rlock:
            conn = self._rconn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for first, last in ranges:
                    for type_, count, size in conn.execute(
                        "SELECT type, COUNT(*), SUM(size) FROM events "
                        "WHERE seq BETWEEN ? AND ? GROUP BY type",
                        (first, last),
                    ):
                        totals = gone.setdefault(type_, [0, 0])
                        totals[0] += count
                        totals[1] += size
                    conn.execute("DELETE FROM events WHERE seq BETWEEN ? AND ?", (first, last))
                # As in _delete: totals change while SQLite still holds the write lock.
                with self._lock:
                    for type_, (count, size) in gone.items():
                        removed += count
                        self._subtract_locked(type_, count, size)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                if gone:
                    self._reload_totals()
                raise
        return removed

    def _delete(self, seqs: Sequence[int], reason: str | None) -> int:
        if not seqs:
            return 0
        removed: list[tuple[int, str, int]] = []
        with self._rlock:
            conn = self._rconn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for chunk in _chunks(list(seqs)):
                    marks = ",".join("?" * len(chunk))
                    removed.extend(
                        conn.execute(
                            f"DELETE FROM events WHERE seq IN ({marks}) "  # noqa: S608 (marks only)
                            "RETURNING seq, type, size",
                            tuple(chunk),
                        ).fetchall()
                    )
                # Totals change before COMMIT, while SQLite still holds the write lock: the
                # writer reads them only after taking that lock, so eviction sees true depth.
                with self._lock:
                    self._forget_locked(removed)
                    if reason:
                        self._note_drops_locked(reason, removed)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                if removed:
                    self._reload_totals()
                raise
        if reason:
            self._report_drops()
        return len(removed)

    def purge_expired(self) -> int:
        """Drop every row whose TTL has passed; returns how many."""
        now = self._clock()
        with self._rlock:
            stale = [
                r[0]
                for r in self._rconn.execute(
                    "SELECT seq FROM events WHERE expires IS NOT NULL AND expires <= ?", (now,)
                )
            ]
        return self._delete(stale, reason="expired") if stale else 0

    # ---------------------------------------------------------------- reporting
    def stats(self) -> OutboxStats:
        """Depth, bytes, oldest age and per-type counts (cheap: kept in memory)."""
        with self._rlock:
            row = self._rconn.execute("SELECT accepted FROM events ORDER BY seq LIMIT 1").fetchone()
        with self._lock:
            return OutboxStats(
                depth=self._depth,
                bytes=self._bytes,
                oldest_age_s=None if row is None else max(0.0, self._clock() - row[0]),
                per_type=dict(self._per_type),
                epoch=self.epoch,
                next_sequence=self._next_seq,
                max_rows=self.max_rows,
                max_bytes=self.max_bytes,
                dropped=dict(self._drop_totals),
            )

    def recent(self, n: int = 20) -> list[dict[str, Any]]:
        """The last ``n`` accepted events, newest first: type, time and sequence, no data."""
        with self._lock:
            items = list(self._recent)[-n:] if n > 0 else []
        return [{"type": t, "recorded": when, "sequence": s} for t, when, s in reversed(items)]

    @property
    def writer_alive(self) -> bool:
        """True while the writer thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def next_sequence(self) -> int:
        """The sequence the next accepted event will get."""
        return self._next_seq

    # ------------------------------------------------------------------ closing
    def close(self, timeout: float = 5.0) -> None:
        """Commit what is pending (bounded by ``timeout``), stop the writer, close the files."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                _LOGGER.error("outbox writer did not finish within %.1f s", timeout)
                return
        with self._wlock, self._rlock:
            self._wconn.close()
            self._rconn.close()


def read_stats(path: Path, clock: Callable[[], float] = time.time) -> OutboxStats | None:
    """Stats of an outbox database on disk (for the CLI while the daemon runs); None if absent."""
    if not path.exists():
        return None
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        per_type = dict(conn.execute("SELECT type, COUNT(*) FROM events GROUP BY type"))
        total = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events").fetchone()
        oldest = conn.execute("SELECT accepted FROM events ORDER BY seq LIMIT 1").fetchone()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()
    return OutboxStats(
        depth=int(total[0]),
        bytes=int(total[1]),
        oldest_age_s=None if oldest is None else max(0.0, clock() - oldest[0]),
        per_type=per_type,
        epoch=meta.get("epoch", ""),
        next_sequence=int(meta.get("next_seq", FIRST_SEQUENCE)),
        max_rows=0,
        max_bytes=0,
    )
