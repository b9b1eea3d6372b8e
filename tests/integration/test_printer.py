"""The print queue against a network printer on 127.0.0.1 (a TCP listener that records bytes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.bus import Bus
from edge.config import Config
from edge.events import Event
from edge.health import Health
from edge.services import Services
from edge.takeaway.printer import (
    STATUS_OFFLINE,
    STATUS_PAPER,
    STATUS_PRINTER,
    PrintQueue,
    build_print_queue,
)
from tests.conftest import free_port
from tests.support.escpos_text import decode
from tests.support.printer_listener import PrinterListener

JOB = b"\x1b@\x1bt\x13Re\x82u n\xb01\n\x1dV\x00"


def strip_status(data: bytes) -> bytes:
    """The recorded stream without the DLE EOT requests the queue sends around each job."""
    for query in (STATUS_PRINTER, STATUS_PAPER, STATUS_OFFLINE):
        data = data.replace(query, b"")
    return data


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def listener(port: int) -> Iterator[PrinterListener]:
    lst = PrinterListener(port)
    yield lst
    lst.stop()


def make_services(tmp_path: Path, port: int, **printer: object) -> Services:
    config = Config()
    config.device.data_dir = tmp_path / "data"
    config.printer.url = f"tcp://127.0.0.1:{port}"
    config.printer.retry_interval_s = 0.2
    config.printer.timeout_s = 1.0
    for key, value in printer.items():
        setattr(config.printer, key, value)
    return Services(config=config, bus=Bus(), health=Health(), salt="s")


class Running:
    """A PrintQueue running as the daemon runs it, with the faults it published."""

    def __init__(self, services: Services) -> None:
        self.services = services
        queue = build_print_queue(services)
        assert queue is not None
        self.queue: PrintQueue = queue
        self.faults: list[Event] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        loop = asyncio.get_running_loop()
        self.services.loop = loop
        self.services.bus.bind(loop)
        self.services.bus.subscribe(self.faults.append, "kiosk.printer.fault")
        self.task = asyncio.create_task(self.queue.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        self.queue.close()


async def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_prints_exact_bytes_after_status_check(
    tmp_path: Path, port: int, listener: PrinterListener
) -> None:
    """A job reaches the printer byte for byte, between a status check and a confirmation."""
    listener.start()

    async def body() -> None:
        async with Running(make_services(tmp_path, port)) as run:
            job = run.queue.submit(JOB, skus=["TV-001"])
            await wait_for(lambda: run.queue.job(job).state == "printed")  # type: ignore[union-attr]
            assert run.services.health.get("printer").state == "ok"  # type: ignore[union-attr]
            assert run.faults == []

    asyncio.run(body())
    received = listener.received
    assert received.startswith(STATUS_PRINTER + STATUS_PAPER)
    assert JOB + STATUS_PRINTER in received  # the confirmation is asked right after the job
    assert strip_status(received) == JOB


@pytest.mark.parametrize("fault", ["close", "refused", "paper_out", "cover_open"])
def test_fault_keeps_job_queued_then_prints_once(
    tmp_path: Path, port: int, listener: PrinterListener, fault: str
) -> None:
    """Accept-and-close, refused, paper out or cover open: queued, attention, then printed once."""
    if fault != "refused":
        listener.mode = fault  # type: ignore[assignment]
        listener.start()
    expected = {
        "close": "offline",
        "refused": "unreachable",
        "paper_out": "paper out",
        "cover_open": "cover open",
    }[fault]

    async def body() -> None:
        async with Running(make_services(tmp_path, port)) as run:
            job = run.queue.submit(JOB)
            await wait_for(lambda: bool(run.faults))
            state = run.queue.job(job)
            assert state is not None
            assert state.state == "queued"
            assert state.problem.startswith(expected)
            health = run.services.health.get("printer")
            assert health is not None
            assert health.state == "degraded"
            assert health.reason == f"printer needs attention: {expected}"
            assert run.faults[0].data == {"problem": expected, "printer": "tcp", "queued": 1}
            # Nothing of the job was sent while the printer could not print.
            assert JOB not in listener.received
            await asyncio.sleep(0.5)  # a few retries happen meanwhile
            assert len(run.faults) == 1  # one event per fault, not per retry
            listener.mode = "ok"
            if fault == "refused":
                listener.start()
            await wait_for(lambda: run.queue.job(job).state == "printed")  # type: ignore[union-attr]
            # Health follows on the loop right after the job's state is committed.
            await wait_for(lambda: run.services.health.get("printer").state == "ok")  # type: ignore[union-attr]
            second = run.queue.submit(JOB + b"2")
            await wait_for(lambda: run.queue.job(second).state == "printed")  # type: ignore[union-attr]

    asyncio.run(body())
    assert listener.received.count(JOB) == 2  # the job once, and the second job
    assert listener.received.count(JOB + b"2") == 1


def test_queued_job_survives_restart_and_prints_once(
    tmp_path: Path, port: int, listener: PrinterListener
) -> None:
    """A job accepted while the printer is away is still there after a restart, printed once."""
    services = make_services(tmp_path, port)
    first = build_print_queue(services)
    assert first is not None
    job = first.submit(JOB)
    first.close()  # the daemon stops before the printer came back

    listener.start()

    async def body() -> None:
        async with Running(make_services(tmp_path, port)) as run:
            await wait_for(lambda: run.queue.job(job).state == "printed")  # type: ignore[union-attr]
            await asyncio.sleep(0.3)

    asyncio.run(body())
    asyncio.run(body())  # a second restart prints nothing more
    assert listener.received.count(JOB) == 1


def test_job_interrupted_mid_print_is_never_repeated(
    tmp_path: Path, port: int, listener: PrinterListener
) -> None:
    """A crash after the first bytes left: after the restart the job is not sent again."""
    listener.start()
    services = make_services(tmp_path, port)
    first = build_print_queue(services)
    assert first is not None
    job = first.submit(JOB)
    first._mark_printing(job)  # the state the queue commits just before sending
    first.close()  # ...and the power goes

    async def body() -> None:
        async with Running(make_services(tmp_path, port)) as run:
            state = run.queue.job(job)
            await wait_for(lambda: run.queue.job(job).state == "interrupted")  # type: ignore[union-attr]
            state = run.queue.job(job)
            assert state is not None
            assert "not repeated" in state.problem
            follow = run.queue.submit(b"next\n")
            await wait_for(lambda: run.queue.job(follow).state == "printed")  # type: ignore[union-attr]

    asyncio.run(body())
    assert JOB not in listener.received
    assert b"next\n" in listener.received


def test_printer_that_never_answers_status(
    tmp_path: Path, port: int, listener: PrinterListener
) -> None:
    """A model without status support: with status_query off the job prints."""
    listener.mode = "silent"
    listener.start()

    async def body(query: bool) -> str:
        async with Running(make_services(tmp_path, port, status_query=query, timeout_s=0.3)) as run:
            job = run.queue.submit(JOB)
            if query:
                await wait_for(lambda: bool(run.faults))
                return run.faults[0].data["problem"]  # type: ignore[no-any-return]
            await wait_for(lambda: run.queue.job(job).state == "printed")  # type: ignore[union-attr]
            return "printed"

    assert asyncio.run(body(True)) == "no status"
    assert asyncio.run(body(False)) == "printed"


def test_file_printer_appends_and_test_page(tmp_path: Path) -> None:
    """file:// printers get each job appended; the test page is a real receipt."""
    out = tmp_path / "receipts.bin"
    config = Config()
    config.device.data_dir = tmp_path / "data"
    config.printer.url = f"file://{out}"
    services = Services(config=config, bus=Bus(), health=Health(), salt="s")

    async def body() -> None:
        async with Running(services) as run:
            a = run.queue.submit_test_page()
            b = run.queue.submit(JOB)
            await wait_for(lambda: run.queue.job(b).state == "printed")  # type: ignore[union-attr]
            assert run.queue.job(a).state == "printed"  # type: ignore[union-attr]

    asyncio.run(body())
    data = out.read_bytes()
    assert data.endswith(JOB)
    page = decode(data[: -len(JOB)])
    assert page.cuts == 1
    assert any("€" in line for line in page.lines)


