"""Build beacon payloads from fields: the inverse of :mod:`edge.beacons.frames`.

Used to generate the demo recording and test data, and by tests to round-trip the parsers;
the daemon itself never transmits.
"""

from __future__ import annotations

import logging
import struct
import uuid as uuid_mod
from typing import Final

from edge.beacons.frames import (
    ALTBEACON_PREFIX,
    EDDYSTONE_EID,
    EDDYSTONE_TLM,
    EDDYSTONE_UID,
    EDDYSTONE_URL,
    IBEACON_PREFIX,
    TLM_NO_TEMPERATURE,
    URL_EXPANSIONS,
    URL_SCHEMES,
)

_LOGGER = logging.getLogger(__name__)

# Longest expansions first so ".com/" wins over ".com".
_EXPANSIONS_BY_LENGTH: Final = sorted(
    ((text, code) for code, text in enumerate(URL_EXPANSIONS)), key=lambda item: -len(item[0])
)


def ibeacon(uuid: str, major: int, minor: int, tx_power: int) -> bytes:
    """iBeacon manufacturer data (after Apple's company id 0x004C)."""
    return IBEACON_PREFIX + uuid_mod.UUID(uuid).bytes + struct.pack(">HHb", major, minor, tx_power)


def altbeacon(uuid: str, major: int, minor: int, tx_power: int, reserved: int = 0) -> bytes:
    """AltBeacon manufacturer data (after any company id)."""
    return (
        ALTBEACON_PREFIX
        + uuid_mod.UUID(uuid).bytes
        + struct.pack(">HHbB", major, minor, tx_power, reserved)
    )


def eddystone_uid(namespace: str, instance: str, tx_power: int, reserved: bool = True) -> bytes:
    """Eddystone-UID service data (with the two reserved bytes unless told otherwise)."""
    body = struct.pack(">Bb", EDDYSTONE_UID, tx_power) + bytes.fromhex(namespace + instance)
    return body + (b"\x00\x00" if reserved else b"")


def eddystone_tlm(
    battery_mv: int, temperature_c: float | None, adv_count: int, uptime_s: float
) -> bytes:
    """Eddystone-TLM version 0 service data."""
    temp = TLM_NO_TEMPERATURE if temperature_c is None else round(temperature_c * 256) & 0xFFFF
    return struct.pack(
        ">BBHHII", EDDYSTONE_TLM, 0, battery_mv, temp, adv_count, round(uptime_s * 10)
    )


def eddystone_eid(eid: str, tx_power: int) -> bytes:
    """Eddystone-EID service data."""
    return struct.pack(">Bb", EDDYSTONE_EID, tx_power) + bytes.fromhex(eid)


def eddystone_url(url: str, tx_power: int) -> bytes:
    """Eddystone-URL service data; raises ValueError when the URL cannot be encoded."""
    for scheme_code, scheme in enumerate(URL_SCHEMES):
        if url.startswith(scheme) and not (scheme_code >= 2 and url.startswith(scheme + "www.")):
            rest = url[len(scheme) :]
            break
    else:
        raise ValueError(f"URL {url!r} must start with http:// or https://")
    out = bytearray()
    i = 0
    while i < len(rest):
        for text, code in _EXPANSIONS_BY_LENGTH:
            if rest.startswith(text, i):
                out.append(code)
                i += len(text)
                break
        else:
            char = ord(rest[i])
            if not 0x21 <= char <= 0x7E:
                raise ValueError(f"URL {url!r} has a character Eddystone-URL cannot carry")
            out.append(char)
            i += 1
    if len(out) > 17:
        raise ValueError(f"URL {url!r} is too long for Eddystone-URL (17 encoded bytes at most)")
    return struct.pack(">BbB", EDDYSTONE_URL, tx_power, scheme_code) + bytes(out)
