"""The receipt printer: an adapter per connection kind and a durable print queue.

Receipts are rendered to bytes when the shopper asks (:mod:`edge.takeaway.receipt`) and kept
in SQLite until the printer took them, so paper out, an open cover or an unplugged cable
only delays a receipt. Before each job the printer's real-time status is read (``DLE EOT``,
where the model answers) so a job is never sent into a printer that cannot print it; after
the job a second status read confirms the printer took the bytes. A job is marked
``printing`` (committed) before its first byte leaves, and a job found in that state after
a restart is not sent again: a missing receipt can be asked for again, a duplicate cannot
be taken back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from edge.config import Config, PrinterConfig
from edge.events import new_event
from edge.services import Services
from edge.takeaway.printer_url import (
    PrinterTarget,
    parse_printer_url,
)
from edge.takeaway.queuedb import DurableQueue, JobView

_LOGGER = logging.getLogger(__name__)

DB_NAME: Final = "print-queue.sqlite3"
COMPONENT: Final = "printer"
# Health reason the kiosk shows store staff; the detail follows after a colon.
ATTENTION: Final = "printer needs attention"
# Real-time status requests (ESC/POS DLE EOT n): 1 printer, 2 offline cause, 4 roll paper.
STATUS_PRINTER: Final = b"\x10\x04\x01"
STATUS_OFFLINE: Final = b"\x10\x04\x02"
STATUS_PAPER: Final = b"\x10\x04\x04"
# Status bytes always have bit 1 and bit 4 set and bits 0 and 7 clear: anything else is not
# a status answer (a printer that echoes, or line noise) and is treated as no answer.
_STATUS_FIXED_MASK: Final = 0x93
_STATUS_FIXED_BITS: Final = 0x12
# An idle printer is asked for its status this often (a TCP connect and three one-byte
# answers): often enough that a paper-out shows before the next shopper, cheap on the link.
IDLE_PROBE_S: Final = 60.0

JobState = Literal["queued", "printing", "printed", "interrupted", "failed"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    skus TEXT NOT NULL DEFAULT '',
    data BLOB,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    problem TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state_seq ON jobs(state, seq);
"""


def interpret_status(printer: int, offline: int | None, paper: int | None) -> str | None:
    """The problem the DLE EOT answers report ("paper out", "cover open", ...) or None."""
    if paper is not None and paper & 0x60:
        return "paper out"
    if offline is not None:
        if offline & 0x04:
            return "cover open"
        if offline & 0x20:
            return "paper out"
        if offline & 0x40:
            return "printer error"
    if printer & 0x08:
        return "offline"
    return None


class PrinterFault(Exception):
    """The printer cannot take a job now; ``sent`` tells whether job bytes already left."""

    def __init__(self, problem: str, detail: str = "", *, sent: bool = False) -> None:
        self.problem = problem
        self.detail = detail
        self.sent = sent
        super().__init__(f"{problem}: {detail}" if detail else problem)


class Connection(Protocol):
    """An open link to the printer: write bytes, read status bytes, close."""

    def write(self, data: bytes) -> None:
        """Send bytes to the printer."""
        ...

    def read(self) -> bytes:
        """Read what the printer sent back (b"" when it closed the link)."""
        ...

    def close(self) -> None:
        """Close the link."""
        ...


class _EscposConnection:
    """A python-escpos device (Network, Usb, Serial): its open, _raw, _read and close."""

    def __init__(self, device: Any) -> None:
        self.device = device
        device.open()

    def write(self, data: bytes) -> None:
        self.device._raw(data)

    def read(self) -> bytes:
        data: bytes = bytes(self.device._read())
        return data

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.device.close()


class _SerialConnection(_EscposConnection):
    """python-escpos's Serial, reading as soon as a status byte arrives.

    Its own ``_read`` asks pyserial for 16 bytes and so always waits the whole timeout for a
    one-byte status answer; one byte, then whatever else is waiting, answers at once.
    """

    def read(self) -> bytes:
        port = self.device.device
        data: bytes = port.read(1)
        waiting = int(port.in_waiting) if data else 0
        return data + port.read(waiting) if waiting else data


