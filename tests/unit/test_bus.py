"""The in-process bus: delivery, filtering, isolation of failures, other threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from edge.bus import THREAD_QUEUE_SIZE, Bus
from edge.events import Event, new_event


def test_prefix_filter_and_sync_async_handlers() -> None:
    """Sync and async handlers get matching events; others are filtered out."""
    got: list[str] = []
    got_async: list[str] = []

    async def scenario() -> None:
        bus = Bus(asyncio.get_running_loop())
        bus.subscribe(lambda e: got.append(e.type), "kiosk.beacon.")

        async def on_event(e: Event) -> None:
            await asyncio.sleep(0)
            got_async.append(e.type)

        bus.subscribe(on_event)
        bus.publish(new_event("kiosk.beacon.enter", {}))
        bus.publish(new_event("kiosk.search", {}))
        await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert got == ["kiosk.beacon.enter"]
    assert got_async == ["kiosk.beacon.enter", "kiosk.search"]


def test_failing_subscriber_does_not_stop_others(caplog: pytest.LogCaptureFixture) -> None:
    """An exception in one handler is logged; the next handler still runs."""
    got: list[str] = []

    def broken(_: Event) -> None:
        raise RuntimeError("boom")

    bus = Bus()
    bus.subscribe(broken)
    bus.subscribe(lambda e: got.append(e.type))
    bus.publish(new_event("kiosk.search", {}))
    assert got == ["kiosk.search"]
    assert "boom" in caplog.text


def test_publish_from_another_thread_runs_on_the_loop() -> None:
    """publish_threadsafe delivers on the loop thread."""
    seen_threads: list[str] = []

    async def scenario() -> None:
        bus = Bus(asyncio.get_running_loop())
        done = asyncio.Event()

        def handler(_: Event) -> None:
            seen_threads.append(threading.current_thread().name)
            done.set()

        bus.subscribe(handler)
        t = threading.Thread(
            target=bus.publish_threadsafe, args=(new_event("kiosk.search", {}),), name="flask"
        )
        t.start()
        await asyncio.wait_for(done.wait(), 2)
        t.join()

    asyncio.run(scenario())
    assert seen_threads == [threading.main_thread().name]


def test_thread_subscription_drops_oldest_when_full() -> None:
    """A stalled reader keeps only the newest events."""
    bus = Bus()
    sub = bus.subscribe_thread("kiosk.")
    for i in range(THREAD_QUEUE_SIZE + 10):
        bus.publish(new_event("kiosk.search", {"i": i}))
    first = sub.get(timeout=0.1)
    assert first is not None
    assert first.data["i"] == 10
    assert sub.dropped == 10
    sub.close()
    bus.publish(new_event("kiosk.search", {}))
    assert sub.queue.qsize() == THREAD_QUEUE_SIZE - 1


def test_publish_threadsafe_without_loop_is_an_error() -> None:
    """Publishing from a thread before the daemon bound the loop is refused clearly."""
    with pytest.raises(RuntimeError, match="not bound"):
        Bus().publish_threadsafe(new_event("kiosk.search", {}))
