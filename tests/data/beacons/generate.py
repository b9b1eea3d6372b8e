#!/usr/bin/env python3
"""Generate realistic beacon recordings (deterministic seeds): the demo trace and bench traces.

The demo trace (``firmware_config/demo/beacons.jsonl``) is three minutes in a store: two
iBeacon store beacons and one Eddystone-UID beacon, all sending TLM; five shoppers' phones
running the store app (one walks past, three stop at the kiosk, one stops near it, one
rotates its token mid-visit); and foreign transmitters that must be ignored (Apple
Continuity, Microsoft CDP, Exposure Notification, Google Fast Pair, another shop's
iBeacons, a foreign Eddystone-UID and URL, an AltBeacon). RSSI follows the log-distance
model with ±6 dB noise and 10 % packet loss.

Usage: python tests/data/beacons/generate.py [OUT.jsonl]   (default: the demo file)
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from edge.beacons import encode  # noqa: E402
from edge.beacons.frames import EDDYSTONE_UUID  # noqa: E402

DEMO_OUT = REPO / "firmware_config" / "demo" / "beacons.jsonl"
DEMO_SEED = 20260115
# 2026-01-15T10:00:00Z: recordings carry epoch seconds like `beacons record` writes.
T0 = 1768471200.0
STORE_UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
APP_UUID = "e2c56db5-dffb-48d2-b060-d0f5a71096e0"
NAMESPACE = "edd1ebeac04e5defa017"
FOREIGN_UUID = "b9407f30-f5f8-466e-aff9-25556b57fe6d"  # another shop's Estimote beacons
EXPONENT = 2.2
NOISE_DB = 6.0
LOSS = 0.1

Distance = Callable[[float], float | None]  # metres at time t, None: out of range


def random_mac(rng: random.Random, random_static: bool = True) -> str:
    """A MAC address; phones use random (resolvable/static) addresses."""
    first = rng.randrange(256)
    if random_static:
        first |= 0xC0
    rest = [rng.randrange(256) for _ in range(5)]
    return ":".join(f"{b:02X}" for b in [first, *rest])


def visit(
    start: float, stop_at: float, stay: float, *, far: float = 12.0, speed: float = 0.9
) -> Distance:
    """Walk in from ``far`` metres to ``stop_at``, stay ``stay`` s, walk away again."""
    leg = (far - stop_at) / speed

    def distance(t: float) -> float | None:
        dt = t - start
        if dt < 0 or dt > 2 * leg + stay:
            return None
        if dt < leg:
            return far - speed * dt
        if dt < leg + stay:
            return stop_at + 0.05 * math.sin(dt)  # a shopper shifts a little
        return stop_at + speed * (dt - leg - stay)

    return distance


def fixed(metres: float) -> Distance:
    """A transmitter that does not move and is always on."""
    return lambda _t: metres


@dataclass
class Transmitter:
    """One radio: its address, its payload(s) over time, rate and path."""

    address: str
    interval: float
    distance: Distance
    frames: Callable[[float, int], tuple[dict[int, bytes], dict[str, bytes]]]
    tx_1m: int = -59
    local_name: str | None = None
    service_uuids: list[str] = field(default_factory=list)


def ibeacon_frames(uuid: str, major: int, minor: Callable[[float], int] | int, tx: int = -59):
    """iBeacon payloads; ``minor`` may change with time (a rotating app token)."""

    def frames(t: float, _n: int) -> tuple[dict[int, bytes], dict[str, bytes]]:
        m = minor(t) if callable(minor) else minor
        return {0x004C: encode.ibeacon(uuid, major, m, tx)}, {}

    return frames


def with_tlm(base, every: int, battery_mv: int, temp: float, boot_uptime: float):
    """Interleave a TLM frame every ``every`` advertisements (Kontakt/Estimote style)."""

    def frames(t: float, n: int) -> tuple[dict[int, bytes], dict[str, bytes]]:
        if n % every == every - 1:
            tlm = encode.eddystone_tlm(battery_mv, temp, 50_000 + n, boot_uptime + (t - T0))
            return {}, {EDDYSTONE_UUID: tlm}
        return base(t, n)

    return frames


def eddystone_uid_frames(namespace: str, instance: str, tx0: int = -20):
    """Eddystone-UID payloads (power at 0 m)."""
    data = encode.eddystone_uid(namespace, instance, tx0)
    return lambda _t, _n: ({}, {EDDYSTONE_UUID: data})


def const_frames(mfr: dict[int, bytes], svc: dict[str, bytes]):
    """The same payload every time."""
    return lambda _t, _n: (mfr, svc)


def demo_transmitters(rng: random.Random) -> list[Transmitter]:
    """The demo store's radios (see the module docstring)."""
    txs: list[Transmitter] = []
    # Store beacons, 1 Hz, TLM every 10th advertisement.
    txs.append(
        Transmitter(
            "D4:1E:7A:00:10:01",
            1.0,
            fixed(3.0),
            with_tlm(ibeacon_frames(STORE_UUID, 100, 1), 10, 2980, 21.5, 86_400.0),
        )
    )
    txs.append(
        Transmitter(
            "D4:1E:7A:00:10:02",
            1.0,
            fixed(6.5),
            with_tlm(ibeacon_frames(STORE_UUID, 100, 2), 10, 2410, 19.25, 3_600.0),
        )
    )
    txs.append(
        Transmitter(
            "D4:1E:7A:00:20:01",
            1.0,
            fixed(1.5),
            with_tlm(eddystone_uid_frames(NAMESPACE, "000000000001"), 10, 3050, 22.0, 7_200.0),
            tx_1m=-61,
        )
    )
    # Shoppers' phones running the store app (5 Hz, token in major/minor).
    phones = [
        (5.0, 3.0, 0.0),  # walks past at 3 m
        (20.0, 0.25, 35.0),  # stops at the kiosk, phone in hand
        (60.0, 1.5, 25.0),  # stops near the kiosk
        (95.0, 0.3, 30.0),  # stops at the kiosk
        (125.0, 0.25, 20.0),  # stops at the kiosk
    ]
    for i, (start, stop_at, stay) in enumerate(phones):
        major = rng.randrange(1, 0xFFFF)
        minor = rng.randrange(0xFFFF)
        txs.append(
            Transmitter(
                random_mac(rng),
                0.2,
                visit(start, stop_at, stay),
                ibeacon_frames(APP_UUID, major, minor),
            )
        )
        if i == 2:
            # This phone's app rotates its token mid-visit: same radio, new identity.
            rotate_at = T0 + start + 25.0
            txs[-1].frames = ibeacon_frames(
                APP_UUID, major, lambda t, m=minor, r=rotate_at: m if t < r else (m + 1) & 0xFFFF
            )
    # Foreign transmitters: never an event.
    txs += [
        Transmitter(
            random_mac(rng),
            0.3,
            fixed(2.0),
            const_frames({0x004C: bytes.fromhex("1005031c0a1f3c")}, {}),
        ),  # Apple Continuity "nearby info" from a shopper's iPhone
        Transmitter(
            random_mac(rng),
            0.5,
            fixed(4.0),
            const_frames({0x0006: bytes.fromhex("0109200255d1a7d2cb7f0e8a13bd4c5b4a6d0f")}, {}),
        ),  # Microsoft CDP from a laptop
        Transmitter(
            random_mac(rng),
            0.25,
            fixed(5.0),
            const_frames(
                {},
                {
                    "0000fd6f-0000-1000-8000-00805f9b34fb": bytes(
                        rng.randrange(256) for _ in range(20)
                    )
                },
            ),
            service_uuids=["0000fd6f-0000-1000-8000-00805f9b34fb"],
        ),  # Exposure Notification
        Transmitter(
            random_mac(rng),
            1.0,
            fixed(3.5),
            const_frames({}, {"0000fe2c-0000-1000-8000-00805f9b34fb": bytes.fromhex("00b7270a")}),
        ),  # Google Fast Pair earbuds
        Transmitter(
            "E2:00:00:AA:00:01", 1.0, fixed(2.0), ibeacon_frames(FOREIGN_UUID, 7, 7)
        ),  # the shop next door's beacon through the wall
        Transmitter(
            "E2:00:00:AA:00:02",
            1.0,
            fixed(8.0),
            eddystone_uid_frames("00112233445566778899", "aabbccddeeff"),
        ),
        Transmitter(
            "E2:00:00:AA:00:03",
            2.0,
            fixed(4.0),
            const_frames({}, {EDDYSTONE_UUID: encode.eddystone_url("https://goo.gl/S6zT6P", -20)}),
        ),
        Transmitter(
            "E2:00:00:AA:00:04",
            1.0,
            fixed(7.0),
            const_frames(
                {0x0118: encode.altbeacon("2f234454-cf6d-4a0f-adf2-f4911ba9ffa6", 1, 2, -59)}, {}
            ),
        ),
    ]
    return txs


