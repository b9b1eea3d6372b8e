"""The durable take-away queues' common part (print and mail): database, wake-up, depth.

A queue database that cannot be read (a torn SD card write, a file from an incompatible
version) is moved aside and started afresh, so the kiosk keeps printing and mailing; the
old file stays next to it for store IT. :class:`DurableQueue` holds what both queues do the
same way: one SQLite connection behind a lock, gap-free job order, waking the supervised
task from any thread, and the queue depth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

_LOGGER = logging.getLogger(__name__)

# Waiting this long for the lock beats failing a shopper's request while a write commits.
BUSY_TIMEOUT_S: Final = 5.0
# Finished jobs (printed, sent, failed...) are kept this long so the kiosk can show their
# outcome, then deleted: a kiosk that runs for months keeps a small database.
KEEP_DONE_S: Final = 24 * 3600


def _open(path: Path, schema: str, secure_delete: bool) -> sqlite3.Connection:
    db = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
    )
    try:
        if secure_delete:
            # Deleted and overwritten content is zeroed: an erased address leaves no trace.
            db.execute("PRAGMA secure_delete=ON")
        db.execute("PRAGMA journal_mode=WAL")
        # A job the shopper was promised (202) must survive a power cut right after.
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def open_queue_db(path: Path, schema: str, *, secure_delete: bool = False) -> sqlite3.Connection:
    """Open (or create) a queue database; an unreadable one is moved aside and recreated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _open(path, schema, secure_delete)
    except sqlite3.DatabaseError as exc:
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        _LOGGER.error("queue database %s unreadable (%s); moved to %s", path.name, exc, aside.name)
        path.replace(aside)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + suffix).unlink()
        return _open(path, schema, secure_delete)


@dataclass(frozen=True)
class JobView:
    """A queued job as the kiosk sees it (never the e-mail address)."""

    #: "print" or "email": what /api/takeaway/jobs/<id> calls the job.
    job_type: ClassVar[str]

    id: str
    state: str
    attempts: int
    problem: str
    created: float
    updated: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view for /api/takeaway/jobs/<id>."""
        return {
            "id": self.id,
            "type": self.job_type,
            "state": self.state,
            "attempts": self.attempts,
            "problem": self.problem,
            "created": round(self.created, 3),
            "updated": round(self.updated, 3),
        }


class DurableQueue:
    """A job table in SQLite, written from any thread and drained by one supervised task."""

    #: The job table; each has ``seq`` (submission order) and ``state`` columns.
    table: ClassVar[str]

    def __init__(self, path: Path, schema: str, *, secure_delete: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = open_queue_db(path, schema, secure_delete=secure_delete)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _insert(self, columns: Sequence[str], values: Sequence[Any]) -> None:
        """Append a job after the last one (``seq``), durable when this returns."""
        names = ", ".join(("seq", *columns))
        marks = ", ".join("?" * len(columns))
        with self._lock:
            self._db.execute(
                f"INSERT INTO {self.table}({names})"  # noqa: S608 - names are our constants
                f" SELECT COALESCE(MAX(seq), 0) + 1, {marks} FROM {self.table}",
                tuple(values),
            )
        self._poke()

    def _purge_done_locked(self) -> None:
        """Delete jobs finished more than KEEP_DONE_S ago; call with ``_lock`` held."""
        self._db.execute(
            f"DELETE FROM {self.table}"  # noqa: S608 - the table name is our constant
            " WHERE state NOT IN ('queued', 'printing') AND updated < ?",
            (time.time() - KEEP_DONE_S,),
        )

    def _poke(self) -> None:
        """Wake the draining task (from any thread) because a job was added."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    def _attach(self) -> asyncio.AbstractEventLoop:
        """Called by ``run``: bind the wake-up to the running loop and return the loop."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        return self._loop

    async def _sleep(self, timeout: float | None) -> None:
        """Wait until a job is added or ``timeout`` seconds pass (None: only a new job)."""
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def depth(self) -> int:
        """Jobs waiting (state queued)."""
        with self._lock:
            count: int = self._db.execute(
                f"SELECT COUNT(*) FROM {self.table} WHERE state = 'queued'"  # noqa: S608
            ).fetchone()[0]
        return count

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
