"""The shopper session: start, identification, welcome, compare list, idle reset, presence."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from edge.bus import Bus
from edge.catalog.models import CatalogChange
from edge.catalog.store import CatalogStore
from edge.events import Event, new_event
from edge.health import Health
from edge.privacy import hash_identifier
from edge.session import MAX_COMPARE, SessionComponent, SessionManager

DEMO_HASH = hash_identifier("demo-salt-not-secret", "loyalty", "2900001234566")


class Clock:
    """A hand-turned monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[CatalogStore]:
    store = CatalogStore(tmp_path / "c.sqlite3")
    store.apply_changes(
        [
            CatalogChange(
                "product",
                "TV-001",
                {"name": "Téléviseur", "price": 10.0, "ean": "3760000000017"},
            ),
            CatalogChange(
                "shopper",
                DEMO_HASH,
                {"first_name": "Camille", "segments": ["gold"], "locale": "fr"},
            ),
            CatalogChange("offer", "gold-10", {"title": "Gold -10 %", "segments": ["gold"]}),
            CatalogChange("offer", "all-5", {"title": "-5 % for all"}),
            CatalogChange("offer", "tv-1", {"title": "TV bundle", "skus": ["TV-001"]}),
            CatalogChange("offer", "silver", {"title": "Silver", "segments": ["silver"]}),
        ]
    )
    yield store
    store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def events() -> list[Event]:
    return []


@pytest.fixture
def session(catalog: CatalogStore, clock: Clock, events: list[Event]) -> SessionManager:
    return SessionManager(catalog, events.append, 90.0, clock=clock, today=lambda: date(2026, 6, 1))


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def test_loyalty_scan_welcomes_with_name_and_segment_offers(
    session: SessionManager, events: list[Event]
) -> None:
    """A loyalty scan starts an identified session and a welcome with the gold offer first."""
    session.on_event(new_event("kiosk.loyalty.scan", {"id_hash": DEMO_HASH, "source": "camera"}))
    assert types(events) == ["kiosk.session.start", "local.session.welcome"]
    start = events[0].data
    assert start["id_hash"] == DEMO_HASH
    assert start["identified"] is True
    welcome = events[1].data
    assert welcome["first_name"] == "Camille"
    assert [o["id"] for o in welcome["offers"]] == ["gold-10", "all-5"]
    assert session.snapshot().identified


def test_identifying_during_an_anonymous_session_ends_it(
    session: SessionManager, events: list[Event]
) -> None:
    """Touch first, then scan: the anonymous session ends and a personal one starts."""
    first = session.touch()
    session.add_compare("TV-001")
    events.clear()
    generation = session.generation
    session.identify(DEMO_HASH, "loyalty")
    # The same person: the compare list and the browser state (generation) are kept.
    assert session.snapshot().compare == ["TV-001"]
    assert session.generation == generation
    assert types(events) == ["kiosk.session.end", "kiosk.session.start", "local.session.welcome"]
    assert events[0].data["reason"] == "identified"
    assert events[0].data["session_id"] == first
    assert "id_hash" not in events[0].data
    assert events[1].data["session_id"] != first


def test_unknown_card_is_identified_without_a_name(
    session: SessionManager, events: list[Event]
) -> None:
    """A card central knows nothing about still personalises with everyone's offers."""
    session.identify("ffff", "loyalty")
    welcome = events[-1].data
    assert welcome["first_name"] == ""
    assert [o["id"] for o in welcome["offers"]] == ["all-5"]


def test_idle_timeout_forgets_everything(
    session: SessionManager, clock: Clock, events: list[Event]
) -> None:
    """After the idle time the identity and compare list are gone and the screen is told."""
    session.identify(DEMO_HASH, "loyalty")
    session.add_compare("TV-001")
    generation = session.generation
    clock.now += 89.0
    assert session.check_idle() is False
    clock.now += 1.0
    assert session.check_idle() is True
    assert types(events)[-2:] == ["kiosk.session.end", "local.session.cleared"]
    assert events[-2].data["reason"] == "idle"
    assert events[-2].data["id_hash"] == DEMO_HASH
    state = session.snapshot()
    assert not state.active
    assert state.id_hash is None
    assert state.compare == []
    assert state.first_name == ""
    assert session.generation == generation + 1
    assert session.check_idle() is False  # nothing to end twice


def test_activity_postpones_the_timeout(session: SessionManager, clock: Clock) -> None:
    """Each touch restarts the idle timer."""
    session.touch()
    for _ in range(5):
        clock.now += 60
        session.touch()
        assert session.check_idle() is False


