"""The supervisor: failures reported with their reason, restarts with backoff, clean stop."""

from __future__ import annotations

import asyncio
import random

import pytest

from edge import supervisor as supervisor_module
from edge.health import Health
from edge.supervisor import BACKOFF_MAX_S, Supervisor, backoff_delay


class Scripted:
    """A component whose runs follow a script: raise, return, or serve until cancelled."""

    def __init__(self, name: str, health: Health, script: list[str]) -> None:
        self.name = name
        self.health = health
        self.script = script
        self.runs = 0
        self.cancelled = 0

    async def run(self) -> None:
        step = self.script[min(self.runs, len(self.script) - 1)]
        self.runs += 1
        if step == "raise":
            raise OSError(f"device gone (run {self.runs})")
        if step == "return":
            return
        if step == "hang":  # starting, never ok (a slow open)
            await asyncio.Event().wait()
        self.health.set(self.name, "ok")
        try:
            await asyncio.Event().wait()
        finally:
            self.cancelled += 1


async def wait_for(predicate: object, timeout: float = 3.0) -> None:
    """Poll a condition on the loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Restarts within milliseconds so the tests stay fast."""
    monkeypatch.setattr(supervisor_module, "BACKOFF_MIN_S", 0.01)


def test_backoff_doubles_with_jitter_and_caps() -> None:
    """Each delay lies in 50-100 % of min * 2^(attempt-1), never above the cap."""
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(BACKOFF_MAX_S, supervisor_module.BACKOFF_MIN_S * 2 ** (attempt - 1))
        delay = backoff_delay(attempt, rng)
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_delay(100, rng) <= BACKOFF_MAX_S


def test_failure_is_reported_then_restarted_and_the_reason_stays_visible() -> None:
    """A raising component is `failed` with its reason, restarted (counted), and while it
    starts again health still says what went wrong; once it works it is ok with no reason."""
    seen: list[tuple[str, str]] = []

    async def scenario() -> Scripted:
        health = Health()
        comp = Scripted("camera", health, ["raise", "hang"])
        sup = Supervisor(health)
        sup.start(comp)
        await wait_for(lambda: comp.runs == 2)
        got = health.get("camera")
        assert got is not None
        seen.append((got.state, got.reason))
        assert got.restarts == 1
        await sup.stop(1.0)
        return comp

    comp = asyncio.run(scenario())
    assert seen == [("starting", "retrying after: OSError: device gone (run 1)")]
    assert comp.runs == 2


def test_a_component_that_returns_is_restarted() -> None:
    """Returning from run() is a failure too ("stopped unexpectedly")."""

    async def scenario() -> None:
        health = Health()
        comp = Scripted("hid", health, ["return", "serve"])
        sup = Supervisor(health)
        sup.start(comp)
        await wait_for(lambda: health.get("hid") is not None and health.get("hid").state == "ok")  # type: ignore[union-attr]
        got = health.get("hid")
        assert got is not None
        assert (got.reason, got.restarts) == ("", 1)
        await sup.stop(1.0)
        assert comp.cancelled == 1

    asyncio.run(scenario())


def test_restart_on_request_and_unknown_names() -> None:
    """restart(name) cancels and starts a working component again; unknown names are False."""

    async def scenario() -> None:
        health = Health()
        comp = Scripted("printer", health, ["serve"])
        sup = Supervisor(health)
        sup.start(comp)
        await wait_for(lambda: comp.runs == 1)
        assert sup.restart("printer") is True
        assert sup.restart("nope") is False
        await wait_for(lambda: comp.runs == 2)
        assert comp.cancelled == 1
        assert sup.names == ["printer"]
        await sup.stop(1.0)
        assert comp.cancelled == 2
        assert sup.names == []

    asyncio.run(scenario())


def test_stop_is_bounded_when_a_component_ignores_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A component that swallows cancellation cannot hold the shutdown past the timeout."""

    class Stubborn:
        name = "stubborn"

        async def run(self) -> None:
            while True:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    continue

    async def scenario() -> float:
        sup = Supervisor(Health())
        sup.start(Stubborn())
        await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await sup.stop(0.2)
        return loop.time() - started

    async def main() -> float:
        elapsed = await scenario()
        # The stubborn task is still pending; cancel it for good so the loop can close.
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.get_coro().close()  # type: ignore[union-attr]
        return elapsed

    elapsed = asyncio.run(main())
    assert elapsed < 1.0
    assert "did not stop in time" in caplog.text


def test_state_changes_ignore_restart_churn() -> None:
    """ok -> failed is one change; failed -> starting -> failed is none; recovery is one."""
    from edge.health import state_changes

    settled: dict[str, str] = {}
    first = state_changes(settled, {"kiosk": {"state": "ok"}, "beacons": {"state": "starting"}})
    assert first == [{"component": "kiosk", "state": "ok", "previous": ""}]
    failed = {"state": "failed", "reason": "OSError: no adapter"}
    assert state_changes(settled, {"kiosk": {"state": "ok"}, "beacons": failed}) == [
        {"component": "beacons", "state": "failed", "previous": "", "reason": "OSError: no adapter"}
    ]
    assert state_changes(settled, {"beacons": {"state": "starting"}}) == []
    assert state_changes(settled, {"beacons": failed}) == []
    assert state_changes(settled, {"beacons": {"state": "ok"}}) == [
        {"component": "beacons", "state": "ok", "previous": "failed"}
    ]
