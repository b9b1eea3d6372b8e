"""In-process publish/subscribe on the daemon's asyncio loop.

Sources publish :class:`~edge.events.Event` values; consumers (the outbox, the shopper
session, the kiosk's live stream) subscribe by type prefix. Publishing from another thread
(a Flask handler in a waitress thread, the camera's decode worker) goes through
:meth:`Bus.publish_threadsafe`. A failing subscriber is logged and never affects the others.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from edge.events import Event

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None] | None]

# A live-stream subscriber (one kiosk browser tab) that stops reading must not grow without
# bound: beyond this many pending events the oldest are dropped.
THREAD_QUEUE_SIZE: Final = 256


@dataclass(eq=False)
class Subscription:
    """A handle to stop receiving events."""

    bus: Bus
    prefixes: tuple[str, ...]
    handler: Handler
    active: bool = True

    def matches(self, event_type: str) -> bool:
        """True when the event type starts with one of the subscribed prefixes."""
        return not self.prefixes or event_type.startswith(self.prefixes)

    def close(self) -> None:
        """Stop delivering events to this subscriber."""
        self.bus._remove(self)


@dataclass(eq=False)
class ThreadSubscription:
    """Events delivered to a thread through a bounded queue (oldest dropped when full)."""

    bus: Bus
    prefixes: tuple[str, ...]
    queue: queue.Queue[Event] = field(default_factory=lambda: queue.Queue(THREAD_QUEUE_SIZE))
    dropped: int = 0

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after ``timeout`` seconds."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def put(self, event: Event) -> None:
        """Deliver an event, dropping the oldest pending one when the queue is full."""
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def close(self) -> None:
        """Stop delivering events to this subscriber."""
        self.bus._remove_thread(self)


class Bus:
    """Publish/subscribe bound to one asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._subs: list[Subscription] = []
        self._thread_subs: list[ThreadSubscription] = []
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.published = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the bus to the loop that will run the handlers."""
        self._loop = loop

    def subscribe(self, handler: Handler, *prefixes: str) -> Subscription:
        """Call ``handler`` (sync or async) on the loop for every event matching a prefix."""
        sub = Subscription(self, tuple(prefixes), handler)
        with self._lock:
            self._subs.append(sub)
        return sub

    def subscribe_thread(self, *prefixes: str) -> ThreadSubscription:
        """A queue another thread can block on, e.g. a Server-Sent Events response."""
        sub = ThreadSubscription(self, tuple(prefixes))
        with self._lock:
            self._thread_subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            sub.active = False
            if sub in self._subs:
                self._subs.remove(sub)

    def _remove_thread(self, sub: ThreadSubscription) -> None:
        with self._lock:
            if sub in self._thread_subs:
                self._thread_subs.remove(sub)

    def publish(self, event: Event) -> None:
        """Deliver an event to every matching subscriber; call on the loop thread."""
        self.published += 1
        with self._lock:
            subs = [s for s in self._subs if s.matches(event.type)]
            thread_subs = [
                s for s in self._thread_subs if not s.prefixes or event.type.startswith(s.prefixes)
            ]
        for sub in subs:
            try:
                result = sub.handler(event)
            except Exception:
                _LOGGER.exception("subscriber %r failed on %s", sub.handler, event.type)
                continue
            if result is not None:
                task = asyncio.ensure_future(self._guard(result, event.type))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        for tsub in thread_subs:
            tsub.put(event)

    async def _guard(self, awaitable: Awaitable[None], event_type: str) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            raise
        except Exception:
            _LOGGER.exception("async subscriber failed on %s", event_type)

    def publish_threadsafe(self, event: Event) -> None:
        """Publish from any thread; the handlers still run on the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("the bus is not bound to a running loop")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.publish(event)
        else:
            loop.call_soon_threadsafe(self.publish, event)
