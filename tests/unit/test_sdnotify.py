"""sd_notify: datagrams to $NOTIFY_SOCKET (path or abstract), a no-op without systemd."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from edge.sdnotify import Notifier, watchdog_interval_s


def test_abstract_socket_gets_ready_with_status() -> None:
    """'@name' in NOTIFY_SOCKET is the abstract socket '\\0name'; READY carries STATUS."""
    name = f"kiosk-edge-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        notifier = Notifier(f"@{name}")
        assert notifier.enabled
        assert notifier.ready("all components ok")
        assert sock.recv(4096) == b"READY=1\nSTATUS=all components ok"
        assert notifier.watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert notifier.status("relay degraded")
        assert sock.recv(4096) == b"STATUS=relay degraded"
        assert notifier.stopping()
        assert sock.recv(4096) == b"STOPPING=1"
        notifier.close()
        assert not notifier.enabled


def test_without_systemd_every_call_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NOTIFY_SOCKET: nothing is sent and nothing fails."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False


def test_a_socket_nobody_listens_on_is_not_an_error(tmp_path: Path) -> None:
    """systemd gone (socket file missing): the call reports False instead of raising."""
    notifier = Notifier(str(tmp_path / "gone.sock"))
    assert notifier.watchdog() is False
    notifier.close()


@pytest.mark.parametrize(
    ("usec", "expected"), [("20000000", 10.0), ("", 15.0), ("0", 15.0), ("abc", 15.0)]
)
def test_watchdog_interval_is_half_of_watchdogsec(
    usec: str, expected: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pings come at half of WatchdogSec; without a usable WATCHDOG_USEC, every 15 s."""
    monkeypatch.setenv("WATCHDOG_USEC", usec)
    assert watchdog_interval_s() == expected
