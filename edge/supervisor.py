"""Run components side by side; restart a failing one with backoff, never touch the others.

A component is anything with a ``name`` and an ``async run()`` that works until cancelled.
Raising from ``run`` (no Bluetooth adapter, no camera, broker unreachable) marks it
``failed`` with the reason and schedules a restart with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Final, Protocol

from edge.health import Health

_LOGGER = logging.getLogger(__name__)

# First restart after 1 s, doubling to at most 60 s: quick recovery from a blip, no busy loop
# against a device that is really gone.
BACKOFF_MIN_S: Final = 1.0
BACKOFF_MAX_S: Final = 60.0
# A run that lasted this long counts as healthy: the next failure starts the backoff again.
STABLE_AFTER_S: Final = 30.0


class Component(Protocol):
    """A supervised part of the daemon."""

    name: str

    async def run(self) -> None:
        """Work until cancelled; raise to report a failure."""
        ...


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Delay before restart number ``attempt`` (1-based): exponential, jittered to 50-100 %."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2.0 ** max(0, attempt - 1))
    r: float = (rng or random).uniform(0.5, 1.0)
    return ceiling * r


class Supervisor:
    """Starts components as tasks and keeps them running."""

    def __init__(self, health: Health) -> None:
        self.health = health
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._restart_now: dict[str, asyncio.Event] = {}
        self._components: dict[str, Component] = {}

    def start(self, component: Component) -> None:
        """Begin supervising a component."""
        self._components[component.name] = component
        self.health.register(component.name)
        self._restart_now[component.name] = asyncio.Event()
        self._tasks[component.name] = asyncio.create_task(
            self._keep_running(component), name=f"component:{component.name}"
        )

    def restart(self, name: str) -> bool:
        """Ask a component to restart now (store IT's button); False if unknown."""
        task = self._tasks.get(name)
        if task is None:
            return False
        self._restart_now[name].set()
        return True

    async def replace(
        self,
        name: str,
        build: Callable[[], Component | None],
        timeout: float = 4.0,
    ) -> Component | None:
        """Stop a component (bounded by ``timeout``), then build and start its successor.

        ``build`` runs only after the old task has ended (or overrun its bound), so the new
        component never shares a port, a device or a database writer with the old one. A
        None from ``build`` leaves the component stopped and reported ``disabled``; a
        component not supervised before (disabled until now) is simply started.
        """
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            _, pending = await asyncio.wait({task}, timeout=timeout)
            if pending:
                _LOGGER.warning("component %s did not stop within %.1f s", name, timeout)
        self._restart_now.pop(name, None)
        self._components.pop(name, None)
        component = build()
        if component is None:
            self.health.set(name, "disabled")
            return None
        self.health.set(name, "starting")  # at once: healthz must not show the old "ok"
        self.start(component)
        _LOGGER.info("component %s replaced", name)
        return component

    def component(self, name: str) -> Component | None:
        """The component currently supervised under ``name`` (None if none)."""
        return self._components.get(name)

    @property
    def names(self) -> list[str]:
        """Names of supervised components."""
        return list(self._tasks)

    async def _keep_running(self, component: Component) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        trigger = self._restart_now[component.name]
        last_failure = ""
        while True:
            started = loop.time()
            # Keep the last failure visible while it starts again: store IT reading healthz
            # mid-retry must still see why (a slow failure can spend most of its time here).
            self.health.set(
                component.name,
                "starting",
                f"retrying after: {last_failure}" if last_failure else "",
            )
            runner = asyncio.create_task(component.run(), name=f"run:{component.name}")
            waiter = asyncio.create_task(trigger.wait())
            try:
                done, _ = await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                runner.cancel()
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await runner
                raise
            if waiter in done:
                trigger.clear()
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await runner
                _LOGGER.info("component %s restarted on request", component.name)
                self.health.restarted(component.name)
                attempt = 0
                last_failure = ""
                continue
            waiter.cancel()
            exc = runner.exception() if not runner.cancelled() else None
            reason = f"{type(exc).__name__}: {exc}" if exc else "stopped unexpectedly"
            last_failure = reason
            if loop.time() - started > STABLE_AFTER_S:
                attempt = 0
            attempt += 1
            delay = backoff_delay(attempt)
            self.health.set(component.name, "failed", reason)
            self.health.restarted(component.name)
            _LOGGER.warning(
                "component %s failed (%s); restarting in %.1f s", component.name, reason, delay
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(trigger.wait(), timeout=delay)
            trigger.clear()

    async def stop(self, timeout: float = 4.0) -> None:
        """Cancel every component and wait for them to finish (bounded)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                _LOGGER.warning("component task %s did not stop in time", task.get_name())
        self._tasks.clear()
        self._components.clear()
