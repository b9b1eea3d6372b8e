"""Pure parsers for beacon frames in the bytes bleak hands over; no I/O, never raise.

bleak gives manufacturer data as ``{company_id: payload}`` (the company id already taken off
the front) and service data as ``{uuid128: payload}``. Each parser here takes one such payload
and returns a typed frame, or None when the bytes are not that frame or are malformed.
Frames are small ``__slots__`` classes whose attribute names are the JSON field names used
everywhere (``kind``, ``uuid``, ``major`` ...), so :func:`frame_to_dict` is a plain copy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

# Apple's Bluetooth SIG company identifier: iBeacon frames are Apple manufacturer data.
APPLE_COMPANY_ID: Final = 0x004C
# iBeacon payload after the company id: type 0x02, length 0x15 (21 bytes follow).
IBEACON_PREFIX: Final = b"\x02\x15"
IBEACON_LENGTH: Final = 23  # 2 prefix + 16 uuid + 2 major + 2 minor + 1 tx power
# AltBeacon "beacon code" 0xBEAC follows any company id (AltBeacon specification 1.0).
ALTBEACON_PREFIX: Final = b"\xbe\xac"
ALTBEACON_LENGTH: Final = 24  # 2 code + 20 beacon id + 1 reference RSSI + 1 manufacturer byte
# Eddystone frames are service data of the 16-bit UUID 0xFEAA, which bleak expands to 128 bits.
EDDYSTONE_UUID: Final = "0000feaa-0000-1000-8000-00805f9b34fb"
EDDYSTONE_UID: Final = 0x00
EDDYSTONE_URL: Final = 0x10
EDDYSTONE_TLM: Final = 0x20
EDDYSTONE_EID: Final = 0x30
# TLM: version 0 is the unencrypted frame (14 bytes); version 1 (eTLM) is encrypted.
TLM_LENGTH: Final = 14
# TLM temperature 0x8000 (-128.0 °C) means "not supported" in the Eddystone specification.
TLM_NO_TEMPERATURE: Final = 0x8000
# Eddystone-URL scheme prefixes (first byte after the tx power).
URL_SCHEMES: Final[tuple[str, ...]] = ("http://www.", "https://www.", "http://", "https://")
# Eddystone-URL expansion codes 0x00-0x0D; other bytes below 0x21 and above 0x7E are invalid.
URL_EXPANSIONS: Final[tuple[str, ...]] = (
    ".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/",
    ".com", ".org", ".edu", ".net", ".info", ".biz", ".gov",
)  # fmt: skip
# The URL after the scheme byte is at most 17 bytes (an 18-byte frame of 2 + 1 + 17 - 2).
URL_MAX_ENCODED: Final = 17


def _signed8(value: int) -> int:
    """A byte as a two's-complement signed value (tx power, reference RSSI)."""
    return value - 256 if value > 127 else value


def format_uuid(raw: bytes) -> str:
    """16 bytes as a lower-case, dashed UUID string."""
    h = raw.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


class Frame:
    """Base of every decoded frame: ``kind`` names the format."""

    __slots__ = ()
    kind: str = ""
    FIELDS: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The frame's fields (the JSON names), ``kind`` first."""
        out: dict[str, Any] = {"kind": self.kind}
        for name in self.FIELDS:
            out[name] = getattr(self, name)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame) or type(other) is not type(self):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().items()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items() if k != "kind")
        return f"{type(self).__name__}({fields})"


class _UuidMajorMinorFrame(Frame):
    """A frame identified by a 16-byte UUID, major and minor, with its power at 1 m."""

    __slots__ = ("major", "minor", "tx_power", "uuid")
    FIELDS = ("uuid", "major", "minor", "tx_power")

    def __init__(self, uuid: str, major: int, minor: int, tx_power: int) -> None:
        self.uuid = uuid
        self.major = major
        self.minor = minor
        self.tx_power = tx_power


class IBeaconFrame(_UuidMajorMinorFrame):
    """Apple iBeacon: proximity UUID, major, minor and the calibrated power at 1 m."""

    __slots__ = ()
    kind = "ibeacon"


class AltBeaconFrame(_UuidMajorMinorFrame):
    """AltBeacon: a 20-byte id read as uuid (16) + major (2) + minor (2), power at 1 m."""

    __slots__ = ()
    kind = "altbeacon"


class EddystoneUidFrame(Frame):
    """Eddystone-UID: 10-byte namespace, 6-byte instance, power at 0 m."""

    __slots__ = ("instance", "namespace", "tx_power")
    kind = "eddystone-uid"
    FIELDS = ("namespace", "instance", "tx_power")

    def __init__(self, namespace: str, instance: str, tx_power: int) -> None:
        self.namespace = namespace
        self.instance = instance
        self.tx_power = tx_power


class EddystoneUrlFrame(Frame):
    """Eddystone-URL: the expanded URL and the power at 0 m."""

    __slots__ = ("tx_power", "url")
    kind = "eddystone-url"
    FIELDS = ("url", "tx_power")

    def __init__(self, url: str, tx_power: int) -> None:
        self.url = url
        self.tx_power = tx_power