def bench_transmitters(rng: random.Random, count: int, allowed_share: float) -> list[Transmitter]:
    """``count`` transmitters, a share of them allowed (store beacons and app phones)."""
    txs: list[Transmitter] = []
    for i in range(count):
        mac = random_mac(rng)
        d = rng.uniform(0.3, 10.0)
        kind = rng.random()
        if rng.random() < allowed_share:
            if kind < 0.5:
                frames = ibeacon_frames(APP_UUID, rng.randrange(0xFFFF), rng.randrange(0xFFFF))
            elif kind < 0.8:
                frames = with_tlm(ibeacon_frames(STORE_UUID, 200, i), 10, 3000, 20.0, 100.0)
            else:
                frames = with_tlm(
                    eddystone_uid_frames(NAMESPACE, f"{i:012x}"), 10, 3000, 20.0, 100.0
                )
        elif kind < 0.4:
            frames = const_frames({0x004C: bytes.fromhex("1005031c0a1f3c")}, {})
        elif kind < 0.6:
            frames = ibeacon_frames(FOREIGN_UUID, i, i)
        elif kind < 0.8:
            frames = const_frames({0x0006: bytes(rng.randrange(256) for _ in range(27))}, {})
        else:
            frames = eddystone_uid_frames("00112233445566778899", f"{i:012x}")
        txs.append(Transmitter(mac, rng.choice([0.1, 0.2, 0.5, 1.0]), fixed(d), frames))
    return txs


