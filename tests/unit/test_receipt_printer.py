"""Printer URLs and ESC/POS status bytes (pure parts of the printer adapter)."""

from __future__ import annotations

import pytest

from edge.takeaway.printer import interpret_status
from edge.takeaway.printer_url import PrinterTarget, PrinterUrlError, parse_printer_url


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("tcp://192.168.1.50:9100", PrinterTarget("tcp", host="192.168.1.50", port=9100)),
        ("tcp://printer.local", PrinterTarget("tcp", host="printer.local", port=9100)),
        ("usb://04b8:0202", PrinterTarget("usb", vendor=0x04B8, product=0x0202)),
        (
            "serial:///dev/ttyUSB0?baudrate=19200",
            PrinterTarget("serial", path="/dev/ttyUSB0", baudrate=19200),
        ),
        ("serial:///dev/ttyS0", PrinterTarget("serial", path="/dev/ttyS0", baudrate=9600)),
        ("file:///dev/usb/lp0", PrinterTarget("file", path="/dev/usb/lp0")),
    ],
)
def test_parse_printer_url(url: str, target: PrinterTarget) -> None:
    """Every supported form parses to its target."""
    assert parse_printer_url(url) == target


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("lpt://1", "unknown scheme"),
        ("usb://epson", "hexadecimal"),
        ("usb://4b8", "hexadecimal"),
        ("tcp://:9100", "no host"),
        ("tcp://host:notaport", "bad port"),
        ("serial:///dev/ttyUSB0?baudrate=fast", "baudrate"),
        ("file://relative", "absolute path"),
    ],
)
def test_bad_printer_url_names_the_fix(url: str, message: str) -> None:
    """A bad URL is refused with a message naming the expected form."""
    with pytest.raises(PrinterUrlError, match=message):
        parse_printer_url(url)


@pytest.mark.parametrize(
    ("printer", "offline", "paper", "problem"),
    [
        (0x12, None, 0x12, None),
        (0x12, None, 0x1E, None),  # paper near end: still prints
        (0x1A, 0x32, 0x72, "paper out"),
        (0x1A, 0x16, 0x12, "cover open"),
        (0x1A, 0x52, 0x12, "printer error"),
        (0x1A, 0x12, 0x12, "offline"),
    ],
)
def test_interpret_status(
    printer: int, offline: int | None, paper: int, problem: str | None
) -> None:
    """DLE EOT answers map to the problem staff must fix."""
    assert interpret_status(printer, offline, paper) == problem


def test_config_check_refuses_a_bad_printer_url() -> None:
    """printer.url goes through the printer's parser when the config is checked, not at print."""
    from edge.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as info:
        parse_config({"printer": {"url": "lpt://1"}})
    [problem] = info.value.problems
    assert problem.key == "printer.url"
    assert "usb://VID:PID, tcp://HOST:9100" in str(problem)
    assert parse_config({"printer": {"url": "tcp://10.0.0.5"}}).printer.url == "tcp://10.0.0.5"
