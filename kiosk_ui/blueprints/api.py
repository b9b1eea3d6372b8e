"""JSON API under /api/."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from edge import __version__
from kiosk_ui import services_of

bp = Blueprint("api", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Each component's state and the version; 200 when all enabled components are ok."""
    services = services_of(current_app)
    components = services.health.snapshot()
    ok = services.health.all_ok() and not services.config_problems
    body: dict[str, Any] = {
        "status": "ok" if ok else "degraded",
        "version": __version__,
        "store": services.config.device.store_id,
        "device": services.config.device.device_id,
        "components": components,
    }
    if services.config_problems:
        body["config_problems"] = services.config_problems
    return jsonify(body), 200 if ok else 503