def test_idle_printer_fault_shows_before_any_job(
    tmp_path: Path, port: int, listener: PrinterListener
) -> None:
    """An idle printer is asked for its status: a paper-out shows with no job, then clears."""
    listener.mode = "paper_out"
    listener.start()

    async def body() -> None:
        async with Running(make_services(tmp_path, port)) as run:
            await wait_for(lambda: bool(run.faults))
            assert run.faults[0].data["problem"] == "paper out"
            assert run.faults[0].data["queued"] == 0
            health = run.services.health.get("printer")
            assert health is not None
            assert health.reason == "printer needs attention: paper out"
            listener.mode = "ok"
            await wait_for(lambda: run.services.health.get("printer").state == "ok")  # type: ignore[union-attr]

    asyncio.run(body())
    assert strip_status(listener.received) == b""  # only status requests, nothing printed


def test_unreadable_queue_database_is_set_aside(tmp_path: Path, port: int) -> None:
    """A corrupt print-queue file does not stop the kiosk: moved aside, a new queue works."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "print-queue.sqlite3").write_bytes(b"this is not a database" * 200)
    services = make_services(tmp_path, port)
    queue = build_print_queue(services)
    assert queue is not None
    job = queue.submit(JOB)
    assert queue.job(job) is not None
    queue.close()
    assert len(list(data.glob("print-queue.sqlite3.corrupt-*"))) == 1


@pytest.mark.parametrize(
    ("printer", "message"),
    [
        ({"profile": "NoSuchModel"}, "unknown printer profile 'NoSuchModel'"),
        ({"profile": "TM-U220"}, "no code page with French accents"),
        ({"profile": "simple", "codepage": "CP858"}, "set printer.codepage"),
    ],
)
def test_unusable_profile_turns_printing_off_with_the_reason(
    tmp_path: Path, port: int, printer: dict[str, str], message: str
) -> None:
    """A profile (or code page) no receipt can be printed with: no queue, so the kiosk shows
    no Print button, and health says why instead of every shopper getting an error."""
    services = make_services(tmp_path, port, **printer)
    assert build_print_queue(services) is None
    assert services.printer is None
    health = services.health.get("printer")
    assert health is not None
    assert health.state == "failed"
    assert message in health.reason


def test_finished_jobs_are_purged_while_running(
    tmp_path: Path, port: int, listener: PrinterListener
) -> None:
    """A job printed more than a day ago is deleted when the next one is printed, without a
    restart; a queued job, however old, is kept."""
    listener.start()

    async def body() -> None:
        async with Running(make_services(tmp_path, port)) as run:
            old = run.queue.submit(JOB)
            await wait_for(lambda: run.queue.job(old).state == "printed")  # type: ignore[union-attr]
            with run.queue._lock:  # a day and a minute later
                run.queue._db.execute(
                    "UPDATE jobs SET updated = updated - 86460 WHERE id = ?", (old,)
                )
            new = run.queue.submit(JOB + b"2")
            await wait_for(lambda: run.queue.job(new).state == "printed")  # type: ignore[union-attr]
            assert run.queue.job(old) is None
            assert run.queue.job(new) is not None

    asyncio.run(body())