class _FileConnection:
    """A file or character device (/dev/usb/lp0, the demo's file): appended, then synced."""

    def __init__(self, path: str) -> None:
        self.file = open(path, "ab")  # noqa: SIM115 - closed in close()

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def read(self) -> bytes:
        return b""

    def close(self) -> None:
        try:
            self.file.flush()
            with contextlib.suppress(OSError):  # character devices may not sync
                os.fsync(self.file.fileno())
        finally:
            self.file.close()


def connect(target: PrinterTarget, timeout: float, profile: str = "default") -> Connection:
    """Open the printer link; raises PrinterFault("unreachable") when it is not there."""
    try:
        if target.kind == "file":
            return _FileConnection(target.path)
        if target.kind == "tcp":
            from escpos.printer import Network

            return _EscposConnection(
                Network(target.host, port=target.port, timeout=timeout, profile=profile)
            )
        if target.kind == "usb":
            from escpos.printer import Usb

            return _EscposConnection(
                Usb(target.vendor, target.product, timeout=int(timeout * 1000), profile=profile)
            )
        from escpos.printer import Serial

        return _SerialConnection(
            Serial(target.path, baudrate=target.baudrate, timeout=timeout, profile=profile)
        )
    except PrinterFault:
        raise
    except Exception as exc:
        # One line: python-escpos puts newlines inside its messages.
        detail = " ".join(f"{target.describe()}: {exc}".split())
        raise PrinterFault("unreachable", detail) from None


def _ask(conn: Connection, query: bytes) -> int:
    """Send one DLE EOT request and return the status byte; PrinterFault without an answer."""
    try:
        conn.write(query)
        answer = conn.read()
    except TimeoutError:
        raise PrinterFault("no status", "the printer did not answer the status request") from None
    except OSError as exc:
        # Connected, then dropped (reset, broken pipe): a printer rebooting or a print
        # server without its printer behind it.
        raise PrinterFault("offline", f"the connection was lost: {exc}") from None
    except Exception as exc:  # pyusb and pyserial raise their own error types
        raise PrinterFault("offline", f"{type(exc).__name__}: {exc}") from None
    if not answer:
        raise PrinterFault("offline", "the printer closed the connection")
    value = answer[-1]
    if value & _STATUS_FIXED_MASK != _STATUS_FIXED_BITS:
        raise PrinterFault("no status", f"unexpected status byte {value:#04x}")
    return value


def read_problem(conn: Connection) -> str | None:
    """Ask the printer for its status; the problem it reports, or None when ready."""
    printer = _ask(conn, STATUS_PRINTER)
    paper = _ask(conn, STATUS_PAPER)
    offline = _ask(conn, STATUS_OFFLINE) if printer & 0x08 else None
    return interpret_status(printer, offline, paper)


def deliver(
    target: PrinterTarget,
    data: bytes,
    *,
    timeout: float,
    status_query: bool,
    profile: str = "default",
    before_send: Callable[[], None] | None = None,
) -> None:
    """Send one job: connect, check status, call ``before_send``, write, confirm (blocking).

    Raises PrinterFault; ``sent`` is False when nothing of the job reached the printer.
    """
    conn = connect(target, timeout, profile)
    try:
        query = status_query and target.has_status
        if query:
            problem = read_problem(conn)
            if problem is not None:
                raise PrinterFault(problem)
        if before_send is not None:
            before_send()
        try:
            conn.write(data)
        except Exception as exc:
            raise PrinterFault("unreachable", f"while sending: {exc}", sent=True) from None
        if query:
            try:
                # Answered after the printer read everything before it: the job arrived.
                _ask(conn, STATUS_PRINTER)
            except PrinterFault as fault:
                raise PrinterFault(fault.problem, fault.detail, sent=True) from None
    finally:
        conn.close()


@dataclass(frozen=True)
class PrintJob(JobView):
    """A queued receipt as the kiosk sees it."""

    job_type = "print"

    state: JobState
    kind: str = "receipt"
    skus: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view for /api/takeaway/jobs/<id>, with the job's kind (receipt, test)."""
        return {**super().as_dict(), "kind": self.kind}


