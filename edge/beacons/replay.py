"""Recorded advertisements: the JSON-lines format, and a source that replays a recording.

One line per advertisement, the shape of bleak's AdvertisementData (see ARCHITECTURE.md):
``{"t": 12.3, "address": "AA:BB:CC:DD:EE:FF", "rssi": -61, "tx_power": null,
"local_name": null, "manufacturer_data": {"76": "0215…"}, "service_data": {uuid: hex},
"service_uuids": []}``. Parsing is pure; a bad line raises :class:`RecordError` naming the
problem so callers can report the line number and go on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

# RSSI outside this range is not a radio reading (BlueZ reports 127 for "unknown").
RSSI_RANGE: Final = (-127, 20)
# Advertisement times are epoch seconds (`beacons record`) or seconds from the start of a
# hand-made trace; beyond about the year 2286 they are not times, and printing them as
# CloudEvents times (or sleeping until them in a replay) would overflow.
MAX_ABS_T: Final = 1e10
# Between two passes of a looping replay, leave this much silence beyond the exit timeout so
# every transmitter exits before the recording starts again.
LOOP_GAP_S: Final = 1.0

AdvertisementSink = Callable[[float, str, int, dict[int, bytes], dict[str, bytes]], None]


class RecordError(ValueError):
    """A recorded line is not a valid advertisement; the message says what is wrong."""


class ReplayError(RuntimeError):
    """The configured recording cannot be replayed; the message names it and the fix."""


class Advertisement:
    """One received advertisement (the fields bleak's AdvertisementData has, plus time)."""

    __slots__ = (
        "address",
        "local_name",
        "manufacturer_data",
        "rssi",
        "service_data",
        "service_uuids",
        "t",
        "tx_power",
    )

    def __init__(
        self,
        t: float,
        address: str,
        rssi: int,
        manufacturer_data: dict[int, bytes],
        service_data: dict[str, bytes],
        *,
        tx_power: int | None = None,
        local_name: str | None = None,
        service_uuids: list[str] | None = None,
    ) -> None:
        self.t = t
        self.address = address
        self.rssi = rssi
        self.manufacturer_data = manufacturer_data
        self.service_data = service_data
        self.tx_power = tx_power
        self.local_name = local_name
        self.service_uuids = service_uuids or []

    def as_dict(self) -> dict[str, Any]:
        """The JSON-lines shape."""
        return {
            "t": self.t,
            "address": self.address,
            "rssi": self.rssi,
            "tx_power": self.tx_power,
            "local_name": self.local_name,
            "manufacturer_data": {str(k): v.hex() for k, v in self.manufacturer_data.items()},
            "service_data": {k: v.hex() for k, v in self.service_data.items()},
            "service_uuids": list(self.service_uuids),
        }


def format_record(adv: Advertisement) -> str:
    """One JSON line (no newline) for an advertisement."""
    return json.dumps(adv.as_dict(), separators=(",", ":"))


def _hex(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise RecordError(f"{where} must be a hex string, got {type(value).__name__}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise RecordError(f"{where} is not valid hex: {value[:40]!r}") from None


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def parse_record(line: str) -> Advertisement:
    """Parse one JSON line into an Advertisement, or raise RecordError naming the problem."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise RecordError("not a JSON object")
    t = obj.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float) or not _finite(t):
        raise RecordError('"t" (seconds) must be a finite number')
    if abs(t) > MAX_ABS_T:
        raise RecordError(f'"t" {t:g} is not a time; give epoch seconds or seconds from the start')
    address = obj.get("address")
    if not isinstance(address, str) or not address:
        raise RecordError('"address" must be a non-empty string')
    rssi = obj.get("rssi")
    if isinstance(rssi, bool) or not isinstance(rssi, int):
        raise RecordError('"rssi" must be an integer (dBm)')
    if not RSSI_RANGE[0] <= rssi <= RSSI_RANGE[1]:
        raise RecordError(f'"rssi" {rssi} is outside {RSSI_RANGE[0]}..{RSSI_RANGE[1]} dBm')
    raw_mfr = obj.get("manufacturer_data") or {}
    raw_svc = obj.get("service_data") or {}
    if not isinstance(raw_mfr, dict) or not isinstance(raw_svc, dict):
        raise RecordError('"manufacturer_data" and "service_data" must be objects')
    mfr: dict[int, bytes] = {}
    for key, value in raw_mfr.items():
        if not (key.isascii() and key.isdigit()) or int(key) > 0xFFFF:
            raise RecordError(
                f"manufacturer_data key {key!r} must be a company id in decimal (0-65535)"
            )
        mfr[int(key)] = _hex(value, f"manufacturer_data[{key}]")
    svc = {str(k).lower(): _hex(v, f"service_data[{k}]") for k, v in raw_svc.items()}
    tx_power = obj.get("tx_power")
    if tx_power is not None and (isinstance(tx_power, bool) or not isinstance(tx_power, int)):
        raise RecordError('"tx_power" must be an integer or null')
    local_name = obj.get("local_name")
    if local_name is not None and not isinstance(local_name, str):
        raise RecordError('"local_name" must be a string or null')
    uuids = obj.get("service_uuids") or []
    if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
        raise RecordError('"service_uuids" must be a list of strings')
    return Advertisement(
        float(t),
        address,
        rssi,
        mfr,
        svc,
        tx_power=tx_power,
        local_name=local_name,
        service_uuids=uuids,
    )


def read_recording(path: Path) -> Iterator[tuple[int, Advertisement | RecordError]]:
    """(line number, advertisement or the error) for every non-blank line of a recording."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, parse_record(line)
            except RecordError as exc:
                yield lineno, exc


def load_recording(path: Path) -> list[Advertisement]:
    """Every valid advertisement of a recording in time order; bad lines are logged."""
    advs: list[Advertisement] = []
    for lineno, item in read_recording(path):
        if isinstance(item, RecordError):
            _LOGGER.warning("%s:%d: skipped: %s", path, lineno, item)
        else:
            advs.append(item)
    advs.sort(key=lambda a: a.t)
    return advs


class ReplaySource:
    """Plays a recording in real time (optionally looping) into the proximity engine.

    Advertisement time continues across loops (each pass is shifted by the recording's
    length plus a silence longer than ``exit_after_s``), so the logic never sees time go back.
    """

    mode = "replay"

    def __init__(self, path: Path, *, loop: bool, exit_after_s: float, speed: float = 1.0) -> None:
        self.path = path
        self.loop = loop
        self.speed = speed
        self._gap = exit_after_s + LOOP_GAP_S
        self._origin_wall = time.time()
        self._origin_t = 0.0
        self._origin_mono = time.monotonic()

    def now(self) -> float:
        """The current time on the recording's clock."""
        return self._origin_t + (time.monotonic() - self._origin_mono) * self.speed

    def wall_time(self, t: float) -> float:
        """Epoch seconds for a time on the recording's clock."""
        return self._origin_wall + (t - self._origin_t) / self.speed

    async def async_run(self, sink: AdvertisementSink, on_started: Callable[[], None]) -> None:
        """Replay until the end (or forever when looping)."""
        try:
            advs = await asyncio.to_thread(load_recording, self.path)
        except OSError as exc:
            raise ReplayError(
                f"cannot read the recording {self.path} ({exc.strerror or exc}); fix "
                "beacons.replay_file, or remove it to scan the radio"
            ) from None
        if not advs:
            raise ReplayError(
                f"recording {self.path} holds no valid advertisement; record one with "
                "`kiosk-edge beacons record` or fix beacons.replay_file"
            )
        first, last = advs[0].t, advs[-1].t
        self._origin_t = first
        self._origin_mono = time.monotonic()
        self._origin_wall = time.time()
        on_started()
        offset = 0.0
        while True:
            for adv in advs:
                t = adv.t + offset
                delay = (t - self._origin_t) / self.speed - (time.monotonic() - self._origin_mono)
                if delay > 0:
                    await asyncio.sleep(delay)
                sink(t, adv.address, adv.rssi, adv.manufacturer_data, adv.service_data)
            if not self.loop:
                return
            offset += (last - first) + self._gap
