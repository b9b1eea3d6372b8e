"""Proximity: scripted noisy walks give one enter and one exit per visit and no zone flapping."""

from __future__ import annotations

import math
import random
import uuid as uuid_mod
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.beacons import encode
from edge.beacons.allowlist import Allowlist, AllowlistError
from edge.beacons.frames import EDDYSTONE_UUID
from edge.beacons.proximity import (
    ProximityEngine,
    ProximityEvent,
    ProximitySettings,
    distance_m,
    rssi_at,
)
from edge.privacy import hash_identifier

STORE_UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
APP_UUID = "e2c56db5-dffb-48d2-b060-d0f5a71096e0"
NAMESPACE = "edd1ebeac04e5defa017"
ALT_ID = "2f234454-cf6d-4a0f-adf2-f4911ba9ffa6"
SALT = "test-salt"
TX_1M = -59
EXPONENT = 2.2


def make_engine(**overrides: float) -> ProximityEngine:
    allow = Allowlist.build([STORE_UUID], [APP_UUID], [NAMESPACE], [ALT_ID])
    return ProximityEngine(allow, ProximitySettings(**overrides), SALT)  # type: ignore[arg-type]


Path_ = Callable[[float], float]


def walk_in_out(
    start: float = 8.0, closest: float = 0.25, speed: float = 0.8, stay: float = 20.0
) -> tuple[Path_, float]:
    """Distance over time: walk in from ``start`` to ``closest`` (phone held up to the kiosk),
    stay, walk back out and on for five seconds more."""
    leg = (start - closest) / speed

    def distance(t: float) -> float:
        if t < leg:
            return start - speed * t
        if t < leg + stay:
            return closest
        return min(start, closest + speed * (t - leg - stay))

    return distance, 2 * leg + stay + 5.0


def phone_advs(
    rng: random.Random,
    distance: Path_,
    duration: float,
    *,
    t0: float = 1000.0,
    major: int = 7,
    minor: int = 42,
    interval: float = 0.2,
    noise_db: float = 6.0,
    loss: float = 0.1,
) -> Iterator[tuple[float, int, bytes]]:
    """Noisy iBeacon sightings of a phone following ``distance`` (uniform ±noise, 10 % lost)."""
    payload = encode.ibeacon(APP_UUID, major, minor, TX_1M)
    t = 0.0
    while t <= duration:
        if rng.random() >= loss:
            mean = rssi_at(max(distance(t), 0.05), TX_1M, EXPONENT)
            rssi = round(mean + rng.uniform(-noise_db, noise_db))
            yield t0 + t, rssi, payload
        t += interval * rng.uniform(0.8, 1.2)


def run_phone(engine: ProximityEngine, advs: Iterator[tuple[float, int, bytes]]) -> float:
    last = 0.0
    for t, rssi, payload in advs:
        engine.feed(t, "4A:11:22:33:44:55", rssi, {0x004C: payload}, {})
        last = t
    return last


def of_types(events: list[ProximityEvent], *types: str) -> list[ProximityEvent]:
    return [e for e in events if e.type in types]


@pytest.mark.parametrize("interval", [0.2, 0.5])
@pytest.mark.parametrize("seed", range(20))
def test_visit_gives_one_enter_one_exit_and_clean_zones(seed: int, interval: float) -> None:
    """A noisy walk in, a stay at the kiosk and a walk out: far→near→immediate→near→far."""
    engine = make_engine()
    distance, duration = walk_in_out()
    advs = phone_advs(random.Random(seed), distance, duration, interval=interval)
    last = run_phone(engine, advs)
    engine.expire(last + 11)
    events = engine.take_events()
    presence = of_types(events, "kiosk.beacon.enter", "kiosk.beacon.zone", "kiosk.beacon.exit")
    assert [e.type for e in presence] == [
        "kiosk.beacon.enter",
        "kiosk.beacon.zone",
        "kiosk.beacon.zone",
        "kiosk.beacon.zone",
        "kiosk.beacon.zone",
        "kiosk.beacon.exit",
    ], f"seed {seed}: {[(e.type, e.data['zone'], round(e.t - 1000, 1)) for e in presence]}"
    assert [e.data["zone"] for e in presence] == ["far", "near", "immediate", "near", "far", "far"]
    expected_id = hash_identifier(SALT, "phone", "7:42")
    assert {e.data["id"] for e in presence} == {expected_id}
    assert all(e.data["beacon_class"] == "phone" for e in presence)
    exit_ = presence[-1]
    assert exit_.data["dwell_s"] == pytest.approx(last - 1000.0, abs=1.5)
    assert set(presence[0].data) == {"beacon_class", "id", "kind", "zone", "rssi", "distance_m"}
    # "It's me" is offered when the phone comes near, never with the token in clear.
    local = of_types(events, "local.presence.phone")
    assert [e.data["zone"] for e in local] == ["near", "immediate"]
    assert all(e.data["id"] == expected_id for e in local)


