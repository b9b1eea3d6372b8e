"""Which transmitters may produce events: store beacons and the store app's phones.

Everything not on the allowlist is dropped right after the prefix check, before any object is
made for it, and is never stored or logged. The lists are turned once into sets of the raw
bytes the frames carry, so the hot path compares bytes instead of formatting strings.
"""

from __future__ import annotations

import logging
import re
import uuid as uuid_mod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

_LOGGER = logging.getLogger(__name__)

BeaconClass = Literal["store", "phone"]
# Eddystone namespaces are 10 bytes: exactly 20 hex digits.
_NAMESPACE_RE: Final = re.compile(r"^[0-9a-fA-F]{20}$")


class AllowlistError(ValueError):
    """An allowlist entry is malformed; the message names it and the expected form."""


def uuid_bytes(text: str, what: str) -> bytes:
    """The 16 bytes of a UUID written with or without dashes, or AllowlistError."""
    try:
        return uuid_mod.UUID(text.strip()).bytes
    except ValueError:
        raise AllowlistError(
            f"{what} {text!r} is not a UUID; write it like f7826da6-4fa2-4e98-8024-bc5b71e0893e"
        ) from None


def namespace_bytes(text: str) -> bytes:
    """The 10 bytes of an Eddystone namespace (20 hex digits), or AllowlistError."""
    if not _NAMESPACE_RE.match(text.strip()):
        raise AllowlistError(
            f"Eddystone namespace {text!r} must be exactly 20 hex digits, like edd1ebeac04e5defa017"
        )
    return bytes.fromhex(text.strip())


@dataclass(frozen=True)
class Allowlist:
    """Raw-byte sets of allowed identifiers, by frame type, with each one's class."""

    # iBeacon proximity UUID (16 bytes) -> "store" or "phone"
    ibeacon: dict[bytes, BeaconClass]
    # AltBeacon id's first 16 bytes
    altbeacon: frozenset[bytes]
    # Eddystone namespace (10 bytes)
    namespaces: frozenset[bytes]

    @classmethod
    def build(
        cls,
        ibeacon_uuids: Iterable[str] = (),
        app_uuids: Iterable[str] = (),
        eddystone_namespaces: Iterable[str] = (),
        altbeacon_ids: Iterable[str] = (),
    ) -> Allowlist:
        """Parse the configured identifiers; raises AllowlistError naming a bad entry."""
        ibeacon: dict[bytes, BeaconClass] = {}
        for text in ibeacon_uuids:
            ibeacon[uuid_bytes(text, "store beacon iBeacon UUID")] = "store"
        for text in app_uuids:
            key = uuid_bytes(text, "store app UUID")
            if ibeacon.get(key) == "store":
                raise AllowlistError(
                    f"UUID {text!r} is listed both as a store beacon and as the store app; "
                    "keep it in one list"
                )
            ibeacon[key] = "phone"
        return cls(
            ibeacon=ibeacon,
            altbeacon=frozenset(uuid_bytes(t, "AltBeacon id") for t in altbeacon_ids),
            namespaces=frozenset(namespace_bytes(t) for t in eddystone_namespaces),
        )

    @property
    def empty(self) -> bool:
        """True when nothing is allowed (every advertisement will be dropped)."""
        return not (self.ibeacon or self.altbeacon or self.namespaces)
