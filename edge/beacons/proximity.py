"""From advertisements to enter / zone / exit / telemetry events: pure, clock-free logic.

Per transmitter the RSSI is smoothed with a one-dimensional Kalman filter. Why Kalman rather
than a one-euro filter: the quantity we track is a level that drifts (the shopper walks) under
heavy, roughly Gaussian measurement noise at an irregular sampling rate (phones advertise at
1-10 Hz and BlueZ drops some), and a Kalman filter weighs each sample by the time since the
previous one in a principled way; the one-euro filter is tuned for low-lag pointer jitter
and lets ±6 dB fading spikes through when the signal moves. Distance comes from the
log-distance path-loss model with the frame's calibrated power; zones have a distance
hysteresis (expressed once per transmitter as RSSI thresholds so the hot path compares
floats) and a minimum dwell before a change is reported. A transmitter exits after a
configurable silence. Time is the advertisement's timestamp, never the wall clock, so a
replay is deterministic.

The hot path (:meth:`ProximityEngine.feed`) checks byte prefixes and looks the identifier up
in precomputed sets before it creates anything, so a dropped advertisement costs a few dict
and slice operations.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from edge.beacons.allowlist import Allowlist, BeaconClass
from edge.beacons.frames import (
    EDDYSTONE_TLM,
    EDDYSTONE_UID,
    EDDYSTONE_UUID,
    EddystoneTlmFrame,
    format_uuid,
    parse_eddystone,
)
from edge.privacy import hash_identifier

if TYPE_CHECKING:
    from edge.config import BeaconsConfig

_LOGGER = logging.getLogger(__name__)

ZONES: Final[tuple[str, str, str]] = ("immediate", "near", "far")
FAR: Final = 2
# Kalman measurement noise (dB²): indoor RSSI of a still transmitter scatters about ±6 dB
# (σ ≈ 4 dB) from multipath fading and body shadowing.
MEASUREMENT_VARIANCE: Final = 16.0
# Kalman process noise (dB² per second): a shopper walking at 1 m/s two metres away changes
# the mean RSSI by about 5 dB/s; 6 dB²/s follows that within a second or two while still
# averaging several samples.
PROCESS_VARIANCE_PER_S: Final = 4.0
# After a long gap the estimate is as uncertain as a fresh sample: cap the variance there so
# the first sample after the gap is trusted about half.
MAX_VARIANCE: Final = MEASUREMENT_VARIANCE
# Smallest hysteresis in dB on either side of a boundary: the smoothed RSSI still wanders by
# about 1 dB (σ) under ±6 dB noise, and 0.3 m at a 2.5 m boundary is only 1.1 dB.
MIN_HYSTERESIS_DB: Final = 2.0
# Samples a pending zone change must also hold for (besides min_dwell_s): at 1 Hz a two-second
# dwell is only two noisy samples, too few to tell a step from a fading dip.
MIN_DWELL_SAMPLES: Final = 4
# Samples needed before a transmitter counts as present: one stray packet from a shopper
# passing outside the shop window must not make an enter/exit pair.
ENTER_MIN_SAMPLES: Final = 3
# Eddystone frames carry the power at 0 m; the specification says 41 dB are lost in the first
# metre, so the 1 m reference used by the path-loss model is 41 dB lower.
EDDYSTONE_0M_TO_1M_DB: Final = 41
# A frame with no usable calibration (0 dBm, or absurd values) falls back to the typical
# phone/beacon power at 1 m.
DEFAULT_TX_1M: Final = -59
TX_1M_RANGE: Final = (-100, -20)
# Most transmitters tracked at once. The app UUID is public, so anyone can advertise it with
# random tokens; beyond this many, new identities are ignored until others exit (a real shop
# floor has a few hundred at most).
MAX_TRACKS: Final = 4096
# How often (in advertisement time) silent transmitters are checked for exit during feed.
EXPIRE_EVERY_S: Final = 1.0


class ProximityEvent(NamedTuple):
    """One proximity event: its CloudEvents type, advertisement time and data."""

    type: str
    t: float
    data: dict[str, Any]


@dataclass(frozen=True)
class ProximitySettings:
    """The tunables of zones and timing (see BeaconsConfig for their meaning)."""

    path_loss_exponent: float = 2.2
    immediate_m: float = 0.6
    near_m: float = 2.5
    hysteresis_m: float = 0.3
    min_dwell_s: float = 2.0
    exit_after_s: float = 10.0
    telemetry_interval_s: float = 300.0

    def __post_init__(self) -> None:
        if self.near_m <= self.immediate_m + self.hysteresis_m:
            raise ValueError(
                f"near_m ({self.near_m}) must exceed immediate_m + hysteresis_m "
                f"({self.immediate_m} + {self.hysteresis_m}) or the zones overlap"
            )

    @classmethod
    def from_config(cls, config: BeaconsConfig) -> ProximitySettings:
        """Take the matching fields of a BeaconsConfig."""
        return cls(
            path_loss_exponent=config.path_loss_exponent,
            immediate_m=config.immediate_m,
            near_m=config.near_m,
            hysteresis_m=config.hysteresis_m,
            min_dwell_s=config.min_dwell_s,
            exit_after_s=config.exit_after_s,
            telemetry_interval_s=config.telemetry_interval_s,
        )


def calibrated_1m(kind: str, tx_power: int) -> int:
    """The expected RSSI at 1 m for a frame's tx power (Eddystone reports it at 0 m)."""
    tx = tx_power - EDDYSTONE_0M_TO_1M_DB if kind.startswith("eddystone") else tx_power
    if not TX_1M_RANGE[0] <= tx <= TX_1M_RANGE[1]:
        return DEFAULT_TX_1M
    return tx


