"""Where the receipt printer is: parsing ``printer.url`` (pure, no I/O, cheap to import).

Shared by the printer adapter, the configuration check and ``kiosk-edge provision``, so a URL
accepted by one is accepted by all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import parse_qs, urlsplit

# Serial printers default to 9600 baud 8N1; most thermal models ship at 9600 or 19200.
DEFAULT_BAUDRATE: Final = 9600
# Raw network printing (JetDirect / AppSocket) port.
DEFAULT_TCP_PORT: Final = 9100


class PrinterUrlError(ValueError):
    """printer.url cannot be used; the message says what form is expected."""


@dataclass(frozen=True)
class PrinterTarget:
    """Where the printer is: a parsed printer.url."""

    kind: Literal["tcp", "usb", "serial", "file"]
    host: str = ""
    port: int = DEFAULT_TCP_PORT
    vendor: int = 0
    product: int = 0
    path: str = ""
    baudrate: int = DEFAULT_BAUDRATE

    @property
    def has_status(self) -> bool:
        """True when the connection can carry the printer's status answers back."""
        return self.kind != "file"

    def describe(self) -> str:
        """A short description for logs and health (no secrets in printer URLs)."""
        if self.kind == "tcp":
            return f"tcp://{self.host}:{self.port}"
        if self.kind == "usb":
            return f"usb://{self.vendor:04x}:{self.product:04x}"
        return f"{self.kind}://{self.path}"


def parse_printer_url(url: str) -> PrinterTarget:
    """Parse usb://VID:PID, tcp://host[:port], serial:///dev/X[?baudrate=N] or file:///path."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "tcp":
        if not parts.hostname:
            raise PrinterUrlError(f"{url!r} has no host; use tcp://HOST:9100")
        try:
            port = parts.port or DEFAULT_TCP_PORT
        except ValueError:
            raise PrinterUrlError(f"{url!r} has a bad port; use tcp://HOST:9100") from None
        return PrinterTarget("tcp", host=parts.hostname, port=port)
    if scheme == "usb":
        ids = (parts.netloc or parts.path.strip("/")).split(":")
        try:
            vendor, product = (int(x, 16) for x in ids)
        except ValueError:
            raise PrinterUrlError(
                f"{url!r} is not usb://VID:PID with the vendor:product ids in hexadecimal, "
                "e.g. usb://04b8:0202"
            ) from None
        if not (0 <= vendor <= 0xFFFF and 0 <= product <= 0xFFFF):
            raise PrinterUrlError(f"{url!r}: USB ids are 4 hexadecimal digits each")
        return PrinterTarget("usb", vendor=vendor, product=product)
    if scheme == "serial":
        if not parts.path.startswith("/"):
            raise PrinterUrlError(f"{url!r} has no device; use serial:///dev/ttyUSB0")
        baud = parse_qs(parts.query).get("baudrate", [str(DEFAULT_BAUDRATE)])[0]
        if not baud.isdigit() or not 300 <= int(baud) <= 921600:
            raise PrinterUrlError(f"{url!r}: baudrate must be a number from 300 to 921600")
        return PrinterTarget("serial", path=parts.path, baudrate=int(baud))
    if scheme == "file":
        if not parts.path.startswith("/"):
            raise PrinterUrlError(f"{url!r} has no absolute path; use file:///path/to/file")
        return PrinterTarget("file", path=parts.path)
    raise PrinterUrlError(
        f"{url!r} has an unknown scheme; use usb://VID:PID, tcp://HOST:9100, "
        "serial:///dev/ttyUSB0 or file:///path"
    )
