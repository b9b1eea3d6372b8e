"""systemd's service notification protocol (sd_notify), a datagram to $NOTIFY_SOCKET.

Small enough to own: READY=1 once serving, WATCHDOG=1 while the loop is healthy, STATUS=
lines for `systemctl status`. Without NOTIFY_SOCKET every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

_LOGGER = logging.getLogger(__name__)


class Notifier:
    """Sends notifications to systemd when it is listening."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._sock: socket.socket | None = None
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        """True under systemd (NOTIFY_SOCKET set)."""
        return self._sock is not None

    def notify(self, *lines: str) -> bool:
        """Send ``KEY=value`` lines; False (and a debug log) if systemd did not take them."""
        if self._sock is None:
            return False
        target = self.address
        # An abstract socket is written '@name' in the variable and '\0name' on the wire.
        if target.startswith("@"):
            target = "\0" + target[1:]
        try:
            self._sock.sendto("\n".join(lines).encode(), target)
        except OSError as exc:
            _LOGGER.debug("sd_notify failed: %s", exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        """Tell systemd the service is up."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        """Keep systemd's watchdog from restarting us."""
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """Set the one-line status shown by `systemctl status`."""
        return self.notify(f"STATUS={text}")

    def stopping(self) -> bool:
        """Tell systemd a clean shutdown is under way."""
        return self.notify("STOPPING=1")

    def close(self) -> None:
        """Release the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s(default: float = 15.0) -> float:
    """Half of systemd's WatchdogSec (from $WATCHDOG_USEC), else ``default``."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    if usec.isdigit() and int(usec) > 0:
        return int(usec) / 2_000_000
    return default