class EddystoneTlmFrame(Frame):
    """Eddystone-TLM version 0: battery, temperature, advertisement count, uptime."""

    __slots__ = ("adv_count", "battery_mv", "temperature_c", "uptime_s")
    kind = "eddystone-tlm"
    FIELDS = ("battery_mv", "temperature_c", "adv_count", "uptime_s")

    def __init__(
        self, battery_mv: int | None, temperature_c: float | None, adv_count: int, uptime_s: float
    ) -> None:
        self.battery_mv = battery_mv  # None: the beacon is mains powered (0 mV)
        self.temperature_c = temperature_c  # None: no sensor (0x8000)
        self.adv_count = adv_count
        self.uptime_s = uptime_s


class EddystoneEidFrame(Frame):
    """Eddystone-EID: the 8-byte ephemeral id, passed through as hex, power at 0 m."""

    __slots__ = ("eid", "tx_power")
    kind = "eddystone-eid"
    FIELDS = ("eid", "tx_power")

    def __init__(self, eid: str, tx_power: int) -> None:
        self.eid = eid
        self.tx_power = tx_power


def _uuid_major_minor_power(data: bytes) -> tuple[str, int, int, int]:
    """UUID, major, minor and power from bytes 2-22 (iBeacon and AltBeacon share the layout)."""
    return (
        format_uuid(data[2:18]),
        (data[18] << 8) | data[19],
        (data[20] << 8) | data[21],
        _signed8(data[22]),
    )


def parse_ibeacon(company_id: int, data: bytes) -> IBeaconFrame | None:
    """An iBeacon from Apple manufacturer data, else None."""
    if company_id != APPLE_COMPANY_ID or len(data) != IBEACON_LENGTH or data[:2] != IBEACON_PREFIX:
        return None
    return IBeaconFrame(*_uuid_major_minor_power(data))


def parse_altbeacon(company_id: int, data: bytes) -> AltBeaconFrame | None:
    """An AltBeacon from any company's manufacturer data, else None."""
    del company_id  # AltBeacon allows any manufacturer
    if len(data) != ALTBEACON_LENGTH or data[:2] != ALTBEACON_PREFIX:
        return None
    return AltBeaconFrame(*_uuid_major_minor_power(data))


def decode_eddystone_url(scheme: int, encoded: bytes) -> str | None:
    """The URL of an Eddystone-URL frame, or None for a reserved scheme or byte."""
    if scheme >= len(URL_SCHEMES) or len(encoded) > URL_MAX_ENCODED:
        return None
    parts = [URL_SCHEMES[scheme]]
    for byte in encoded:
        if byte < len(URL_EXPANSIONS):
            parts.append(URL_EXPANSIONS[byte])
        elif 0x21 <= byte <= 0x7E:
            parts.append(chr(byte))
        else:
            return None
    return "".join(parts)


def parse_eddystone(data: bytes) -> Frame | None:
    """An Eddystone UID, URL, TLM (version 0) or EID frame from 0xFEAA service data."""
    if len(data) < 2:
        return None
    frame_type = data[0]
    if frame_type == EDDYSTONE_UID:
        # 18 bytes; the 2 reserved bytes at the end are often left out.
        if len(data) not in (18, 20):
            return None
        return EddystoneUidFrame(data[2:12].hex(), data[12:18].hex(), _signed8(data[1]))
    if frame_type == EDDYSTONE_TLM:
        if data[1] != 0x00 or len(data) != TLM_LENGTH:
            return None  # eTLM (version 1) is encrypted: nothing to read
        battery = (data[2] << 8) | data[3]
        raw_temp = (data[4] << 8) | data[5]
        if raw_temp == TLM_NO_TEMPERATURE:
            temperature: float | None = None
        else:
            signed = raw_temp - 0x10000 if raw_temp & 0x8000 else raw_temp
            temperature = signed / 256.0
        adv_count = int.from_bytes(data[6:10], "big")
        uptime = int.from_bytes(data[10:14], "big") / 10.0
        return EddystoneTlmFrame(battery or None, temperature, adv_count, uptime)
    if frame_type == EDDYSTONE_URL:
        if len(data) < 3:
            return None
        url = decode_eddystone_url(data[2], data[3:])
        if url is None:
            return None
        return EddystoneUrlFrame(url, _signed8(data[1]))
    if frame_type == EDDYSTONE_EID:
        if len(data) != 10:
            return None
        return EddystoneEidFrame(data[2:10].hex(), _signed8(data[1]))
    return None


def parse_manufacturer(company_id: int, data: bytes) -> Frame | None:
    """An iBeacon or AltBeacon from one manufacturer-data entry, else None."""
    return parse_ibeacon(company_id, data) or parse_altbeacon(company_id, data)


def parse_service(uuid: str, data: bytes) -> Frame | None:
    """An Eddystone frame from one service-data entry, else None."""
    if uuid.lower() != EDDYSTONE_UUID:
        return None
    return parse_eddystone(data)


def parse_advertisement(
    manufacturer_data: Mapping[int, bytes], service_data: Mapping[str, bytes]
) -> list[Frame]:
    """Every beacon frame in one advertisement (usually zero or one)."""
    frames: list[Frame] = []
    for company_id, payload in manufacturer_data.items():
        frame = parse_manufacturer(company_id, payload)
        if frame is not None:
            frames.append(frame)
    for uuid, payload in service_data.items():
        frame = parse_service(uuid, payload)
        if frame is not None:
            frames.append(frame)
    return frames


def frame_to_dict(frame: Frame) -> dict[str, Any]:
    """The frame as JSON-able data with the shared field names."""
    return frame.as_dict()
