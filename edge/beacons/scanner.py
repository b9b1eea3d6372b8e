"""The bleak adapter: BlueZ scanning on a chosen adapter, passive when possible.

The only module that imports bleak. Passive scanning (no scan requests, less airtime, fewer
battery-draining scan responses from phones) needs BlueZ's AdvertisementMonitor API with
or-patterns; the patterns match the beacon payload prefixes themselves (Apple's iBeacon
header, the AltBeacon code, the Eddystone service) rather than the flags byte, which many
beacons set differently. When the adapter or BlueZ cannot scan passively we fall back to
active scanning with ``DuplicateData`` on (BlueZ otherwise reports each device once and RSSI
tracking starves, bleak issue 1065) and say so in health as ``degraded``. Errors restart
scanning with exponential backoff; a long silence restarts it too, because BlueZ going away
and coming back (bluetoothd restart, adapter reset) stops discovery without telling bleak.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Literal

from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.exc import BleakError

from edge.beacons.allowlist import Allowlist
from edge.beacons.replay import Advertisement, AdvertisementSink
from edge.supervisor import backoff_delay

if TYPE_CHECKING:
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    from edge.health import Health

_LOGGER = logging.getLogger(__name__)

# Or-patterns for passive scanning, on the payload rather than the flags byte.
# iBeacon: manufacturer data starting with Apple's company id (little-endian) and 0x02 0x15.
IBEACON_PATTERN: Final = OrPattern(
    0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, b"\x4c\x00\x02\x15"
)
# AltBeacon: any company id (2 bytes), then the beacon code 0xBEAC.
ALTBEACON_PATTERN: Final = OrPattern(
    2, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, b"\xbe\xac"
)
# Eddystone: 16-bit service data of UUID 0xFEAA (little-endian).
EDDYSTONE_PATTERN: Final = OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\xaa\xfe")
# A store always has its own beacons in range: a minute without a single advertisement means
# discovery stopped behind our back (BlueZ restarted, adapter reset), so scanning restarts.
STALL_RESTART_S: Final = 60.0
# How often the stall watchdog looks.
WATCH_INTERVAL_S: Final = 1.0
# Errors that mean "BlueZ or the adapter is not working right now": retried with backoff.
SCAN_ERRORS: Final = (BleakError, OSError, EOFError, asyncio.TimeoutError)


class ScannerStalled(RuntimeError):
    """No advertisement for too long: scanning is restarted."""


def or_patterns(allowlist: Allowlist | None) -> list[OrPattern]:
    """The passive-scan patterns for the frame types the allowlist can match (all if None)."""
    if allowlist is None:
        return [IBEACON_PATTERN, ALTBEACON_PATTERN, EDDYSTONE_PATTERN]
    patterns = []
    if allowlist.ibeacon:
        patterns.append(IBEACON_PATTERN)
    if allowlist.altbeacon:
        patterns.append(ALTBEACON_PATTERN)
    if allowlist.namespaces:
        patterns.append(EDDYSTONE_PATTERN)
    return patterns or [IBEACON_PATTERN, ALTBEACON_PATTERN, EDDYSTONE_PATTERN]


def scanner_args(
    adapter: str, mode: Literal["passive", "active"], allowlist: Allowlist | None
) -> BlueZScannerArgs:
    """bleak's BlueZ arguments: the adapter, DuplicateData for active, patterns for passive."""
    if mode == "passive":
        return {"adapter": adapter, "or_patterns": list(or_patterns(allowlist))}
    return {"adapter": adapter, "filters": {"DuplicateData": True, "Transport": "le"}}


