"""Typed data of every event central receives: the contract, checked field by field.

Each relayed event type has a model here; unknown fields are errors, so an event can never
start carrying something central was not promised (an address, a loyalty number, a MAC).
Producers build plain dictionaries on their hot paths; :func:`check_event_data` is what tests
(and store IT's support tools) use to prove every producer keeps the contract.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.events import EVENT_TYPES

HexHash = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
Zone = Literal["immediate", "near", "far"]
BeaconKind = Literal[
    "ibeacon", "altbeacon", "eddystone-uid", "eddystone-url", "eddystone-tlm", "eddystone-eid"
]
Source = Literal["camera", "hid"]
Sku = Annotated[str, Field(min_length=1, max_length=64)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BeaconPresence(_Data):
    """kiosk.beacon.enter / zone: a transmitter near the kiosk (phones by hashed token)."""

    beacon_class: Literal["store", "phone"]
    id: Annotated[str, Field(min_length=1, max_length=80)]
    kind: BeaconKind
    zone: Zone
    rssi: float
    distance_m: Annotated[float, Field(ge=0)]


class BeaconExit(BeaconPresence):
    """kiosk.beacon.exit: as presence, plus how long the visit lasted."""

    dwell_s: Annotated[float, Field(ge=0)]


class BeaconTelemetry(_Data):
    """kiosk.beacon.telemetry: a store beacon's TLM frame (battery, temperature, uptime)."""

    beacon_class: Literal["store"]
    id: Annotated[str, Field(min_length=1, max_length=80)]
    kind: Literal["eddystone-tlm"]
    battery_mv: int | None
    temperature_c: float | None
    adv_count: int
    uptime_s: float


class LoyaltyScan(_Data):
    """kiosk.loyalty.scan: only the salted hash of the card number leaves the device."""

    id_hash: HexHash
    source: Source
    symbology: str


class ProductScan(_Data):
    """kiosk.product.scan: a product's GTIN-13."""

    ean: Annotated[str, Field(pattern=r"^[0-9]{13}$")]
    source: Source
    symbology: str


class SessionStart(_Data):
    """kiosk.session.start: a shopper began using the kiosk (identified or not)."""

    session_id: str
    trigger: str
    identified: bool
    id_hash: HexHash | None = None
    id_source: str | None = None
    segments: list[str] | None = None


class SessionEnd(_Data):
    """kiosk.session.end: why and after how long the kiosk forgot the shopper."""

    session_id: str
    reason: str
    duration_s: Annotated[float, Field(ge=0)]
    identified: bool
    compared: Annotated[int, Field(ge=0)]
    id_hash: HexHash | None = None


class Search(_Data):
    """kiosk.search: the query only when it holds no digit runs (which could be personal)."""

    query: str | None
    category: str | None
    results: Annotated[int, Field(ge=0)]
    session_id: str


class ProductView(_Data):
    """kiosk.product.view: a product page was opened, and how (touch, scan, search)."""

    sku: Sku
    session_id: str
    via: Annotated[str, Field(max_length=16)]


class Compare(_Data):
    """kiosk.compare: products compared side by side."""

    skus: Annotated[list[Sku], Field(min_length=1, max_length=4)]
    session_id: str


class ReviewSubmitted(_Data):
    """kiosk.review.submitted: a review to moderate (the author's display name, by consent)."""

    id: str
    sku: Sku
    rating: Annotated[int, Field(ge=1, le=5)]
    title: str
    text: str
    author: str
    date: str
    store: str
    status: Literal["pending"]
    source: Literal["kiosk"]
    device: str
    lang: str
    consent: Literal[True]


class TakeawayJob(_Data):
    """kiosk.takeaway.print / email: a job was queued (never the e-mail address)."""

    job_id: str
    skus: Annotated[list[Sku], Field(min_length=1, max_length=4)]
    lang: str
    session_id: str


class TakeawayQr(_Data):
    """kiosk.takeaway.qr: the shopper took the comparison home as a QR code."""

    skus: Annotated[list[Sku], Field(min_length=1, max_length=4)]
    session_id: str


class PrinterFault(_Data):
    """kiosk.printer.fault: the printer needs attention; jobs wait."""

    problem: str
    printer: str
    queued: Annotated[int, Field(ge=0)]


class MailFailed(_Data):
    """kiosk.mail.failed: a mail was dropped after its last try."""

    job_id: str
    attempts: Annotated[int, Field(ge=0)]
    reason: str


class RelayDropped(_Data):
    """kiosk.relay.dropped: events the outbox evicted (full) or expired (TTL)."""

    reason: str
    count: Annotated[int, Field(ge=1)]
    by_type: dict[str, int]
    first_sequence: int | None
    last_sequence: int | None
    max_rows: int
    max_bytes: int


class ComponentState(_Data):
    """kiosk.component.state: a component's settled state changed."""

    component: str
    state: Literal["ok", "degraded", "failed", "disabled"]
    previous: str
    reason: str | None = None


# Every relayed event type has its model; a test fails when a new type is added without one.
DATA_MODELS: Final[dict[str, type[_Data]]] = {
    "kiosk.beacon.enter": BeaconPresence,
    "kiosk.beacon.zone": BeaconPresence,
    "kiosk.beacon.exit": BeaconExit,
    "kiosk.beacon.telemetry": BeaconTelemetry,
    "kiosk.loyalty.scan": LoyaltyScan,
    "kiosk.product.scan": ProductScan,
    "kiosk.session.start": SessionStart,
    "kiosk.session.end": SessionEnd,
    "kiosk.search": Search,
    "kiosk.product.view": ProductView,
    "kiosk.compare": Compare,
    "kiosk.review.submitted": ReviewSubmitted,
    "kiosk.takeaway.print": TakeawayJob,
    "kiosk.takeaway.email": TakeawayJob,
    "kiosk.takeaway.qr": TakeawayQr,
    "kiosk.printer.fault": PrinterFault,
    "kiosk.mail.failed": MailFailed,
    "kiosk.relay.dropped": RelayDropped,
    "kiosk.component.state": ComponentState,
}


def check_event_data(event_type: str, data: dict[str, Any]) -> list[str]:
    """Problems with an event's data against its contract (empty when it conforms)."""
    if event_type not in EVENT_TYPES:
        return [f"unknown event type {event_type!r}"]
    model = DATA_MODELS.get(event_type)
    if model is None:
        return [] if not EVENT_TYPES[event_type].relayed else [f"no data model for {event_type}"]
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [
            f"{event_type}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        ]
    return []
