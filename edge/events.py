"""Event types and the CloudEvents 1.0 envelope, built by pure functions.

Sources create :class:`Event` values; the outbox stamps them with the device's gap-free
sequence when it accepts them; :func:`envelope` turns the stored pieces into the JSON that
central receives. Nothing here does I/O or reads the clock unless asked to.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Final

SPEC_VERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"
# MQTT 5 Content Type for a structured-mode CloudEvent.
CLOUDEVENTS_CONTENT_TYPE: Final = "application/cloudevents+json"
# The CloudEvents sequence extension compares sequences as strings: zero-pad a 64-bit counter
# to 20 digits so lexical order is numeric order.
SEQUENCE_DIGITS: Final = 20


class Priority(IntEnum):
    """Eviction order when the outbox is full: the lowest priority goes first."""

    TELEMETRY = 0
    PRESENCE = 1
    SHOPPER = 2
    SYSTEM = 3


@dataclass(frozen=True)
class EventType:
    """A kind of event: its CloudEvents type, eviction priority and time to live."""

    name: str
    priority: Priority
    ttl_s: float | None = None  # None: never goes stale
    relayed: bool = True  # False: stays on the device (bus only)


def _types(*items: EventType) -> dict[str, EventType]:
    return {t.name: t for t in items}


# Every event type the appliance produces. A TTL is set where a late event would mislead
# central (presence that is hours old) rather than inform it.
EVENT_TYPES: Final[dict[str, EventType]] = _types(
    EventType("kiosk.beacon.enter", Priority.PRESENCE, ttl_s=6 * 3600),
    EventType("kiosk.beacon.zone", Priority.PRESENCE, ttl_s=3600),
    EventType("kiosk.beacon.exit", Priority.PRESENCE, ttl_s=6 * 3600),
    EventType("kiosk.beacon.telemetry", Priority.TELEMETRY, ttl_s=24 * 3600),
    EventType("kiosk.loyalty.scan", Priority.SHOPPER),
    EventType("kiosk.product.scan", Priority.SHOPPER),
    EventType("kiosk.session.start", Priority.SHOPPER),
    EventType("kiosk.session.end", Priority.SHOPPER),
    EventType("kiosk.search", Priority.SHOPPER),
    EventType("kiosk.product.view", Priority.SHOPPER),
    EventType("kiosk.compare", Priority.SHOPPER),
    EventType("kiosk.review.submitted", Priority.SYSTEM),
    EventType("kiosk.takeaway.print", Priority.SHOPPER),
    EventType("kiosk.takeaway.email", Priority.SHOPPER),
    EventType("kiosk.takeaway.qr", Priority.SHOPPER),
    EventType("kiosk.printer.fault", Priority.SYSTEM),
    EventType("kiosk.mail.failed", Priority.SYSTEM),
    EventType("kiosk.relay.dropped", Priority.SYSTEM),
    EventType("kiosk.component.state", Priority.SYSTEM),
    # Local-only events: they drive the kiosk screen and never leave the device.
    EventType("local.session.welcome", Priority.SHOPPER, relayed=False),
    EventType("local.session.cleared", Priority.SHOPPER, relayed=False),
    EventType("local.product.open", Priority.SHOPPER, relayed=False),
    EventType("local.kiosk.identify", Priority.SYSTEM, relayed=False),
    EventType("local.presence.phone", Priority.PRESENCE, relayed=False),
)


class UnknownEventType(ValueError):
    """Raised for an event type that is not in EVENT_TYPES."""


def event_type(name: str) -> EventType:
    """Look up an event type, raising UnknownEventType with the known names."""
    try:
        return EVENT_TYPES[name]
    except KeyError:
        raise UnknownEventType(
            f"unknown event type {name!r}; known: {', '.join(sorted(EVENT_TYPES))}"
        ) from None


@dataclass(frozen=True)
class Event:
    """One thing that happened on the device, before the outbox numbers it."""

    type: str
    data: dict[str, Any]
    time: datetime
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def kind(self) -> EventType:
        """The registered type (priority, TTL, relayed)."""
        return event_type(self.type)


def new_event(type_: str, data: dict[str, Any], time: datetime | None = None) -> Event:
    """Create an event of a registered type; time defaults to now (UTC).

    A naive time is refused here, at the source, rather than when the outbox builds the
    envelope (where the event could only be skipped).
    """
    event_type(type_)
    if time is not None and time.utcoffset() is None:
        raise ValueError(f"naive datetime {time.isoformat()}: event times must be timezone-aware")
    return Event(type=type_, data=data, time=time or datetime.now(UTC))


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC with millisecond precision and a Z suffix."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: event times must be timezone-aware")
    # isoformat is C code, twice as fast as strftime: it ends in "+00:00" after astimezone.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def source_uri(store_id: str, device_id: str) -> str:
    """The CloudEvents source of this device."""
    return f"urn:kiosk-edge:{store_id}:{device_id}"


def format_sequence(sequence: int) -> str:
    """The zero-padded decimal string the CloudEvents sequence extension asks for."""
    if not 0 <= sequence < 2**64:
        raise ValueError(f"sequence {sequence} is outside the 64-bit unsigned range")
    return str(sequence).zfill(SEQUENCE_DIGITS)


def envelope(
    event: Event,
    *,
    store_id: str,
    device_id: str,
    sequence: int,
    recorded_time: datetime | str,
    outbox_epoch: str,
) -> dict[str, Any]:
    """The CloudEvents 1.0 structured-mode object for an accepted event.

    ``recorded_time`` may be given already formatted by :func:`rfc3339` (the outbox formats
    it once per commit batch rather than once per event).
    """
    return {
        "specversion": SPEC_VERSION,
        "id": event.id,
        "source": source_uri(store_id, device_id),
        "type": event.type,
        "time": rfc3339(event.time),
        "datacontenttype": CONTENT_TYPE,
        "data": event.data,
        "sequence": format_sequence(sequence),
        "recordedtime": (
            recorded_time if isinstance(recorded_time, str) else rfc3339(recorded_time)
        ),
        "outboxepoch": outbox_epoch,
    }


# One encoder for every call: json.dumps with non-default options builds a new one each time.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=False)


def to_json(obj: dict[str, Any]) -> bytes:
    """Compact, deterministic JSON bytes for the wire."""
    return _ENCODER.encode(obj).encode()
