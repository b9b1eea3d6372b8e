"""A network receipt printer on 127.0.0.1: records the bytes it receives, answers DLE EOT.

Modes imitate what a real ESC/POS printer does: ``ok`` answers every real-time status
request with "ready"; ``paper_out`` and ``cover_open`` answer with those faults; ``close``
accepts the connection and closes it at once (a printer rebooting or a broken print server).
Stopping the listener closes its socket, so connections are refused until it starts again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Final, Literal

Mode = Literal["ok", "paper_out", "cover_open", "close", "silent"]

# DLE EOT n answers (printer status, offline cause, roll paper sensor) per mode.
ANSWERS: Final[dict[str, dict[int, int]]] = {
    "ok": {1: 0x12, 2: 0x12, 4: 0x12},
    "paper_out": {1: 0x1A, 2: 0x32, 4: 0x72},
    "cover_open": {1: 0x1A, 2: 0x16, 4: 0x12},
}


class PrinterListener:
    """A TCP listener that behaves like a raw (port 9100) receipt printer."""

    def __init__(self, port: int, mode: Mode = "ok") -> None:
        self.port = port
        self.mode: Mode = mode
        self.connections: list[bytearray] = []
        self.lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.got_data = threading.Event()

    def start(self) -> PrinterListener:
        """Listen on 127.0.0.1:port (SO_REUSEADDR so it can come back on the same port)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(8)
        sock.settimeout(0.1)
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="printer-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: new connections are refused."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def received(self) -> bytes:
        """Every byte received on every connection, in order."""
        with self.lock:
            return b"".join(bytes(c) for c in self.connections)

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == "close":
                conn.close()
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        buf = bytearray()
        with self.lock:
            self.connections.append(buf)
        conn.settimeout(0.1)
        tail = b""
        with contextlib.closing(conn):
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                with self.lock:
                    buf.extend(chunk)
                self.got_data.set()
                answers = ANSWERS.get(self.mode)
                if answers is None:
                    continue
                # Status requests may straddle reads: scan the previous tail too.
                window = tail + chunk
                start = len(tail)
                for i in range(max(0, start - 2), len(window) - 2):
                    if window[i] == 0x10 and window[i + 1] == 0x04 and i + 2 >= start:
                        reply = answers.get(window[i + 2])
                        if reply is not None:
                            with contextlib.suppress(OSError):
                                conn.sendall(bytes([reply]))
                tail = window[-2:]
