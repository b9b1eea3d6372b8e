"""The services the daemon builds once and hands to every part (UI, relay, commands).

Each optional service is filled in by the daemon when its component is enabled; the kiosk
UI and the command handlers check for None and degrade (e.g. no printer: no Print button).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from edge.bus import Bus
from edge.config import Config
from edge.events import Event
from edge.health import Health


@dataclass
class Services:
    """Shared state of one running appliance."""

    config: Config
    bus: Bus
    health: Health
    salt: str
    config_problems: list[str] = field(default_factory=list)  # non-empty: "needs attention"
    loop: asyncio.AbstractEventLoop | None = None
    # Filled in by the owning modules; typed there (see each attribute's module).
    supervisor: Any = None  # edge.supervisor.Supervisor
    catalog: Any = None  # edge.catalog.store.CatalogStore
    session: Any = None  # edge.session.SessionManager
    outbox: Any = None  # edge.relay.outbox.Outbox
    relay: Any = None  # edge.relay.mqtt.MqttRelay
    printer: Any = None  # edge.takeaway.printer.PrintQueue
    mail: Any = None  # edge.takeaway.mail.MailQueue
    extras: dict[str, Any] = field(default_factory=dict)
    # Set when the daemon shuts down: long-lived responses (Server-Sent Events) end on it.
    stopping: threading.Event = field(default_factory=threading.Event)

    def publish(self, event: Event) -> None:
        """Publish an event on the bus from any thread."""
        if self.loop is None:
            self.bus.publish(event)
        else:
            self.bus.publish_threadsafe(event)
