"""A kiosk Flask app over real services (catalog, session, bus) for page and API tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from edge.catalog.importer import import_file
from edge.catalog.store import media_dir
from edge.config import Config
from edge.daemon import build_services
from edge.events import Event
from edge.services import Services
from edge.session import SessionManager
from kiosk_ui import create_app
from tests.conftest import REPO_ROOT

DEMO_CATALOG = REPO_ROOT / "firmware_config" / "demo" / "catalog.json"


@dataclass
class Kiosk:
    """The app, its services and every event published on its bus."""

    app: Flask
    services: Services
    events: list[Event] = field(default_factory=list)

    @property
    def session(self) -> SessionManager:
        manager: SessionManager = self.services.session
        return manager

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def of_type(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.type == event_type]


def make_kiosk(tmp_path: Path, *, locale: str = "fr_FR", idle_timeout_s: float = 90.0) -> Kiosk:
    """Services with the demo catalog imported and a session manager; bus without a loop."""
    config = Config()
    config.device.data_dir = tmp_path / "data"
    config.device.identity_salt = "demo-salt-not-secret"
    config.device.locale = locale
    config.kiosk.idle_timeout_s = idle_timeout_s
    services = build_services(config)
    from edge.catalog.store import CatalogStore, db_path

    store = CatalogStore(db_path(config.device.data_dir))
    import_file(store, DEMO_CATALOG, media_dir(config.device.data_dir))
    services.catalog = store
    events: list[Event] = []
    services.bus.subscribe(events.append)
    services.session = SessionManager(store, services.publish, idle_timeout_s)
    app = create_app(services)
    app.config["TESTING"] = True
    return Kiosk(app, services, events)
