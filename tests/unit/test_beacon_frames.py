"""Beacon frame parsers against published example frames, round trips and fuzzing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.beacons import encode
from edge.beacons.frames import (
    APPLE_COMPANY_ID,
    EDDYSTONE_UUID,
    AltBeaconFrame,
    EddystoneEidFrame,
    EddystoneTlmFrame,
    EddystoneUidFrame,
    EddystoneUrlFrame,
    Frame,
    IBeaconFrame,
    frame_to_dict,
    parse_advertisement,
    parse_altbeacon,
    parse_eddystone,
    parse_ibeacon,
    parse_manufacturer,
    parse_service,
)

# Apple's AirLocate sample iBeacon (UUID E2C56DB5-..., major 0, minor 0, -59 dBm at 1 m)
# as captured by btmon: manufacturer data after the 0x004C company id.
AIRLOCATE = bytes.fromhex("0215e2c56db5dffb48d2b060d0f5a71096e000000000c5")
# A Kontakt.io beacon's iBeacon (f7826da6-..., major 4660, minor 22136, -59 dBm).
KONTAKT = bytes.fromhex("0215f7826da64fa24e988024bc5b71e0893e12345678c5")
# The AltBeacon specification's example: company 0x0118 (Radius Networks), id
# 2f234454-cf6d-4a0f-adf2-f4911ba9ffa6 / 1 / 2, reference RSSI -59, reserved 0x00.
ALTBEACON_SPEC = bytes.fromhex("beac2f234454cf6d4a0fadf2f4911ba9ffa600010002c500")
# Eddystone-UID from the Eddystone protocol specification's namespace example
# (edd1ebeac04e5defa017, instance 0123456789ab, -18 dBm at 0 m, reserved bytes present).
EDDYSTONE_UID_SPEC = bytes.fromhex("00eeedd1ebeac04e5defa0170123456789ab0000")
# Eddystone-URL "https://goo.gl/S6zT6P" (the spec's short-link example, -16 dBm at 0 m).
EDDYSTONE_URL_SPEC = bytes.fromhex("10f003676f6f2e676c2f53367a543650")
# Eddystone-TLM v0: 3.0 V, 23.5 °C, 1,000,000 advertisements, 86,400.0 s uptime.
EDDYSTONE_TLM_EXAMPLE = bytes.fromhex("20000bb81780000f4240000d2f00")


def test_ibeacon_airlocate() -> None:
    """Apple's sample iBeacon decodes to its published fields."""
    frame = parse_ibeacon(APPLE_COMPANY_ID, AIRLOCATE)
    assert frame == IBeaconFrame("e2c56db5-dffb-48d2-b060-d0f5a71096e0", 0, 0, -59)
    assert frame_to_dict(frame) == {
        "kind": "ibeacon",
        "uuid": "e2c56db5-dffb-48d2-b060-d0f5a71096e0",
        "major": 0,
        "minor": 0,
        "tx_power": -59,
    }


def test_ibeacon_major_minor_big_endian() -> None:
    """Major and minor are big-endian 16-bit numbers."""
    frame = parse_manufacturer(APPLE_COMPANY_ID, KONTAKT)
    assert isinstance(frame, IBeaconFrame)
    assert (frame.uuid, frame.major, frame.minor) == (
        "f7826da6-4fa2-4e98-8024-bc5b71e0893e",
        0x1234,
        0x5678,
    )


def test_ibeacon_needs_apple_company_id() -> None:
    """The same bytes under another company id are not an iBeacon."""
    assert parse_ibeacon(0x0059, AIRLOCATE) is None
    assert parse_manufacturer(0x0059, AIRLOCATE) is None


def test_altbeacon_spec_example_any_company() -> None:
    """AltBeacon decodes under any company id."""
    expected = AltBeaconFrame("2f234454-cf6d-4a0f-adf2-f4911ba9ffa6", 1, 2, -59)
    assert parse_altbeacon(0x0118, ALTBEACON_SPEC) == expected
    assert parse_manufacturer(0xFFFF, ALTBEACON_SPEC) == expected
    assert frame_to_dict(expected)["kind"] == "altbeacon"


def test_eddystone_uid_spec_example() -> None:
    """Eddystone-UID with and without the reserved bytes."""
    expected = EddystoneUidFrame("edd1ebeac04e5defa017", "0123456789ab", -18)
    assert parse_service(EDDYSTONE_UUID, EDDYSTONE_UID_SPEC) == expected
    assert parse_eddystone(EDDYSTONE_UID_SPEC[:18]) == expected
    assert parse_service(EDDYSTONE_UUID.upper(), EDDYSTONE_UID_SPEC) == expected
    assert parse_service("0000fe9a-0000-1000-8000-00805f9b34fb", EDDYSTONE_UID_SPEC) is None


