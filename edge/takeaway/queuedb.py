"""Opening a take-away queue database (print or mail): durable settings, and never fatal.

A queue database that cannot be read (a torn SD card write, a file from an incompatible
version) is moved aside and started afresh, so the kiosk keeps printing and mailing; the
old file stays next to it for store IT.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from pathlib import Path
from typing import Final

_LOGGER = logging.getLogger(__name__)

# Waiting this long for the lock beats failing a shopper's request while a write commits.
BUSY_TIMEOUT_S: Final = 5.0


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