@pytest.mark.parametrize("boundary", [0.6, 2.5])
@pytest.mark.parametrize("seed", range(10))
def test_standing_on_a_zone_boundary_does_not_flap(seed: int, boundary: float) -> None:
    """A phone parked exactly on a zone boundary for two minutes: at most one change."""
    engine = make_engine()
    advs = phone_advs(random.Random(seed), lambda _t: boundary, 120.0)
    run_phone(engine, advs)
    zones = of_types(engine.take_events(), "kiosk.beacon.zone")
    assert len(zones) <= 1, [(e.data["zone"], e.t) for e in zones]


@pytest.mark.parametrize("seed", range(10))
def test_two_visits_two_enters_two_exits(seed: int) -> None:
    """Two visits separated by more than the exit silence are two enter/exit pairs."""
    engine = make_engine()
    rng = random.Random(seed)
    distance, duration = walk_in_out(stay=5.0)
    last = run_phone(engine, phone_advs(rng, distance, duration, t0=0.0))
    last = run_phone(engine, phone_advs(rng, distance, duration, t0=last + 30.0))
    engine.expire(last + 11)
    types = [e.type for e in engine.take_events()]
    assert types.count("kiosk.beacon.enter") == 2
    assert types.count("kiosk.beacon.exit") == 2


def test_token_rotation_old_identity_exits_normally() -> None:
    """When the app rotates its token the old identity exits after the silence, the new enters."""
    engine = make_engine()
    rng = random.Random(1)
    last = run_phone(engine, phone_advs(rng, lambda _t: 1.5, 30.0, t0=0.0, minor=1))
    last = run_phone(engine, phone_advs(rng, lambda _t: 1.5, 30.0, t0=last + 0.2, minor=2))
    engine.expire(last + 11)
    events = of_types(engine.take_events(), "kiosk.beacon.enter", "kiosk.beacon.exit")
    old, new = hash_identifier(SALT, "phone", "7:1"), hash_identifier(SALT, "phone", "7:2")
    assert [(e.type, e.data["id"]) for e in events] == [
        ("kiosk.beacon.enter", old),
        ("kiosk.beacon.enter", new),
        ("kiosk.beacon.exit", old),
        ("kiosk.beacon.exit", new),
    ]
    old_exit = events[2]
    assert old_exit.t == pytest.approx(30.0 + 10.0, abs=1.5)


def test_single_stray_packet_makes_no_event() -> None:
    """One packet from a passer-by is not a visit."""
    engine = make_engine()
    engine.feed(0.0, "4A:00:00:00:00:01", -90, {0x004C: encode.ibeacon(APP_UUID, 1, 1, -59)}, {})
    engine.expire(100.0)
    assert engine.take_events() == []
    assert engine.tracked == 0


def test_foreign_beacons_are_dropped_and_not_stored() -> None:
    """Unlisted UUIDs, namespaces and AltBeacon ids never create state or events."""
    engine = make_engine()
    foreign = [
        ({0x004C: encode.ibeacon("11111111-2222-3333-4444-555555555555", 1, 2, -59)}, {}),
        ({0x004C: bytes.fromhex("1005031c0a1f3c")}, {}),  # Apple Continuity "nearby"
        ({0x0118: encode.altbeacon("11111111-2222-3333-4444-555555555555", 1, 2, -59)}, {}),
        ({}, {EDDYSTONE_UUID: encode.eddystone_uid("00112233445566778899", "aabbccddeeff", -20)}),
        ({}, {EDDYSTONE_UUID: encode.eddystone_tlm(3000, 20.0, 1, 1.0)}),  # TLM of nobody known
        ({}, {EDDYSTONE_UUID: encode.eddystone_url("https://evil.example", -20)}),
    ]
    for i in range(100):
        mfr, svc = foreign[i % len(foreign)]
        engine.feed(i * 0.1, f"5C:00:00:00:00:{i % 6:02X}", -50, mfr, svc)
    engine.expire(1000.0)
    assert engine.take_events() == []
    assert engine.tracked == 0
    assert engine.allowed == 0
    assert engine.advertisements == 100


