"""Events: registered types and the CloudEvents 1.0 envelope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from edge.events import (
    EVENT_TYPES,
    Priority,
    UnknownEventType,
    envelope,
    format_sequence,
    new_event,
    rfc3339,
    to_json,
)


def test_envelope_has_every_cloudevents_field() -> None:
    """The envelope carries the required and extension attributes in the agreed form."""
    when = datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)
    event = new_event("kiosk.beacon.enter", {"zone": "near"}, when)
    env = envelope(
        event,
        store_id="s1",
        device_id="k1",
        sequence=42,
        recorded_time=when + timedelta(seconds=1),
        outbox_epoch="ep1",
    )
    assert env == {
        "specversion": "1.0",
        "id": event.id,
        "source": "urn:kiosk-edge:s1:k1",
        "type": "kiosk.beacon.enter",
        "time": "2026-03-01T12:30:05.123Z",
        "datacontenttype": "application/json",
        "data": {"zone": "near"},
        "sequence": "00000000000000000042",
        "recordedtime": "2026-03-01T12:30:06.123Z",
        "outboxepoch": "ep1",
    }
    assert to_json(env).startswith(b'{"specversion":"1.0"')


def test_ids_are_unique() -> None:
    """Two events never share an id."""
    ids = {new_event("kiosk.search", {}).id for _ in range(1000)}
    assert len(ids) == 1000


def test_sequence_is_zero_padded_and_bounded() -> None:
    """Sequences sort lexically like numbers and stay within 64 bits."""
    assert format_sequence(9) < format_sequence(10)
    assert format_sequence(2**64 - 1) == "18446744073709551615"
    with pytest.raises(ValueError, match="64-bit"):
        format_sequence(2**64)


def test_time_is_utc() -> None:
    """Times in another zone are converted to UTC; naive times are refused."""
    paris = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2026, 1, 1, 1, 0, tzinfo=paris)) == "2026-01-01T00:00:00.000Z"
    with pytest.raises(ValueError, match="naive"):
        rfc3339(datetime(2026, 1, 1))


def test_naive_time_is_refused_at_creation() -> None:
    """A source passing a naive time hears about it at once, not as a skipped event later."""
    with pytest.raises(ValueError, match="timezone-aware"):
        new_event("kiosk.search", {}, datetime(2026, 1, 1, 12, 0))
    assert new_event("kiosk.search", {}, datetime(2026, 1, 1, tzinfo=UTC)).time.year == 2026


def test_unknown_type_is_refused() -> None:
    """Only registered types can be created."""
    with pytest.raises(UnknownEventType, match=r"kiosk\.beacon\.enter"):
        new_event("kiosk.nope", {})


def test_telemetry_is_evicted_first() -> None:
    """Telemetry has the lowest priority; shopper events outrank presence."""
    assert EVENT_TYPES["kiosk.beacon.telemetry"].priority == Priority.TELEMETRY
    assert EVENT_TYPES["kiosk.loyalty.scan"].priority > EVENT_TYPES["kiosk.beacon.zone"].priority
