"""The kiosk server's admission limit: few requests computed at once, streams never held."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from kiosk_ui.server import AdmissionLimit


class Recorder:
    """A WSGI app that notes how many calls run at once and can be held inside a call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.closed = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
        start_response("200 OK", [])
        return self.body()

    def body(self) -> Iterator[bytes]:
        try:
            yield b"a"
            yield b"b"
        finally:
            with self.lock:
                self.closed += 1


def call(app: AdmissionLimit, path: str) -> bytes:
    return b"".join(app({"PATH_INFO": path}, lambda status, headers: None))


def test_at_most_the_limit_compute_at_once_and_bodies_are_complete() -> None:
    """Twelve simultaneous requests through a limit of 3: never more than 3 inside."""
    inner = Recorder()
    app = AdmissionLimit(inner, limit=3)
    out: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: out.append(call(app, "/products/X"))) for _ in range(12)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inner.most == 3
    assert out == [b"ab"] * 12
    assert inner.closed == 12  # the app's body was closed inside the slot


def test_the_live_stream_never_waits_for_a_slot() -> None:
    """With every slot taken, /api/events still starts at once."""
    app = AdmissionLimit(Recorder(), limit=1)
    held = threading.Thread(target=lambda: call(app, "/products/X"))
    slots = app._slots
    slots.acquire()  # every slot busy
    try:
        held.start()
        started = time.monotonic()
        assert call(app, "/api/events") == b"ab"
        assert time.monotonic() - started < 0.5
        assert held.is_alive()  # the ordinary request is still waiting
    finally:
        slots.release()
        held.join()
