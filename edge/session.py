"""The shopper at the kiosk: who (a salted hash, only once they identify), what they compare,
and when to forget them.

One kiosk has one screen, so there is one session at a time. It starts at the first touch,
scan or identification, becomes personal only when the shopper scans a loyalty card or taps
"it's me" after their phone was detected near the kiosk, and ends when they press "end
session" or after the configured idle time, forgetting everything (identity, compare list,
preferences). Central hears ``kiosk.session.start`` / ``end`` (hashed identity only); the
screen hears the local ``welcome`` / ``cleared`` / ``product.open`` events.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Final, Literal

from edge.catalog.codec import offer_to_dict
from edge.events import Event, new_event

if TYPE_CHECKING:
    from edge.bus import Bus, Subscription
    from edge.catalog.store import CatalogStore
    from edge.services import Services

_LOGGER = logging.getLogger(__name__)

# A comparison wider than four products no longer fits a 1080p screen legibly.
MAX_COMPARE: Final = 4
# How often the idle timer looks at the clock: a shopper gone for 90 s is forgotten within 1 s.
IDLE_CHECK_INTERVAL_S: Final = 1.0
# Phones in these zones are close enough to the screen to offer "it's me".
PHONE_ZONES: Final = frozenset({"immediate", "near"})
# A phone not heard of for this long is no longer offered (in case its exit event was lost).
PHONE_STALE_S: Final = 30.0

EndReason = Literal["idle", "ended", "identified", "replaced"]
IdentitySource = Literal["loyalty", "phone"]


@dataclass
class SessionState:
    """A copy of the current session for the UI (safe to read from any thread)."""

    active: bool = False
    session_id: str = ""
    generation: int = 0
    id_hash: str | None = None
    source: IdentitySource | None = None
    first_name: str = ""
    segments: tuple[str, ...] = ()
    locale: str = ""
    compare: list[str] = field(default_factory=list)
    phone_nearby: bool = False
    started: float = 0.0
    last_activity: float = 0.0

    @property
    def identified(self) -> bool:
        """True once the shopper scanned their card or confirmed their phone."""
        return self.id_hash is not None


class SessionManager:
    """The one shopper session of this kiosk; thread-safe (loop and waitress threads)."""

    def __init__(
        self,
        catalog: CatalogStore | None,
        publish: Callable[[Event], None],
        idle_timeout_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.catalog = catalog
        self._publish = publish
        self.idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._today = today
        self._lock = threading.RLock()
        self._state = SessionState()
        # Phones near the kiosk: hashed id -> (zone, last heard, monotonic).
        self._phones: dict[str, tuple[str, float]] = {}

    # -- reading -----------------------------------------------------------------------

    def snapshot(self) -> SessionState:
        """A copy of the current state."""
        with self._lock:
            s = self._state
            return SessionState(
                s.active,
                s.session_id,
                s.generation,
                s.id_hash,
                s.source,
                s.first_name,
                s.segments,
                s.locale,
                list(s.compare),
                self._nearest_phone() is not None,
                s.started,
                s.last_activity,
            )

    @property
    def generation(self) -> int:
        """Changes every time a session ends: the UI drops per-browser state on a change."""
        with self._lock:
            return self._state.generation

    def welcome_data(self) -> dict[str, Any] | None:
        """What the welcome banner shows (first name and offers), or None when anonymous."""
        with self._lock:
            s = self._state
            if s.id_hash is None:
                return None
            found = self.catalog.offers_for(self._today(), s.segments) if self.catalog else []
            # The welcome shows what is meant for this shopper: their segments' offers, then
            # store-wide ones; offers tied to a few products belong on those product pages.
            offers = [o for o in found if o.segments or not o.skus]
            return {
                "first_name": s.first_name,
                "locale": s.locale,
                "segments": list(s.segments),
                "offers": [offer_to_dict(o) for o in offers],
            }

    # -- shopper actions ---------------------------------------------------------------

    def touch(self, trigger: str = "touch", *, start: bool = True) -> str:
        """Record activity; starts an anonymous session if none runs (unless ``start`` is
        False, e.g. for showing the attract screen). Returns the session id ("" if none)."""
        with self._lock:
            now = self._clock()
            if not self._state.active:
                if not start:
                    return ""
                self._start(now, trigger)
            self._state.last_activity = now
            return self._state.session_id

    def identify(self, id_hash: str, source: IdentitySource) -> None:
        """The shopper identified: a new personal session (the previous one ends)."""
        with self._lock:
            now = self._clock()
            s = self._state
            if s.active and s.id_hash == id_hash:
                s.last_activity = now
                self._welcome()
                return
            keep: list[str] = []
            if s.active and s.id_hash is None:
                # The anonymous shopper identified: the same person, so the screen keeps
                # their compare list and preferences; central sees a new, personal session.
                keep = list(s.compare)
                self._end(now, "identified", forget=False)
            elif s.active:
                # Another card while someone is identified: a different person.
                self._end(now, "replaced")
                self._publish(new_event("local.session.cleared", {"reason": "replaced"}))
            self._state.compare = keep
            profile = self.catalog.shopper(id_hash) if self.catalog else None
            self._state.id_hash = id_hash
            self._state.source = source
            if profile is not None:
                self._state.first_name = profile.first_name
                self._state.segments = profile.segments
                self._state.locale = profile.locale
            self._start(now, source)
            self._welcome()

    def identify_nearby_phone(self) -> bool:
        """ "It's me": identify as the phone nearest the kiosk; False if none is near."""
        with self._lock:
            phone = self._nearest_phone()
            if phone is None:
                return False
            self.identify(phone, "phone")
            return True

    def end(self, reason: EndReason = "ended") -> None:
        """End the session now ("not me / end session"), forgetting the shopper."""
        with self._lock:
            if self._state.active:
                self._end(self._clock(), reason)
            else:
                self._reset()
            self._publish(new_event("local.session.cleared", {"reason": reason}))

    def add_compare(self, sku: str) -> list[str]:
        """Add a product to the compare list (oldest dropped beyond four); the new list."""
        with self._lock:
            self.touch()
            items = [s for s in self._state.compare if s != sku]
            items.append(sku)
            self._state.compare = items[-MAX_COMPARE:]
            return list(self._state.compare)

    def remove_compare(self, sku: str) -> list[str]:
        """Take a product off the compare list; the new list."""
        with self._lock:
            self.touch()
            self._state.compare = [s for s in self._state.compare if s != sku]
            return list(self._state.compare)

    def clear_compare(self) -> None:
        """Empty the compare list."""
        with self._lock:
            self._state.compare = []

    # -- time ------------------------------------------------------------------------------

    def check_idle(self) -> bool:
        """End the session if idle longer than the timeout; True when it did."""
        with self._lock:
            s = self._state
            now = self._clock()
            self._phones = {k: v for k, v in self._phones.items() if now - v[1] <= PHONE_STALE_S}
            if s.active and now - s.last_activity >= self.idle_timeout_s:
                self._end(now, "idle")
                self._publish(new_event("local.session.cleared", {"reason": "idle"}))
                return True
            return False

    # -- bus handlers (run on the loop) ----------------------------------------------------

    def on_event(self, event: Event) -> None:
        """React to scans and presence from the bus."""
        data = event.data
        if event.type == "kiosk.loyalty.scan":
            id_hash = data.get("id_hash")
            if isinstance(id_hash, str) and id_hash:
                self.identify(id_hash, "loyalty")
        elif event.type == "kiosk.product.scan":
            self._product_scanned(data)
        elif event.type == "local.presence.phone" or (
            event.type.startswith("kiosk.beacon.") and data.get("beacon_class") == "phone"
        ):
            self._phone_seen(event.type, data)

    def _product_scanned(self, data: dict[str, Any]) -> None:
        ean = data.get("ean")
        if not isinstance(ean, str) or not ean:
            return
        self.touch("product_scan")
        product = self.catalog.product_by_ean(ean) if self.catalog else None
        payload: dict[str, Any] = {"ean": ean, "sku": product.sku if product else None}
        if product is not None:
            payload["name"] = product.name
        self._publish(new_event("local.product.open", payload))

    def _phone_seen(self, event_type: str, data: dict[str, Any]) -> None:
        phone = data.get("id") or data.get("id_hash")
        if not isinstance(phone, str) or not phone:
            return
        zone = data.get("zone")
        gone = event_type.endswith(".exit") or data.get("present") is False
        with self._lock:
            if gone or zone not in PHONE_ZONES:
                self._phones.pop(phone, None)
            else:
                self._phones[phone] = (str(zone), self._clock())

    # -- internals (lock held) -------------------------------------------------------------

    def _nearest_phone(self) -> str | None:
        now = self._clock()
        live = [(z, k) for k, (z, seen) in self._phones.items() if now - seen <= PHONE_STALE_S]
        if not live:
            return None
        live.sort(key=lambda zk: (zk[0] != "immediate", zk[1]))
        return live[0][1]

    def _start(self, now: float, trigger: str) -> None:
        s = self._state
        s.active = True
        s.session_id = uuid.uuid4().hex
        s.started = now
        s.last_activity = now
        data: dict[str, Any] = {
            "session_id": s.session_id,
            "trigger": trigger,
            "identified": s.id_hash is not None,
        }
        if s.id_hash is not None:
            data["id_hash"] = s.id_hash
            data["id_source"] = s.source
            data["segments"] = list(s.segments)
        self._publish(new_event("kiosk.session.start", data))
        _LOGGER.info("session started (%s)", trigger)

    def _end(self, now: float, reason: EndReason, *, forget: bool = True) -> None:
        s = self._state
        data: dict[str, Any] = {
            "session_id": s.session_id,
            "reason": reason,
            "duration_s": round(max(0.0, now - s.started), 1),
            "identified": s.id_hash is not None,
            "compared": len(s.compare),
        }
        if s.id_hash is not None:
            data["id_hash"] = s.id_hash
        self._publish(new_event("kiosk.session.end", data))
        _LOGGER.info("session ended (%s)", reason)
        self._reset(forget=forget)

    def _reset(self, *, forget: bool = True) -> None:
        generation = self._state.generation + (1 if forget else 0)
        self._state = SessionState(generation=generation)

    def _welcome(self) -> None:
        data = self.welcome_data()
        if data is not None:
            self._publish(new_event("local.session.welcome", data))


class SessionComponent:
    """Feeds the session from the bus and runs its idle timer, as a supervised component."""

    name = "session"

    def __init__(self, session: SessionManager, bus: Bus, health: Any) -> None:
        self.session = session
        self.bus = bus
        self.health = health

    async def run(self) -> None:
        """Subscribe to scans and presence, then check the idle timer every second."""
        sub: Subscription = self.bus.subscribe(
            self.session.on_event,
            "kiosk.loyalty.scan",
            "kiosk.product.scan",
            "kiosk.beacon.",
            "local.presence.phone",
        )
        self.health.set(self.name, "ok")
        try:
            while True:
                await asyncio.sleep(IDLE_CHECK_INTERVAL_S)
                self.session.check_idle()
        finally:
            sub.close()


def session_component(services: Services) -> SessionComponent:
    """Open the catalog, create the session manager on the services, and its component."""
    from edge.catalog.boot import open_catalog

    catalog = open_catalog(services)
    manager = SessionManager(catalog, services.publish, services.config.kiosk.idle_timeout_s)
    services.session = manager
    return SessionComponent(manager, services.bus, services.health)