def test_eddystone_url_spec_example() -> None:
    """Eddystone-URL expands the scheme byte."""
    frame = parse_eddystone(EDDYSTONE_URL_SPEC)
    assert frame == EddystoneUrlFrame("https://goo.gl/S6zT6P", -16)


@pytest.mark.parametrize(
    ("hex_data", "url"),
    [
        ("10ee00676f6f676c6500", "http://www.google.com/"),
        ("10ee016578616d706c6507", "https://www.example.com"),
        ("10ee026578616d706c6501736b696f736b", "http://example.org/skiosk"),
        ("10ee0373686f700d", "https://shop.gov"),
        ("10ee0373686f7004", "https://shop.info/"),
    ],
)
def test_eddystone_url_expansions(hex_data: str, url: str) -> None:
    """Expansion codes 0x00-0x0D become .com/ ... .gov."""
    frame = parse_eddystone(bytes.fromhex(hex_data))
    assert isinstance(frame, EddystoneUrlFrame)
    assert frame.url == url


@pytest.mark.parametrize(
    "hex_data",
    [
        "10ee04676f6f",  # reserved scheme 0x04
        "10ee00676f0e",  # reserved code 0x0e
        "10ee00676f7f",  # DEL is not printable
        "10ee00" + "61" * 18,  # 18 encoded bytes: too long
        "10ee",  # no scheme byte
    ],
)
def test_eddystone_url_rejects_reserved_bytes(hex_data: str) -> None:
    """Reserved schemes, reserved bytes and over-long URLs are not frames."""
    assert parse_eddystone(bytes.fromhex(hex_data)) is None


def test_eddystone_tlm_example() -> None:
    """TLM v0: mV, signed 8.8 temperature, counts, uptime in 0.1 s."""
    frame = parse_eddystone(EDDYSTONE_TLM_EXAMPLE)
    assert frame == EddystoneTlmFrame(3000, 23.5, 1_000_000, 86_400.0)
    assert frame_to_dict(frame) == {
        "kind": "eddystone-tlm",
        "battery_mv": 3000,
        "temperature_c": 23.5,
        "adv_count": 1_000_000,
        "uptime_s": 86_400.0,
    }


def test_eddystone_tlm_negative_and_missing_temperature() -> None:
    """-0.5 °C is 0xFF80; 0x8000 means no sensor; 0 mV means mains powered."""
    negative = parse_eddystone(bytes.fromhex("20000bb8ff80000000010000000a"))
    assert isinstance(negative, EddystoneTlmFrame)
    assert negative.temperature_c == -0.5
    assert negative.uptime_s == 1.0
    missing = parse_eddystone(bytes.fromhex("200000008000000000010000000a"))
    assert isinstance(missing, EddystoneTlmFrame)
    assert missing.temperature_c is None
    assert missing.battery_mv is None


def test_eddystone_etlm_is_not_decoded() -> None:
    """Encrypted TLM (version 1) carries nothing readable."""
    assert parse_eddystone(bytes.fromhex("2001" + "ab" * 16)) is None


def test_eddystone_eid_passes_through() -> None:
    """EID: the ephemeral id as hex."""
    frame = parse_eddystone(bytes.fromhex("30f10011223344556677"))
    assert frame == EddystoneEidFrame("0011223344556677", -15)


def test_parse_advertisement_collects_every_frame() -> None:
    """One advertisement can carry an iBeacon and an Eddystone frame (Kontakt.io does)."""
    frames = parse_advertisement(
        {APPLE_COMPANY_ID: KONTAKT, 0x0006: b"\x01\x09\x20"},
        {EDDYSTONE_UUID: EDDYSTONE_TLM_EXAMPLE, "0000fd6f-0000-1000-8000-00805f9b34fb": b"\x00"},
    )
    assert [f.kind for f in frames] == ["ibeacon", "eddystone-tlm"]


# --- round trips over the whole field space -------------------------------------------------

uuids = st.uuids().map(str)
u16 = st.integers(0, 0xFFFF)
tx = st.integers(-128, 127)


@given(uuids, u16, u16, tx)
def test_ibeacon_round_trip(uuid: str, major: int, minor: int, power: int) -> None:
    """Every iBeacon field value survives encode then parse."""
    assert parse_ibeacon(APPLE_COMPANY_ID, encode.ibeacon(uuid, major, minor, power)) == (
        IBeaconFrame(uuid, major, minor, power)
    )