def distance_m(rssi: float, tx_1m: float, exponent: float) -> float:
    """Log-distance path-loss model: metres at which ``tx_1m`` falls to ``rssi``."""
    return float(10.0 ** ((tx_1m - rssi) / (10.0 * exponent)))


def rssi_at(distance: float, tx_1m: float, exponent: float) -> float:
    """Inverse of :func:`distance_m`: the RSSI expected at ``distance`` metres."""
    return tx_1m - 10.0 * exponent * math.log10(distance)


def zone_index(distance: float, settings: ProximitySettings) -> int:
    """The zone (0 immediate, 1 near, 2 far) of a distance, without hysteresis."""
    if distance < settings.immediate_m:
        return 0
    if distance < settings.near_m:
        return 1
    return FAR


class Track:
    """The state of one allowed transmitter (plain slots: this is touched per advertisement)."""

    __slots__ = (
        "address",
        "beacon_class",
        "edges",
        "entered",
        "first_t",
        "id",
        "in_thresholds",
        "kind",
        "last_t",
        "last_telemetry",
        "out_thresholds",
        "pending",
        "pending_samples",
        "pending_since",
        "samples",
        "tx_1m",
        "tx_raw",
        "variance",
        "x",
        "zone",
    )

    def __init__(self, ident: str, kind: str, beacon_class: BeaconClass, t: float) -> None:
        self.id = ident
        self.kind = kind
        self.beacon_class = beacon_class
        self.first_t = t
        self.last_t = t
        self.samples = 0
        self.x = 0.0
        self.variance = MAX_VARIANCE
        self.tx_raw = -1  # the raw tx byte the thresholds were computed for
        self.tx_1m = DEFAULT_TX_1M
        self.zone = FAR
        self.entered = False
        self.pending = -1
        self.pending_since = t
        self.pending_samples = 0
        self.last_telemetry = -math.inf
        self.address = ""
        # RSSI below out_thresholds[z] moves outward from zone z; above in_thresholds[z]
        # moves inward from zone z (each is the boundary's RSSI shifted by the hysteresis).
        self.out_thresholds: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.in_thresholds: tuple[float, float, float] = (0.0, 0.0, 0.0)
        # RSSI at the plain zone boundaries (immediate/near, near/far).
        self.edges: tuple[float, float] = (0.0, 0.0)


