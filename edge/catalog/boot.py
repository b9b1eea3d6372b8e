"""Open the kiosk's catalog at start-up, importing the configured file on a first boot.

The catalog is a cache of central's state plus an optional seed file: if the database is
unreadable it is moved aside and rebuilt rather than keeping the kiosk from starting.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from edge.catalog.importer import CatalogFileError, import_file
from edge.catalog.store import CatalogStore, db_path, media_dir
from edge.services import Services

_LOGGER = logging.getLogger(__name__)


def open_catalog(services: Services) -> CatalogStore:
    """Create the store under data_dir, seed it when empty, and set ``services.catalog``."""
    data_dir = services.config.device.data_dir
    path = db_path(data_dir)
    try:
        # Opening counts the products (search keys check): an unreadable table fails here.
        store = CatalogStore(path)
        empty = store.is_empty()
    except sqlite3.DatabaseError as exc:
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        _LOGGER.error("catalog database unreadable (%s); moved to %s and rebuilt", exc, aside)
        path.replace(aside)
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        store = CatalogStore(path)
        empty = True
    services.catalog = store
    services.extras.setdefault("on_shutdown", []).append(store.close)
    seed = services.config.kiosk.catalog_file
    if seed is not None and empty:
        try:
            report = import_file(store, seed, media_dir(data_dir))
        except CatalogFileError as exc:
            _LOGGER.error("catalog file not imported: %s", exc)
            services.health.set("catalog", "degraded", f"catalog file not imported: {exc}")
        else:
            _LOGGER.info("first start: %s", report.summary())
            for message in report.errors[:20]:
                _LOGGER.warning("catalog file: rejected %s", message)
    return store