def test_end_button_clears_even_without_a_session(
    session: SessionManager, events: list[Event]
) -> None:
    """ "Not me" always tells the screen to clear, and ends a running session."""
    session.end()
    assert types(events) == ["local.session.cleared"]
    session.touch()
    session.end()
    assert types(events)[-2:] == ["kiosk.session.end", "local.session.cleared"]


def test_compare_list_keeps_the_last_four(session: SessionManager) -> None:
    """Adding a fifth product drops the oldest; re-adding moves it last; remove works."""
    for i in range(MAX_COMPARE + 1):
        session.add_compare(f"S{i}")
    assert session.snapshot().compare == ["S1", "S2", "S3", "S4"]
    assert session.add_compare("S2") == ["S1", "S3", "S4", "S2"]
    assert session.remove_compare("S3") == ["S1", "S4", "S2"]


def test_product_scan_opens_the_product(session: SessionManager, events: list[Event]) -> None:
    """A scanned EAN in the catalog opens its page; an unknown one says so."""
    session.on_event(new_event("kiosk.product.scan", {"ean": "3760000000017", "source": "hid"}))
    opened = [e for e in events if e.type == "local.product.open"]
    assert opened[-1].data["sku"] == "TV-001"
    session.on_event(new_event("kiosk.product.scan", {"ean": "4006381333931", "source": "hid"}))
    opened = [e for e in events if e.type == "local.product.open"]
    assert opened[-1].data["sku"] is None


def test_its_me_uses_the_nearest_phone(
    session: SessionManager, clock: Clock, events: list[Event]
) -> None:
    """A phone in the near zone can be confirmed; after its exit it cannot."""
    assert session.identify_nearby_phone() is False
    beacon = {"beacon_class": "phone", "id": "phonehash1", "kind": "ibeacon", "zone": "far"}
    session.on_event(new_event("kiosk.beacon.enter", beacon))
    assert session.snapshot().phone_nearby is False
    session.on_event(new_event("kiosk.beacon.zone", {**beacon, "zone": "near"}))
    assert session.snapshot().phone_nearby is True
    assert session.identify_nearby_phone() is True
    assert session.snapshot().id_hash == "phonehash1"
    assert session.snapshot().source == "phone"
    session.on_event(new_event("kiosk.beacon.exit", {**beacon, "zone": "near", "dwell_s": 3}))
    assert session.snapshot().phone_nearby is False
    # Store beacons never count as a shopper's phone.
    session.on_event(
        new_event("kiosk.beacon.enter", {**beacon, "beacon_class": "store", "zone": "immediate"})
    )
    assert session.snapshot().phone_nearby is False
    # A phone whose exit was lost goes stale.
    session.on_event(new_event("local.presence.phone", {"id": "p2", "zone": "immediate"}))
    assert session.snapshot().phone_nearby is True
    clock.now += 31
    assert session.snapshot().phone_nearby is False


def test_malformed_bus_events_are_ignored(session: SessionManager, events: list[Event]) -> None:
    """Scans without the expected fields change nothing and raise nothing."""
    session.on_event(new_event("kiosk.loyalty.scan", {"id_hash": 5}))
    session.on_event(new_event("kiosk.product.scan", {}))
    session.on_event(new_event("kiosk.beacon.enter", {"beacon_class": "phone"}))
    assert events == []


def test_component_reacts_to_the_real_bus(catalog: CatalogStore) -> None:
    """Through the real bus: a loyalty scan is seen and idle ends the session."""

    async def scenario() -> list[str]:
        bus = Bus()
        bus.bind(asyncio.get_running_loop())
        seen: list[str] = []
        bus.subscribe(lambda e: seen.append(e.type), "kiosk.session.", "local.session.")
        clock = Clock()
        manager = SessionManager(catalog, bus.publish, 10.0, clock=clock)
        component = SessionComponent(manager, bus, Health())
        task = asyncio.create_task(component.run())
        await asyncio.sleep(0.05)
        bus.publish(new_event("kiosk.loyalty.scan", {"id_hash": DEMO_HASH}))
        clock.now += 11
        await asyncio.sleep(1.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen

    seen = asyncio.run(scenario())
    assert seen == [
        "kiosk.session.start",
        "local.session.welcome",
        "kiosk.session.end",
        "local.session.cleared",
    ]


def test_another_card_replaces_the_shopper(session: SessionManager, events: list[Event]) -> None:
    """A second, different card while identified: the first shopper is forgotten first."""
    session.identify(DEMO_HASH, "loyalty")
    session.add_compare("TV-001")
    generation = session.generation
    events.clear()
    session.identify("other", "loyalty")
    assert types(events) == [
        "kiosk.session.end",
        "local.session.cleared",
        "kiosk.session.start",
        "local.session.welcome",
    ]
    assert events[0].data["reason"] == "replaced"
    assert session.snapshot().compare == []
    assert session.generation == generation + 1
