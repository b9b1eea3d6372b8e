"""serial:// printers through a real pseudo-terminal: pyserial opens the tty, we play printer."""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Iterator

import pytest

from edge.takeaway.printer import (
    STATUS_PAPER,
    STATUS_PRINTER,
    PrinterFault,
    deliver,
)
from edge.takeaway.printer_url import parse_printer_url

JOB = b"\x1b@\x1bt\x13Caf\x82 cr\x8ame\n\x1dV\x00"


class PtyPrinter:
    """The master side of a pty answering DLE EOT like a printer; records what it reads."""

    def __init__(self, answer: int = 0x12) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)
        self.answer = answer
        self.received = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            self.received.extend(chunk)
            for i in range(len(chunk) - 2):
                if chunk[i] == 0x10 and chunk[i + 1] == 0x04:
                    os.write(self.master, bytes([self.answer]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty_printer() -> Iterator[PtyPrinter]:
    printer = PtyPrinter()
    yield printer
    printer.close()


def test_serial_printer_gets_the_job(pty_printer: PtyPrinter) -> None:
    """The job goes through the tty byte for byte, after a status check, then confirmed."""
    target = parse_printer_url(f"serial://{pty_printer.path}?baudrate=19200")
    deliver(target, JOB, timeout=2.0, status_query=True)
    assert bytes(pty_printer.received) == STATUS_PRINTER + STATUS_PAPER + JOB + STATUS_PRINTER


def test_serial_paper_out_sends_nothing(pty_printer: PtyPrinter) -> None:
    """A paper-out answer on the serial line: fault, and the job bytes never leave."""
    pty_printer.answer = 0x72  # paper end on every sensor, offline bit clear on byte 1
    target = parse_printer_url(f"serial://{pty_printer.path}")
    with pytest.raises(PrinterFault) as info:
        deliver(target, JOB, timeout=2.0, status_query=True)
    assert info.value.problem == "paper out"
    assert not info.value.sent
    assert JOB not in bytes(pty_printer.received)


def test_missing_serial_device_is_unreachable() -> None:
    """No such device: 'unreachable' naming it."""
    target = parse_printer_url("serial:///dev/ttyNOPE9")
    with pytest.raises(PrinterFault, match="unreachable"):
        deliver(target, JOB, timeout=0.5, status_query=True)
