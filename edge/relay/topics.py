"""MQTT topic names of the relay, built and parsed by pure functions.

Every topic the device publishes or subscribes to is spelled here once, so the contract in
ARCHITECTURE.md ("kiosk-edge/v1/{store}/{device}/...") has exactly one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

# Version segment of every topic: bumped only with an incompatible payload change.
ROOT: Final = "kiosk-edge/v1"
# The pseudo-device that addresses every kiosk of a store (commands to all).
ALL_DEVICES: Final = "all"
# MQTT forbids wildcards and the separator inside a level we fill in ourselves.
_FORBIDDEN_IN_LEVEL: Final = frozenset("/+#\x00")

CatalogKind = Literal["product", "offer", "reviews", "shopper"]

# Catalog topic level -> CatalogChange kind (the agreed shoppers/ departure included).
CATALOG_LEVELS: Final[dict[str, CatalogKind]] = {
    "products": "product",
    "offers": "offer",
    "reviews": "reviews",
    "shoppers": "shopper",
}


class TopicError(ValueError):
    """A topic level is unusable (empty, or contains '/', '+', '#' or NUL)."""


def check_level(value: str, what: str) -> str:
    """Return ``value`` if it is a usable single topic level, else raise TopicError."""
    if not value or any(ch in _FORBIDDEN_IN_LEVEL for ch in value):
        raise TopicError(
            f"{what} {value!r} cannot be used in an MQTT topic; use letters, digits, '-', '_', '.'"
        )
    return value


@dataclass(frozen=True)
class Topics:
    """The topics of one device in one store."""

    store: str
    device: str

    def __post_init__(self) -> None:
        check_level(self.store, "store id")
        check_level(self.device, "device id")

    @property
    def base(self) -> str:
        """``kiosk-edge/v1/{store}/{device}``."""
        return f"{ROOT}/{self.store}/{self.device}"

    def event(self, event_type: str) -> str:
        """Where an event of this type is published."""
        return f"{self.base}/events/{check_level(event_type, 'event type')}"

    @property
    def status(self) -> str:
        """Retained presence: birth ``online`` and Last Will ``offline``."""
        return f"{self.base}/status"

    @property
    def health(self) -> str:
        """Periodic health reports."""
        return f"{self.base}/health"

    def command_filters(self) -> list[str]:
        """Subscriptions for commands to this device and to every device of the store."""
        return [f"{self.base}/cmd/+", f"{ROOT}/{self.store}/{ALL_DEVICES}/cmd/+"]

    def reply(self, name: str) -> str:
        """Where the answer to command ``name`` goes (always this device's own tree)."""
        return f"{self.base}/cmd/{check_level(name, 'command name')}/reply"

    def command_name(self, topic: str) -> str | None:
        """The command name of an incoming command topic, or None if it is not one."""
        for prefix in (f"{self.base}/cmd/", f"{ROOT}/{self.store}/{ALL_DEVICES}/cmd/"):
            if topic.startswith(prefix):
                name = topic[len(prefix) :]
                if name and "/" not in name:
                    return name
        return None

    @property
    def catalog_filter(self) -> str:
        """The subscription for central's retained catalog state."""
        return f"{ROOT}/{self.store}/catalog/#"

    def catalog_topic(self, kind: CatalogKind, key: str) -> str:
        """The retained topic of one catalog record (used by central and by tests)."""
        level = next(level for level, k in CATALOG_LEVELS.items() if k == kind)
        return f"{ROOT}/{self.store}/catalog/{level}/{check_level(key, 'catalog key')}"

    def catalog_key(self, topic: str) -> tuple[CatalogKind, str] | None:
        """(kind, key) of a retained catalog topic, or None for any other topic."""
        prefix = f"{ROOT}/{self.store}/catalog/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 2 or not parts[1]:
            return None
        kind = CATALOG_LEVELS.get(parts[0])
        if kind is None:
            return None
        return kind, parts[1]
