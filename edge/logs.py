"""Logging: JSON lines to the journal under systemd, readable text on a terminal."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any, Final

# Fields of a LogRecord that are not user "extra" data.
_STANDARD: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

# Personal data that must never reach a log line, whatever a developer passes in. Loyalty
# cards use GS1's in-store prefixes 20-29 (product EANs never do), so 13 digits starting
# with 2 are a card; 14-19 digit runs are payment or account numbers.
_PERSONAL_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"(?i)(?<![0-9a-f:])[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}(?![0-9a-f:])"), "<mac>"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"(?<!\d)2\d{12}(?!\d)"), "<card>"),
    (re.compile(r"(?<!\d)\d{14,19}(?!\d)"), "<number>"),
)
# Lines kept in memory for /admin's support bundle: about an hour of a busy kiosk at INFO.
RING_CAPACITY: Final = 2000


# Cheap first look: text without ':'/'-', '@' or 13 digits in a row cannot hold any of them.
_MAYBE_PERSONAL: Final = re.compile(r"[:@-]|\d{13}")
# Set on a record once scrubbed, so the second handler does not scrub it again.
_SCRUBBED: Final = "_kiosk_scrubbed"


def scrub(text: str) -> str:
    """Replace MAC addresses, e-mail addresses and card numbers with placeholders."""
    if not _MAYBE_PERSONAL.search(text):
        return text
    for pattern, placeholder in _PERSONAL_PATTERNS:
        text = pattern.sub(placeholder, text)
    return text


class PersonalDataFilter(logging.Filter):
    """Scrubs personal data from the message and string extras before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        if getattr(record, _SCRUBBED, False):
            return True
        setattr(record, _SCRUBBED, True)
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD or key.startswith("_"):
                continue
            if isinstance(value, str):
                record.__dict__[key] = scrub(value)
            elif not isinstance(value, int | float | bool | None):
                record.__dict__[key] = scrub(repr(value))  # a dict or list may hold anything
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


class RingBufferHandler(logging.Handler):
    """Keeps the last records (as JSON-able dicts) in memory for the support bundle."""

    def __init__(self, capacity: int = RING_CAPACITY) -> None:
        super().__init__()
        self._records: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._ring_lock = threading.Lock()
        self.addFilter(PersonalDataFilter())

    def emit(self, record: logging.LogRecord) -> None:
        """Store one record."""
        try:
            entry = record_fields(record)
        except Exception:  # a broken record must not break logging
            self.handleError(record)
            return
        with self._ring_lock:
            self._records.append(entry)

    def records(self, n: int | None = None) -> list[dict[str, Any]]:
        """The last ``n`` records (all when None), oldest first."""
        with self._ring_lock:
            items = list(self._records)
        return items if n is None else items[-n:] if n > 0 else []

    def clear(self) -> None:
        """Forget every stored record."""
        with self._ring_lock:
            self._records.clear()


# One buffer per process, kept across setup_logging calls so a reconfiguration keeps history.
RING: Final = RingBufferHandler()


def recent_logs(n: int | None = None) -> list[dict[str, Any]]:
    """The last log records of this process, personal data already scrubbed."""
    return RING.records(n)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """A record as JSON-able fields: time, level, logger, message, extras, exception."""
    out: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            out[key] = value if isinstance(value, str | int | float | bool) else repr(value)
    if record.exc_text:  # already formatted (and scrubbed) by PersonalDataFilter
        out["exception"] = record.exc_text
    elif record.exc_info:
        out["exception"] = logging.Formatter().formatException(record.exc_info)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as one JSON line."""
        return json.dumps(record_fields(record), ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Configure the root logger once for the daemon or a command."""
    use_json = fmt == "json" or (fmt == "auto" and bool(os.environ.get("JOURNAL_STREAM")))
    handler = logging.StreamHandler(sys.stderr)
    if use_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    handler.addFilter(PersonalDataFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.addHandler(RING)
    root.setLevel(level)
    # Third-party chatter that would drown the appliance's own lines.
    for noisy in ("waitress.queue", "bleak", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