@given(uuids, u16, u16, tx, st.integers(0x0000, 0xFFFF))
def test_altbeacon_round_trip(uuid: str, major: int, minor: int, power: int, company: int) -> None:
    """Every AltBeacon field value survives encode then parse, under any company."""
    assert parse_manufacturer(company, encode.altbeacon(uuid, major, minor, power)) == (
        AltBeaconFrame(uuid, major, minor, power)
    )


@given(st.binary(min_size=10, max_size=10), st.binary(min_size=6, max_size=6), tx, st.booleans())
def test_eddystone_uid_round_trip(ns: bytes, inst: bytes, power: int, reserved: bool) -> None:
    """Eddystone-UID round trip, with or without the reserved bytes."""
    data = encode.eddystone_uid(ns.hex(), inst.hex(), power, reserved)
    assert parse_eddystone(data) == EddystoneUidFrame(ns.hex(), inst.hex(), power)


@given(
    st.integers(1, 0xFFFF),
    st.one_of(st.none(), st.integers(-32767, 32767).map(lambda v: v / 256)),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)
def test_eddystone_tlm_round_trip(
    battery: int, temperature: float | None, count: int, tenths: int
) -> None:
    """Eddystone-TLM round trip over the full range of every field."""
    data = encode.eddystone_tlm(battery, temperature, count, tenths / 10)
    assert parse_eddystone(data) == EddystoneTlmFrame(battery, temperature, count, tenths / 10)


@given(
    st.sampled_from(["http://", "https://", "http://www.", "https://www."]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-/?=", min_size=1, max_size=8),
    st.sampled_from(["", ".com", ".org/", ".net/x", ".gov"]),
    tx,
)
def test_eddystone_url_round_trip(scheme: str, host: str, suffix: str, power: int) -> None:
    """Eddystone-URL round trip for URLs that fit in 17 bytes."""
    url = scheme + host + suffix
    assert parse_eddystone(encode.eddystone_url(url, power)) == EddystoneUrlFrame(url, power)


# --- fuzzing: random bytes and truncations never raise --------------------------------------

VALID_MANUFACTURER = [AIRLOCATE, KONTAKT, ALTBEACON_SPEC]
VALID_EDDYSTONE = [
    EDDYSTONE_UID_SPEC,
    EDDYSTONE_URL_SPEC,
    EDDYSTONE_TLM_EXAMPLE,
    bytes.fromhex("30f10011223344556677"),
]


def _check(frame: Frame | None) -> None:
    if frame is not None:
        assert isinstance(frame, Frame)
        frame_to_dict(frame)


@settings(max_examples=600)
@given(st.integers(0, 0xFFFF), st.binary(max_size=40))
def test_fuzz_manufacturer_random_bytes(company: int, data: bytes) -> None:
    """Random manufacturer data never raises."""
    _check(parse_manufacturer(company, data))


@settings(max_examples=600)
@given(st.binary(max_size=40))
def test_fuzz_eddystone_random_bytes(data: bytes) -> None:
    """Random Eddystone service data never raises, whatever the frame-type byte."""
    _check(parse_service(EDDYSTONE_UUID, data))


@settings(max_examples=300)
@given(st.sampled_from(range(4)), st.binary(max_size=20))
def test_fuzz_eddystone_known_types(type_index: int, tail: bytes) -> None:
    """Random bodies behind each known Eddystone frame type never raise."""
    _check(parse_eddystone(bytes([(0x00, 0x10, 0x20, 0x30)[type_index]]) + tail))


def test_fuzz_truncations_and_bit_flips_seeded() -> None:
    """Every truncation and 2,000 random bit flips of valid frames never raise (seed printed)."""
    seed = random.randrange(2**32)
    print(f"fuzz seed {seed}")
    rng = random.Random(seed)
    for data in VALID_MANUFACTURER:
        for cut in range(len(data) + 1):
            _check(parse_manufacturer(APPLE_COMPANY_ID, data[:cut]))
            _check(parse_manufacturer(0x0118, data[:cut]))
    for data in VALID_EDDYSTONE:
        for cut in range(len(data) + 1):
            _check(parse_eddystone(data[:cut]))
    for _ in range(2000):
        source = rng.choice(VALID_MANUFACTURER + VALID_EDDYSTONE)
        mutated = bytearray(source)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
        _check(parse_manufacturer(rng.choice([APPLE_COMPANY_ID, 0x0118]), bytes(mutated)))
        _check(parse_eddystone(bytes(mutated)))
        for frame in parse_advertisement({APPLE_COMPANY_ID: bytes(mutated)}, {}):
            _check(frame)
