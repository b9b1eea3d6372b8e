"""Wiring of the barcode readers into the daemon: one shared scan router, two components.

The camera and the USB scanner share one ScanRouter (kept in ``services.extras``) so the
same card read by both within the duplicate window is one scan.
"""

from __future__ import annotations

import logging
from typing import Final

from edge.barcodes.scans import ScanRouter
from edge.services import Services
from edge.supervisor import Component

_LOGGER = logging.getLogger(__name__)

ROUTER_KEY: Final = "barcodes.router"


def scan_router(services: Services) -> ScanRouter:
    """The appliance's scan router, created on first use; publishes from any thread.

    It is built again when the settings it was made from changed (a live reload of the
    barcodes section rebuilds the camera and the scanner, which then share the new one).
    """
    cfg = services.config.barcodes
    settings = ([p.model_dump() for p in cfg.loyalty_patterns], cfg.duplicate_window_s)
    kept = services.extras.get(ROUTER_KEY)
    if kept is not None and kept[0] == settings:
        router: ScanRouter = kept[1]
        return router
    router = ScanRouter(
        cfg.loyalty_patterns, cfg.duplicate_window_s, services.salt, services.publish
    )
    services.extras[ROUTER_KEY] = (settings, router)
    return router


def camera_component(services: Services) -> Component | None:
    """The camera reader when barcodes.enabled; None otherwise."""
    if not services.config.barcodes.enabled:
        return None
    from edge.barcodes.camera import CameraComponent

    return CameraComponent(services, scan_router(services))


def hid_component(services: Services) -> Component | None:
    """The USB keyboard-wedge reader when barcodes.hid_enabled; None otherwise."""
    if not services.config.barcodes.hid_enabled:
        return None
    from edge.barcodes.hid import HidComponent

    return HidComponent(services, scan_router(services))