def test_store_beacons_keep_their_ids_and_send_rate_limited_telemetry() -> None:
    """Store beacons: plain ids; TLM frames become telemetry at most once per interval."""
    engine = make_engine(telemetry_interval_s=60.0)
    uid = encode.eddystone_uid(NAMESPACE, "0000000000a1", -20)
    ib = encode.ibeacon(STORE_UUID, 100, 7, -59)
    alt = encode.altbeacon(ALT_ID, 3, 4, -59)
    for i in range(1200):  # 120 s at 10 Hz
        t = i * 0.1
        engine.feed(t, "C0:00:00:00:00:01", -70, {}, {EDDYSTONE_UUID: uid})
        engine.feed(t, "C0:00:00:00:00:02", -65, {0x004C: ib}, {})
        engine.feed(t, "C0:00:00:00:00:03", -65, {0x0118: alt}, {})
        if i % 10 == 0:
            tlm = encode.eddystone_tlm(2950, 21.5, 1000 + i, 3600 + t)
            engine.feed(t, "C0:00:00:00:00:01", -70, {}, {EDDYSTONE_UUID: tlm})
    events = engine.take_events()
    enters = of_types(events, "kiosk.beacon.enter")
    assert sorted(e.data["id"] for e in enters) == sorted(
        [f"{NAMESPACE}:0000000000a1", f"{STORE_UUID}:100:7", f"{ALT_ID}:3:4"]
    )
    assert {e.data["kind"] for e in enters} == {"eddystone-uid", "ibeacon", "altbeacon"}
    assert all(e.data["beacon_class"] == "store" for e in enters)
    telemetry = of_types(events, "kiosk.beacon.telemetry")
    assert [round(e.t) for e in telemetry] == [0, 60]
    assert telemetry[0].data == {
        "beacon_class": "store",
        "id": f"{NAMESPACE}:0000000000a1",
        "kind": "eddystone-tlm",
        "battery_mv": 2950,
        "temperature_c": 21.5,
        "adv_count": 1000,
        "uptime_s": 3600.0,
    }
    assert of_types(events, "local.presence.phone") == []


def test_eddystone_distance_uses_the_0m_calibration() -> None:
    """Eddystone's power is at 0 m: -20 dBm at 0 m and -61 dBm received is about 1 m."""
    engine = make_engine()
    uid = encode.eddystone_uid(NAMESPACE, "0000000000a1", -20)
    for i in range(5):
        engine.feed(i * 0.1, "C0:00:00:00:00:01", -61, {}, {EDDYSTONE_UUID: uid})
    (enter,) = engine.take_events()
    assert enter.data["distance_m"] == pytest.approx(1.0, abs=0.01)
    assert enter.data["zone"] == "near"


def test_replay_is_deterministic() -> None:
    """The same advertisements give the same events (no wall clock in the logic)."""
    outputs = []
    for _ in range(2):
        engine = make_engine()
        distance, duration = walk_in_out()
        last = run_phone(engine, phone_advs(random.Random(5), distance, duration))
        engine.flush()
        outputs.append(engine.take_events())
        assert last > 0
    assert outputs[0] == outputs[1]


def test_distance_model_round_trip() -> None:
    """distance_m and rssi_at are inverses; 1 m gives the calibrated power."""
    assert distance_m(-59, -59, 2.0) == pytest.approx(1.0)
    assert distance_m(rssi_at(3.7, -59, 2.4), -59, 2.4) == pytest.approx(3.7)
    assert math.isclose(rssi_at(10.0, -59, 2.0), -79.0)