class PrintQueue(DurableQueue):
    """Durable queue of receipts in SQLite, drained to the printer by a supervised task."""

    name = COMPONENT
    table = "jobs"

    def __init__(
        self,
        config: PrinterConfig,
        data_dir: Path,
        *,
        services: Services | None = None,
        render_test_page: Callable[[], bytes] | None = None,
    ) -> None:
        self.config = config
        self.target = parse_printer_url(config.url)
        self.services = services
        self._render_test_page = render_test_page
        super().__init__(data_dir / DB_NAME, _SCHEMA)
        self.problem: str | None = None  # the current fault, None when the printer is fine
        self.printed = 0

    # -- submitting (any thread) ------------------------------------------------------

    def submit(self, data: bytes, kind: str = "receipt", skus: Sequence[str] = ()) -> str:
        """Queue rendered receipt bytes; returns the job id once the job is durable."""
        job_id = "p-" + uuid.uuid4().hex
        now = time.time()
        self._insert(
            ("id", "kind", "skus", "data", "state", "created", "updated"),
            (job_id, kind, ",".join(skus), data, "queued", now, now),
        )
        return job_id

    def submit_test_page(self) -> str:
        """Queue the test page (MQTT print-test command, store IT's admin page)."""
        if self._render_test_page is None:
            raise RuntimeError("no test page renderer configured")
        return self.submit(self._render_test_page(), kind="test")

    # -- reading ----------------------------------------------------------------------

    def job(self, job_id: str) -> PrintJob | None:
        """A job's state, or None when unknown (or long done and deleted)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, skus, state, attempts, problem, created, updated"
                " FROM jobs WHERE id = ?",
                (job_id,),
            ).fetchone()
        if row is None:
            return None
        skus = tuple(s for s in row[2].split(",") if s)
        return PrintJob(
            id=row[0],
            kind=row[1],
            skus=skus,
            state=row[3],
            attempts=row[4],
            problem=row[5],
            created=row[6],
            updated=row[7],
        )

    def _next(self) -> tuple[str, bytes] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, data FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1"
            ).fetchone()
        return None if row is None else (row[0], bytes(row[1]))

    def _set_state(self, job_id: str, state: JobState, problem: str = "") -> None:
        keep_data = state == "queued"
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = ?, problem = ?, updated = ?,"
                " data = CASE WHEN ? THEN data ELSE NULL END,"
                " attempts = attempts + CASE WHEN ? = 'queued' THEN 1 ELSE 0 END"
                " WHERE id = ?",
                (state, problem, time.time(), keep_data, state, job_id),
            )
            if not keep_data:
                self._purge_done_locked()

    def _mark_printing(self, job_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = 'printing', attempts = attempts + 1, updated = ?"
                " WHERE id = ?",
                (time.time(), job_id),
            )

    def recover(self) -> int:
        """After a restart: jobs caught mid-print are not sent again; returns how many."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET state = 'interrupted', data = NULL, updated = ?,"
                " problem = 'interrupted while printing; not repeated to avoid a duplicate'"
                " WHERE state = 'printing'",
                (time.time(),),
            )
            self._purge_done_locked()
        return cur.rowcount

    # -- printing (the supervised task) -------------------------------------------------

    def print_one(self) -> bool:
        """Print the oldest queued job (blocking); False when the queue is empty.

        Raises PrinterFault when the printer cannot take it (the job then stays queued,
        unless some of its bytes had left: it is then marked interrupted, never repeated).
        """
        nxt = self._next()
        if nxt is None:
            return False
        job_id, data = nxt
        try:
            deliver(
                self.target,
                data,
                timeout=self.config.timeout_s,
                status_query=self.config.status_query,
                profile=self.config.profile,
                before_send=lambda: self._mark_printing(job_id),
            )
        except PrinterFault as fault:
            if fault.sent:
                self._set_state(
                    job_id, "interrupted", f"{fault}; not repeated to avoid a duplicate"
                )
            else:
                self._set_state(job_id, "queued", str(fault))
            raise
        self._set_state(job_id, "printed")
        self.printed += 1
        return True

    def _report(self, problem: str | None, detail: str = "") -> None:
        services = self.services
        if problem == self.problem:
            return
        self.problem = problem
        if services is None:
            return
        if problem is None:
            _LOGGER.info("printer %s is ready", self.target.describe())
            services.health.set(COMPONENT, "ok")
            return
        _LOGGER.warning("printer %s: %s %s", self.target.describe(), problem, detail)
        services.health.set(COMPONENT, "degraded", f"{ATTENTION}: {problem}")
        services.publish(
            new_event(
                "kiosk.printer.fault",
                {"problem": problem, "printer": self.target.kind, "queued": self.depth()},
            )
        )

    async def run(self) -> None:
        """Drain the queue until cancelled; on a fault wait retry_interval_s and try again."""
        loop = self._attach()
        recovered = await loop.run_in_executor(None, self.recover)
        if recovered:
            _LOGGER.warning(
                "%d print job(s) were interrupted by a restart; not repeated", recovered
            )
        if self.services is not None:
            self.services.health.set(COMPONENT, "ok")
        next_probe = loop.time()  # at start-up: staff learn of a fault before shoppers
        try:
            while True:
                assert self._wake is not None
                self._wake.clear()
                try:
                    printed = await loop.run_in_executor(None, self.print_one)
                except PrinterFault as fault:
                    self._report(fault.problem, fault.detail)
                    await self._sleep(self.config.retry_interval_s)
                    continue
                if self.services is not None:
                    self.services.health.metric(COMPONENT, "queued", self.depth())
                    self.services.health.metric(COMPONENT, "printed", self.printed)
                if printed:
                    self._report(None)
                    next_probe = loop.time() + IDLE_PROBE_S  # it just proved it is fine
                    continue
                if not self._probes:
                    await self._sleep(None)
                    continue
                if loop.time() >= next_probe:
                    # Idle: ask the printer how it is, so staff see "needs attention" before
                    # a shopper's receipt is stuck; more often while a fault is showing.
                    problem = await loop.run_in_executor(None, self.probe)
                    self._report(problem)
                    delay = IDLE_PROBE_S if problem is None else self.config.retry_interval_s
                    next_probe = loop.time() + delay
                await self._sleep(max(0.0, next_probe - loop.time()))
        finally:
            self._wake = None

    @property
    def _probes(self) -> bool:
        return self.config.status_query and self.target.has_status

    def probe(self) -> str | None:
        """Read the printer's status without printing (blocking); the problem, or None."""
        try:
            conn = connect(self.target, self.config.timeout_s, self.config.profile)
        except PrinterFault as fault:
            return fault.problem
        try:
            return read_problem(conn)
        except PrinterFault as fault:
            return fault.problem
        finally:
            conn.close()