def simulate(
    rng: random.Random, transmitters: list[Transmitter], duration: float
) -> Iterator[dict[str, object]]:
    """Every received advertisement in time order, in the recording's JSON shape."""
    events: list[tuple[float, int, int]] = []
    for index, tx in enumerate(transmitters):
        t = rng.uniform(0, tx.interval)
        n = 0
        while t < duration:
            events.append((t, index, n))
            n += 1
            # BLE adds 0-10 ms of random advertising delay to every interval.
            t += tx.interval + rng.uniform(0, 0.01)
    events.sort()
    for t, index, n in events:
        tx = transmitters[index]
        d = tx.distance(t)
        if d is None or rng.random() < LOSS:
            continue
        mean = tx.tx_1m - 10 * EXPONENT * math.log10(max(d, 0.05))
        rssi = max(-100, min(-20, round(mean + rng.uniform(-NOISE_DB, NOISE_DB))))
        if rssi <= -100:
            continue  # below the radio's sensitivity
        mfr, svc = tx.frames(T0 + t, n)
        yield {
            "t": round(T0 + t, 3),
            "address": tx.address,
            "rssi": rssi,
            "tx_power": None,
            "local_name": tx.local_name,
            "manufacturer_data": {str(k): v.hex() for k, v in mfr.items()},
            "service_data": {k: v.hex() for k, v in svc.items()},
            "service_uuids": tx.service_uuids,
        }


def write(path: Path, records: Iterator[dict[str, object]]) -> int:
    """Write JSON lines; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
            count += 1
    return count


def main(argv: list[str]) -> int:
    """Write the demo recording."""
    out = Path(argv[0]) if argv else DEMO_OUT
    rng = random.Random(DEMO_SEED)
    count = write(out, simulate(rng, demo_transmitters(rng), 180.0))
    print(f"{out}: {count} advertisements")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
