"""The relay component's command worker: answers in order, a flood answered "busy" at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from edge.config import load_config
from edge.daemon import build_services
from edge.relay import commands
from edge.relay.component import MAX_QUEUED_COMMANDS, RelayComponent
from edge.relay.outbox import Outbox
from tests.conftest import ConfigWriter


def test_command_flood_is_answered_busy_without_queueing(
    write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the worker is stuck, at most MAX_QUEUED_COMMANDS wait; the rest get a "busy"
    reply with their id straight away, and the waiting ones all run once it is free."""
    release = threading.Event()

    def slow(_ctx: commands.CommandContext, _args: dict[str, Any]) -> dict[str, Any]:
        release.wait(10)
        return {"done": True}

    monkeypatch.setitem(commands.COMMANDS, "slow", slow)
    services = build_services(load_config(write_config(mqtt={"enabled": True})))
    outbox = Outbox.for_config(services.config)
    component = RelayComponent(services, outbox)
    sent: list[tuple[str, bytes, Any]] = []
    lock = threading.Lock()

    def capture(topic: str, payload: bytes, **kwargs: Any) -> None:
        with lock:
            sent.append((topic, payload, kwargs.get("properties")))

    monkeypatch.setattr(component.relay, "publish_direct", capture)
    component._executor = ThreadPoolExecutor(1)
    topic = component.topics.base + "/cmd/slow"
    extra = 10
    try:
        for i in range(MAX_QUEUED_COMMANDS + extra):
            component._on_command(topic, f'{{"id": "r{i}"}}'.encode(), None, False)
        with lock:
            busy = list(sent)
        assert len(busy) == extra
        assert all(b'"ok":false' in p and b"busy" in p for _, p, _ in busy)
        assert b'"id":"r' + str(MAX_QUEUED_COMMANDS).encode() + b'"' in busy[0][1]
        release.set()
        deadline = time.monotonic() + 10
        while len(sent) < MAX_QUEUED_COMMANDS + extra:
            assert time.monotonic() < deadline, "the waiting commands did not all run"
            time.sleep(0.01)
    finally:
        release.set()
        component._executor.shutdown(wait=True)
        outbox.close()
        component.relay.close()
    done = [p for _, p, _ in sent[extra:]]
    assert all(b'"ok":true' in p for p in done)
    assert all(t.endswith("/cmd/slow/reply") for t, _, _ in sent)
