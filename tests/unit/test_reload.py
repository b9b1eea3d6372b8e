"""Live reload planning (which sections changed, what needs a restart, what to rebuild) and
the supervisor replacing one component while the others keep running."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.config import Config
from edge.daemon import COMPONENT_FACTORIES
from edge.health import Health
from edge.reload import COMPONENT_SECTIONS, RESTART_ONLY, plan_reload
from edge.supervisor import Supervisor

ORDER = [name for name, _ in COMPONENT_FACTORIES]


def test_every_factory_is_mapped_to_its_sections() -> None:
    """A new factory without an entry would silently never be rebuilt on a reload."""
    assert set(COMPONENT_SECTIONS) == set(ORDER)
    sections = set(Config.model_fields)
    for name, needed in COMPONENT_SECTIONS.items():
        assert set(needed) <= sections, name
    for dotted in RESTART_ONLY:
        section, key = dotted.split(".")
        assert key in type(getattr(Config(), section)).model_fields, dotted


def test_plan_lists_changed_sections_and_components_in_factory_order() -> None:
    """idle timeout, printer width and beacon exit: session, printer, mail, beacons rebuilt."""
    old = Config()
    new = old.model_copy(deep=True)
    new.kiosk.idle_timeout_s = 33.0
    new.printer.columns = 32
    new.beacons.exit_after_s = 4.0
    plan = plan_reload(old, new, ORDER)
    assert plan.changed_sections == ["beacons", "kiosk", "printer"]
    assert plan.needs_restart == []
    assert plan.components == ["session", "printer", "mail", "media", "beacons", "doctor"]
    assert "kiosk" not in plan.components  # the web server keeps serving
    assert plan.config.kiosk.idle_timeout_s == 33.0


def test_restart_only_keys_are_kept_and_reported() -> None:
    """A new store id or kiosk port is not applied; the rest of the file is."""
    old = Config()
    new = old.model_copy(deep=True)
    new.device.store_id = "other-store"
    new.kiosk.port = 9999
    new.mail.sender = "new@shop.example"
    plan = plan_reload(old, new, ORDER)
    assert plan.needs_restart == ["device.store_id", "kiosk.port"]
    assert plan.config.device.store_id == old.device.store_id
    assert plan.config.kiosk.port == old.kiosk.port
    assert plan.config.mail.sender == "new@shop.example"
    assert plan.changed_sections == ["mail"]
    assert plan.components == ["mail"]


def test_unchanged_file_rebuilds_nothing() -> None:
    """Reloading the same file is a no-op."""
    old = Config(device={"data_dir": Path("/tmp/x")})  # type: ignore[arg-type]
    plan = plan_reload(old, old.model_copy(deep=True), ORDER)
    assert (plan.changed_sections, plan.needs_restart, plan.components) == ([], [], [])


class Worker:
    """Serves until cancelled; counts its cancellations."""

    def __init__(self, name: str, health: Health, tag: str) -> None:
        self.name = name
        self.health = health
        self.tag = tag
        self.stopped = False

    async def run(self) -> None:
        self.health.set(self.name, "ok")
        try:
            await asyncio.Event().wait()
        finally:
            self.stopped = True


def test_replace_stops_the_old_before_building_the_new() -> None:
    """The old task has ended when build runs; the other component is untouched."""

    async def body() -> None:
        health = Health()
        sup = Supervisor(health)
        old, other = Worker("a", health, "old"), Worker("b", health, "other")
        sup.start(old)
        sup.start(other)
        await asyncio.sleep(0.05)
        seen: list[bool] = []

        def build() -> Worker:
            seen.append(old.stopped)
            return Worker("a", health, "new")

        new = await sup.replace("a", build)
        assert seen == [True]
        await asyncio.sleep(0.05)
        assert sup.component("a") is new
        assert health.get("a").state == "ok"  # type: ignore[union-attr]
        assert not other.stopped
        assert await sup.replace("a", lambda: None) is None
        assert health.get("a").state == "disabled"  # type: ignore[union-attr]
        assert sup.component("a") is None
        assert "a" not in sup.names
        await sup.stop(1.0)

    asyncio.run(body())


class Stubborn:
    """Ignores the first cancellation for a while (a slow device close)."""

    name = "slow"

    async def run(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # longer than the replace bound below
            raise


def test_replace_is_bounded_by_its_timeout() -> None:
    """A component that does not stop in time does not hold the reload up."""

    async def body() -> None:
        health = Health()
        sup = Supervisor(health)
        sup.start(Stubborn())
        await asyncio.sleep(0.02)
        loop = asyncio.get_running_loop()
        begun = loop.time()
        await sup.replace("slow", lambda: Worker("slow", health, "new"), timeout=0.05)
        assert loop.time() - begun < 0.15
        await asyncio.sleep(0.3)
        await sup.stop(1.0)

    asyncio.run(body())