def test_bad_allowlist_entries_are_named() -> None:
    """A malformed UUID or namespace is reported with the expected form."""
    with pytest.raises(AllowlistError, match="not a UUID"):
        Allowlist.build(["not-a-uuid"])
    with pytest.raises(AllowlistError, match="20 hex digits"):
        Allowlist.build(eddystone_namespaces=["edd1"])
    with pytest.raises(AllowlistError, match="both"):
        Allowlist.build([STORE_UUID], [STORE_UUID])


def test_overlapping_zones_are_rejected() -> None:
    """near_m must leave room for the hysteresis above immediate_m."""
    with pytest.raises(ValueError, match="overlap"):
        ProximitySettings(immediate_m=2.0, near_m=2.1, hysteresis_m=0.3)


def test_slow_phones_one_hertz_still_one_enter_one_exit() -> None:
    """Phones advertising at 1 Hz (Android low-power): every visit is one enter and one exit,
    and most (>= 80 %) still report the full zone path; the rest only lag behind it."""
    exact = 0
    for seed in range(40):
        engine = make_engine()
        distance, duration = walk_in_out()
        last = run_phone(engine, phone_advs(random.Random(seed), distance, duration, interval=1.0))
        engine.expire(last + 11)
        presence = of_types(
            engine.take_events(), "kiosk.beacon.enter", "kiosk.beacon.zone", "kiosk.beacon.exit"
        )
        types = [e.type for e in presence]
        assert types.count("kiosk.beacon.enter") == 1, seed
        assert types.count("kiosk.beacon.exit") == 1, seed
        zones = [e.data["zone"] for e in presence]
        exact += zones == ["far", "near", "immediate", "near", "far", "far"]
    assert exact >= 32


def test_two_hertz_on_a_boundary_changes_rarely() -> None:
    """At 2 Hz on the near/far boundary for two minutes: never more than two changes."""
    counts = []
    for seed in range(40):
        engine = make_engine()
        run_phone(engine, phone_advs(random.Random(seed), lambda _t: 2.5, 120.0, interval=0.5))
        counts.append(len(of_types(engine.take_events(), "kiosk.beacon.zone")))
    assert max(counts) <= 2
    assert sum(counts) / len(counts) < 1.0


def test_token_flood_is_bounded() -> None:
    """Someone advertising the public app UUID with random tokens cannot grow memory forever."""
    from edge.beacons.proximity import MAX_TRACKS

    engine = make_engine()
    for i in range(MAX_TRACKS + 500):
        payload = encode.ibeacon(APP_UUID, i >> 16, i & 0xFFFF, -59)
        engine.feed(0.001 * i, "66:66:66:66:66:66", -60, {0x004C: payload}, {})
    assert engine.tracked == MAX_TRACKS
    assert engine.overflow > 0
    engine.expire(1000.0)
    assert engine.tracked == 0


PREFIXES = [
    b"",
    bytes.fromhex("0215") + uuid_mod.UUID(APP_UUID).bytes,
    bytes.fromhex("0215") + uuid_mod.UUID(STORE_UUID).bytes,
    bytes.fromhex("beac") + uuid_mod.UUID(ALT_ID).bytes,
]
EDDY_PREFIXES = [b"", b"\x00", b"\x20\x00", b"\x00\xec" + bytes.fromhex(NAMESPACE)]


@settings(max_examples=500)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0x004C, 0x0118, 0x0006]),
            st.sampled_from(PREFIXES),
            st.binary(max_size=12),
            st.sampled_from(EDDY_PREFIXES),
            st.binary(max_size=20),
            st.integers(-127, 20),
        ),
        max_size=30,
    )
)
def test_fuzz_feed_never_raises(
    advs: list[tuple[int, bytes, bytes, bytes, bytes, int]],
) -> None:
    """Random bytes behind allowed prefixes, any length: the engine never raises."""
    engine = make_engine()
    for i, (company, prefix, tail, eddy_prefix, eddy_tail, rssi) in enumerate(advs):
        engine.feed(
            i * 0.1,
            "C0:00:00:00:00:01",
            rssi,
            {company: prefix + tail},
            {EDDYSTONE_UUID: eddy_prefix + eddy_tail},
        )
    engine.flush()
    for event in engine.take_events():
        assert event.data["id"]