def build_print_queue(services: Services) -> PrintQueue | None:
    """The daemon's printer component (None when printing is off); sets services.printer."""
    config = services.config
    if not config.printer.enabled:
        return None
    from edge.takeaway.receipt import ReceiptError, choose_codepage

    try:
        choose_codepage(config.printer.profile, config.printer.codepage)
    except ReceiptError as exc:
        # Every receipt would fail: no Print button on the kiosk, and store IT is told why.
        _LOGGER.error("printing is off: %s", exc)
        services.health.set(COMPONENT, "failed", f"printing is off: {exc}")
        return None
    queue = PrintQueue(
        config.printer,
        config.device.data_dir,
        services=services,
        render_test_page=lambda: build_test_page(config),
    )
    services.printer = queue
    services.extras.setdefault("on_shutdown", []).append(queue.close)
    return queue


def build_test_page(config: Config, lang: str | None = None) -> bytes:
    """The test page for this kiosk's printer configuration."""
    from datetime import datetime

    from edge.takeaway.qr import takeaway_url
    from edge.takeaway.receipt import EncodeOptions, ReceiptContext, render_test_page

    pc = config.printer
    ctx = ReceiptContext(
        store_name=pc.store_name or config.device.store_id,
        kiosk=config.device.device_id,
        when=datetime.now().astimezone(),
        url=takeaway_url(config.kiosk.compare_url_template, ["TEST"]),
        lang=lang or config.device.locale,
        width=pc.columns,
    )
    return render_test_page(ctx, EncodeOptions(pc.profile, pc.codepage, pc.qr))
