"""The supervised beacons component: a source of advertisements feeding the proximity engine.

The source is the bleak scanner, or a recording when ``beacons.replay_file`` is set. Events
go onto the bus from the event loop; exits of silent transmitters are checked once a second
even when nothing is heard; health carries the advertisement rate and the scanning mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Protocol

from edge.beacons.allowlist import Allowlist, AllowlistError
from edge.beacons.proximity import ProximityEngine, ProximityEvent, ProximitySettings
from edge.beacons.replay import AdvertisementSink, ReplaySource
from edge.events import new_event

if TYPE_CHECKING:
    from edge.config import BeaconsConfig
    from edge.services import Services
    from edge.supervisor import Component

_LOGGER = logging.getLogger(__name__)

NAME: Final = "beacons"
# Exits are checked and health metrics refreshed this often (seconds of wall time).
TICK_S: Final = 1.0
# The advertisement rate in health is averaged over this window.
RATE_WINDOW_S: Final = 10.0


class AdvertisementSource(Protocol):
    """Where advertisements come from: the radio or a recording."""

    mode: str  # "passive", "active" or "replay"

    def now(self) -> float:
        """The current time on the advertisements' clock."""
        ...

    def wall_time(self, t: float) -> float:
        """Epoch seconds for a time on the advertisements' clock."""
        ...

    async def async_run(self, sink: AdvertisementSink, on_started: Callable[[], None]) -> None:
        """Deliver advertisements to ``sink`` until cancelled (or the recording ends)."""
        ...


def build_allowlist(config: BeaconsConfig) -> Allowlist:
    """The allowlist of a beacons configuration (raises AllowlistError)."""
    return Allowlist.build(
        config.ibeacon_uuids, config.app_uuids, config.eddystone_namespaces, config.altbeacon_ids
    )


def build_engine(
    config: BeaconsConfig, salt: str, allowlist: Allowlist | None = None
) -> ProximityEngine:
    """The proximity engine for a beacons configuration (raises AllowlistError/ValueError)."""
    if allowlist is None:
        allowlist = build_allowlist(config)
    return ProximityEngine(allowlist, ProximitySettings.from_config(config), salt)


class BeaconsComponent:
    """Runs a source into the proximity engine and publishes the events on the bus."""

    name = NAME

    def __init__(
        self, services: Services, source: AdvertisementSource, allowlist: Allowlist | None = None
    ) -> None:
        self.services = services
        self.source = source
        self.engine = build_engine(services.config.beacons, services.salt, allowlist)
        self._window_start_count = 0
        self._window_start = 0.0

    def _publish(self, events: list[ProximityEvent]) -> None:
        bus = self.services.bus
        wall = self.source.wall_time
        for ev in events:
            moment = datetime.fromtimestamp(wall(ev.t), UTC)
            bus.publish(new_event(ev.type, ev.data, moment))

    def _sink(
        self, t: float, address: str, rssi: int, mfr: dict[int, bytes], svc: dict[str, bytes]
    ) -> None:
        engine = self.engine
        engine.feed(t, address, rssi, mfr, svc)
        if engine.events:
            self._publish(engine.take_events())

    def _on_started(self) -> None:
        health = self.services.health
        current = health.get(NAME)
        # The scanner may have said "degraded" (active fallback) already: keep that.
        if current is None or current.state != "degraded":
            health.set(NAME, "ok")
        health.metric(NAME, "scanning_mode", self.source.mode)

    async def _async_tick(self) -> None:
        loop = asyncio.get_running_loop()
        self._window_start = loop.time()
        self._window_start_count = self.engine.advertisements
        health = self.services.health
        while True:
            await asyncio.sleep(TICK_S)
            self.engine.expire(self.source.now())
            if self.engine.events:
                self._publish(self.engine.take_events())
            now = loop.time()
            elapsed = now - self._window_start
            if elapsed >= RATE_WINDOW_S:
                count = self.engine.advertisements
                rate = (count - self._window_start_count) / elapsed
                health.metric(NAME, "adv_per_s", round(rate, 1))
                health.metric(NAME, "tracked", self.engine.tracked)
                if self.engine.overflow:
                    health.metric(NAME, "overflow", self.engine.overflow)
                health.metric(NAME, "scanning_mode", self.source.mode)
                self._window_start, self._window_start_count = now, count

    async def run(self) -> None:
        """Scan (or replay) until cancelled."""
        ticker = asyncio.create_task(self._async_tick(), name="beacons:tick")
        try:
            await self.source.async_run(self._sink, self._on_started)
            # A recording that does not loop has ended: everyone leaves, then stay idle.
            self.engine.flush()
            self._publish(self.engine.take_events())
            self.services.health.set(NAME, "ok", "replay finished")
            await asyncio.Event().wait()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker


def create_component(services: Services) -> Component | None:
    """The daemon's factory: None when disabled; replay when a file is set, else bleak."""
    config = services.config.beacons
    if not config.enabled:
        return None
    try:
        allowlist = build_allowlist(config)
    except AllowlistError as exc:
        _LOGGER.error("beacons disabled: %s", exc)
        return None
    if allowlist.empty:
        _LOGGER.warning(
            "beacons: the allowlist is empty, every advertisement will be dropped; "
            "set beacons.ibeacon_uuids, app_uuids or eddystone_namespaces"
        )
    source: AdvertisementSource
    if config.replay_file is not None:
        source = ReplaySource(
            config.replay_file, loop=config.replay_loop, exit_after_s=config.exit_after_s
        )
    else:
        from edge.beacons.scanner import BleakSource

        source = BleakSource(
            adapter=config.adapter,
            mode=config.scanning_mode,
            allowlist=allowlist,
            health=services.health,
            health_name=NAME,
        )
    return BeaconsComponent(services, source, allowlist)