class BleakSource:
    """Advertisements from a BlueZ adapter through bleak, restarted on errors."""

    def __init__(
        self,
        *,
        adapter: str,
        mode: Literal["passive", "active"],
        allowlist: Allowlist | None,
        health: Health | None = None,
        health_name: str = "beacons",
        stall_restart_s: float = STALL_RESTART_S,
    ) -> None:
        self.adapter = adapter
        self.preferred: Literal["passive", "active"] = mode
        self.mode: str = mode
        self.allowlist = allowlist
        self.health = health
        self.health_name = health_name
        self.stall_restart_s = stall_restart_s
        self.restarts = 0
        self.last_error = ""  # why scanning last failed (for the recorder's message)
        self._last_adv = time.monotonic()

    def now(self) -> float:
        """Advertisements are stamped with the monotonic clock.

        A Pi has no real-time clock: NTP moves the wall clock by months after boot, which
        must not make every shopper "leave", or stay for months.
        """
        return time.monotonic()

    def wall_time(self, t: float) -> float:
        """Epoch seconds for a monotonic advertisement time."""
        return time.time() - (time.monotonic() - t)

    def _report(self, state: Literal["ok", "degraded", "failed"], reason: str = "") -> None:
        if self.health is not None:
            self.health.set(self.health_name, state, reason)
            self.health.metric(self.health_name, "scanning_mode", self.mode)

    async def _async_start(self, callback: Callable[..., None]) -> tuple[BleakScanner, str]:
        """Start scanning, passive first when asked; returns the scanner and a health note."""
        if self.preferred == "passive":
            scanner = BleakScanner(
                callback,
                scanning_mode="passive",
                bluez=scanner_args(self.adapter, "passive", self.allowlist),
            )
            try:
                await scanner.start()
            except SCAN_ERRORS as exc:
                if "not found" in str(exc):
                    raise  # no such adapter: active scanning would fail the same way
                note = f"passive scanning unavailable on {self.adapter} ({exc}); scanning actively"
                _LOGGER.warning("%s", note)
            else:
                self.mode = "passive"
                return scanner, ""
        else:
            note = ""
        scanner = BleakScanner(
            callback,
            scanning_mode="active",
            bluez=scanner_args(self.adapter, "active", self.allowlist),
        )
        await scanner.start()
        self.mode = "active"
        return scanner, note

    async def async_run(self, sink: AdvertisementSink, on_started: Callable[[], None]) -> None:
        """Scan until cancelled; restart with backoff after errors and long silences."""
        clock = time.monotonic

        def callback(device: BLEDevice, adv: AdvertisementData) -> None:
            sink(clock(), device.address, adv.rssi, adv.manufacturer_data, adv.service_data)

        await self.async_run_callback(callback, on_started)

    async def async_run_callback(
        self,
        callback: Callable[[BLEDevice, AdvertisementData], None],
        on_started: Callable[[], None],
    ) -> None:
        """Scan with a raw bleak detection callback (the recorder wants every field)."""

        def watched(device: BLEDevice, adv: AdvertisementData) -> None:
            self._last_adv = time.monotonic()
            callback(device, adv)

        attempt = 0
        while True:
            try:
                await self._async_scan(watched, on_started)
            except asyncio.CancelledError:
                raise
            except (*SCAN_ERRORS, ScannerStalled) as exc:
                attempt += 1
                self.restarts += 1
                self.last_error = str(exc)
                delay = backoff_delay(attempt)
                reason = f"scanning on {self.adapter} failed ({exc}); retrying in {delay:.0f} s"
                _LOGGER.warning("%s", reason)
                self._report("failed", reason)
                await asyncio.sleep(delay)
            else:
                attempt = 0

    async def _async_scan(
        self, callback: Callable[..., None], on_started: Callable[[], None]
    ) -> None:
        scanner, note = await self._async_start(callback)
        try:
            self._last_adv = time.monotonic()
            if note:
                self._report("degraded", note)
            else:
                self._report("ok")
            on_started()
            while True:
                await asyncio.sleep(WATCH_INTERVAL_S)
                silent = time.monotonic() - self._last_adv
                if silent > self.stall_restart_s:
                    raise ScannerStalled(f"no advertisement for {silent:.0f} s")
        finally:
            with contextlib.suppress(Exception):
                await scanner.stop()


async def async_record(
    adapter: str,
    mode: Literal["passive", "active"],
    write: Callable[[Advertisement], None],
    duration_s: float | None,
) -> BleakSource:
    """Record every advertisement heard (no allowlist) until ``duration_s`` or cancelled.

    Returns the source, whose ``last_error`` says why scanning failed if it did.
    """

    def callback(device: BLEDevice, adv: AdvertisementData) -> None:
        write(
            Advertisement(
                round(time.time(), 3),
                device.address,
                adv.rssi,
                dict(adv.manufacturer_data),
                dict(adv.service_data),
                tx_power=adv.tx_power,
                local_name=adv.local_name,
                service_uuids=list(adv.service_uuids),
            )
        )

    source = BleakSource(adapter=adapter, mode=mode, allowlist=None)
    task = asyncio.ensure_future(source.async_run_callback(callback, lambda: None))
    try:
        if duration_s is None:
            await task
        else:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), duration_s)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return source