class ProximityEngine:
    """Allowlist, RSSI filter, zones and exits for every transmitter; emits events."""

    def __init__(self, allowlist: Allowlist, settings: ProximitySettings, salt: str) -> None:
        self.allowlist = allowlist
        self.settings = settings
        self._salt = salt
        self._ibeacon = allowlist.ibeacon
        self._altbeacon = allowlist.altbeacon
        self._namespaces = allowlist.namespaces
        # Tracks by the raw identifier bytes the frame carries (uuid+major+minor, or
        # namespace+instance): no string is built for an advertisement of a known transmitter.
        self._tracks: dict[bytes, Track] = {}
        # Store beacons by address, so their TLM frames (which carry no id) find them.
        self._by_address: dict[str, Track] = {}
        self._next_expire = -math.inf
        self.events: list[ProximityEvent] = []
        self.advertisements = 0
        self.allowed = 0
        self.overflow = 0  # sightings dropped because MAX_TRACKS transmitters were tracked

    # -- feeding --------------------------------------------------------------------------

    def feed(
        self,
        t: float,
        address: str,
        rssi: int,
        manufacturer_data: Mapping[int, bytes],
        service_data: Mapping[str, bytes],
    ) -> None:
        """Process one advertisement; new events are appended to :attr:`events`."""
        self.advertisements += 1
        if t >= self._next_expire:
            self.expire(t)
        for company_id, data in manufacturer_data.items():
            size = len(data)
            if size == 23 and company_id == 0x004C and data[0] == 0x02 and data[1] == 0x15:
                beacon_class = self._ibeacon.get(data[2:18])
                if beacon_class is not None:
                    self._sight(data[2:22], "ibeacon", beacon_class, data, t, address, rssi)
            elif (
                size == 24 and data[0] == 0xBE and data[1] == 0xAC and data[2:18] in self._altbeacon
            ):
                self._sight(data[2:22], "altbeacon", "store", data, t, address, rssi)
        if service_data:
            eddy = service_data.get(EDDYSTONE_UUID)
            if eddy is not None and len(eddy) >= 2:
                frame_type = eddy[0]
                if frame_type == EDDYSTONE_UID:
                    if len(eddy) in (18, 20) and eddy[2:12] in self._namespaces:
                        self._sight(eddy[2:18], "eddystone-uid", "store", eddy, t, address, rssi)
                elif frame_type == EDDYSTONE_TLM:
                    track = self._by_address.get(address)
                    if track is not None:
                        self._telemetry(track, eddy, t, rssi)

    def _sight(  # noqa: PLR0917 - hot path: positional calls are measurably cheaper
        self,
        key: bytes,
        kind: str,
        beacon_class: BeaconClass,
        data: bytes,
        t: float,
        address: str,
        rssi: int,
    ) -> None:
        track = self._tracks.get(key)
        if track is None:
            if len(self._tracks) >= MAX_TRACKS:
                self.overflow += 1
                return
            track = self._new_track(key, kind, beacon_class, t)
        raw_tx = data[1] if kind == "eddystone-uid" else data[22]
        if raw_tx != track.tx_raw:
            self._calibrate(track, raw_tx)
        if beacon_class == "store" and track.address != address:
            self._by_address.pop(track.address, None)
            track.address = address
            self._by_address[address] = track
        self._update(track, t, rssi)

    def _new_track(self, key: bytes, kind: str, beacon_class: BeaconClass, t: float) -> Track:
        self.allowed += 1
        if beacon_class == "phone":
            # The rotating app token (major, minor) leaves the device only as a salted hash.
            token = f"{int.from_bytes(key[16:18], 'big')}:{int.from_bytes(key[18:20], 'big')}"
            ident = hash_identifier(self._salt, "phone", token)
        elif kind == "eddystone-uid":
            ident = f"{key[:10].hex()}:{key[10:16].hex()}"
        else:
            major = int.from_bytes(key[16:18], "big")
            minor = int.from_bytes(key[18:20], "big")
            ident = f"{format_uuid(key[:16])}:{major}:{minor}"
        track = Track(ident, kind, beacon_class, t)
        self._tracks[key] = track
        return track

    def _calibrate(self, track: Track, raw_tx: int) -> None:
        """Precompute the RSSI thresholds of the zone boundaries for this calibration."""
        track.tx_raw = raw_tx
        tx = calibrated_1m(track.kind, raw_tx - 256 if raw_tx > 127 else raw_tx)
        track.tx_1m = tx
        s = self.settings
        n = s.path_loss_exponent
        h = s.hysteresis_m
        track.edges = (rssi_at(s.immediate_m, tx, n), rssi_at(s.near_m, tx, n))
        edge_imm, edge_near = track.edges
        floor = MIN_HYSTERESIS_DB
        # Leaving zone z outward: distance above boundary z + h, i.e. RSSI below this.
        track.out_thresholds = (
            min(rssi_at(s.immediate_m + h, tx, n), edge_imm - floor),
            min(rssi_at(s.near_m + h, tx, n), edge_near - floor),
            -math.inf,
        )
        # Leaving zone z inward: distance below boundary z-1 - h, i.e. RSSI above this.
        track.in_thresholds = (
            math.inf,
            max(rssi_at(max(s.immediate_m - h, 0.01), tx, n), edge_imm + floor),
            max(rssi_at(s.near_m - h, tx, n), edge_near + floor),
        )

    def _update(self, track: Track, t: float, rssi: int) -> None:
        dt = t - track.last_t
        track.last_t = t
        if track.samples == 0:
            track.x = float(rssi)
            track.variance = MEASUREMENT_VARIANCE
        else:
            dt = max(dt, 0.0)
            p = track.variance + PROCESS_VARIANCE_PER_S * dt
            p = min(p, MAX_VARIANCE)
            gain = p / (p + MEASUREMENT_VARIANCE)
            track.x += gain * (rssi - track.x)
            track.variance = (1.0 - gain) * p
        track.samples += 1
        x = track.x
        if not track.entered:
            if track.samples >= ENTER_MIN_SAMPLES:
                track.entered = True
                track.zone = self._raw_zone(track)
                self._emit("kiosk.beacon.enter", track, t)
            return
        zone = track.zone
        if track.pending >= 0:
            # A pending change holds while the RSSI stays past the hysteresis threshold that
            # started it; it becomes real after the minimum dwell.
            if (
                x < track.out_thresholds[zone]
                if track.pending > zone
                else x > track.in_thresholds[zone]
            ):
                track.pending_samples += 1
                if (
                    t - track.pending_since >= self.settings.min_dwell_s
                    and track.pending_samples >= MIN_DWELL_SAMPLES
                ):
                    # One zone at a time, so consumers always see a walkable path.
                    track.zone = track.pending
                    track.pending = -1
                    self._emit("kiosk.beacon.zone", track, t, closer=track.zone < zone)
                return
            track.pending = -1
        if x < track.out_thresholds[zone]:
            track.pending = zone + 1
            track.pending_since = t
            track.pending_samples = 1
        elif x > track.in_thresholds[zone]:
            track.pending = zone - 1
            track.pending_since = t
            track.pending_samples = 1

    def _raw_zone(self, track: Track) -> int:
        return zone_index(self.distance(track), self.settings)

    def distance(self, track: Track) -> float:
        """The estimated distance of a transmitter in metres."""
        return distance_m(track.x, track.tx_1m, self.settings.path_loss_exponent)

    def _emit(
        self, type_: str, track: Track, t: float, *, dwell: bool = False, closer: bool = True
    ) -> None:
        data: dict[str, Any] = {
            "beacon_class": track.beacon_class,
            "id": track.id,
            "kind": track.kind,
            "zone": ZONES[track.zone],
            "rssi": round(track.x, 1),
            "distance_m": round(self.distance(track), 2),
        }
        if dwell:
            data["dwell_s"] = round(track.last_t - track.first_t, 1)
        self.events.append(ProximityEvent(type_, t, data))
        if track.beacon_class == "phone" and track.zone < FAR and closer and not dwell:
            # The kiosk offers "it's me" when a phone comes closer; never relayed.
            self.events.append(
                ProximityEvent("local.presence.phone", t, {"id": track.id, "zone": data["zone"]})
            )

    def _telemetry(self, track: Track, data: bytes, t: float, rssi: int) -> None:
        self._update(track, t, rssi)
        if t - track.last_telemetry < self.settings.telemetry_interval_s:
            return
        frame = parse_eddystone(data)
        if not isinstance(frame, EddystoneTlmFrame):
            return
        track.last_telemetry = t
        self.events.append(
            ProximityEvent(
                "kiosk.beacon.telemetry",
                t,
                {
                    "beacon_class": track.beacon_class,
                    "id": track.id,
                    "kind": frame.kind,
                    "battery_mv": frame.battery_mv,
                    "temperature_c": frame.temperature_c,
                    "adv_count": frame.adv_count,
                    "uptime_s": frame.uptime_s,
                },
            )
        )

    # -- time ---------------------------------------------------------------------------

    def expire(self, now: float) -> None:
        """Exit every transmitter silent for longer than ``exit_after_s`` at time ``now``."""
        self._next_expire = now + EXPIRE_EVERY_S
        limit = now - self.settings.exit_after_s
        gone = [key for key, track in self._tracks.items() if track.last_t < limit]
        for key in gone:
            self._drop(key, now)

    def flush(self, now: float | None = None) -> None:
        """Exit every transmitter (end of a replay, shutdown)."""
        for key in list(self._tracks):
            self._drop(key, now)

    def _drop(self, key: bytes, now: float | None) -> None:
        track = self._tracks.pop(key)
        if self._by_address.get(track.address) is track:
            del self._by_address[track.address]
        if track.entered:
            t = track.last_t + self.settings.exit_after_s if now is None else now
            self._emit("kiosk.beacon.exit", track, t, dwell=True)

    def take_events(self) -> list[ProximityEvent]:
        """The events produced since the last call (and forget them)."""
        events = self.events
        self.events = []
        return events

    @property
    def tracked(self) -> int:
        """Transmitters currently tracked."""
        return len(self._tracks)
