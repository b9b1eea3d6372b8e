"""The kiosk app's shared plumbing: per-request session bookkeeping, template context,
error pages, product images and the events the screens send to central."""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from flask import Flask, abort, current_app, jsonify, render_template, request, send_from_directory
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from edge.catalog.media import local_image
from edge.catalog.store import CatalogStore, media_dir
from edge.events import new_event
from edge.services import Services
from edge.session import SessionManager, SessionState
from kiosk_ui import services_of
from kiosk_ui.i18n import init_i18n
from kiosk_ui.security import init_security, sync_with_shopper_session

_LOGGER = logging.getLogger(__name__)

# Requests that are not the shopper doing something: they neither start a session nor
# postpone its end. The home page only postpones (showing it must not start a session).
_PASSIVE_PREFIXES: Final = ("/static/", "/media/", "/api/events", "/api/healthz", "/admin")
_HOME_PATHS: Final = ("/", "/api/session")
# A search text with a run of 4+ digits, or 6+ digits in all, may be a card, phone or
# order number: such text never leaves the kiosk.
_DIGIT_RUN: Final = re.compile(r"\d{4,}")
_MAX_DIGITS: Final = 5
# Product images downloaded as SVG: viewed on their own, nothing in them may run or load.
SVG_CONTENT_SECURITY_POLICY: Final = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def query_for_event(text: str) -> str | None:
    """The search text as central may see it, or None when it could be personal data."""
    if _DIGIT_RUN.search(text) or sum(c.isdigit() for c in text) > _MAX_DIGITS:
        return None
    return text.strip()[:100]


def services() -> Services:
    """The Services of the current app."""
    return services_of(current_app)


def catalog() -> CatalogStore | None:
    """The catalog store, if the daemon opened one."""
    store: CatalogStore | None = services().catalog
    return store


def require_catalog() -> CatalogStore:
    """The catalog store, else 503 (an error page, or JSON under /api/)."""
    store = catalog()
    if store is None:
        abort(503, description="the catalog is not available")
    return store


def shopper_session() -> SessionManager | None:
    """The shopper session manager, if running."""
    manager: SessionManager | None = services().session
    return manager


def publish(event_type: str, data: dict[str, Any]) -> None:
    """Send an event onto the bus from a request thread; never fails the request."""
    try:
        services().publish(new_event(event_type, data))
    except RuntimeError:
        _LOGGER.warning("event %s not published: the bus is not running", event_type)


def session_id() -> str:
    """The current shopper session's id (empty when none)."""
    manager = shopper_session()
    return manager.snapshot().session_id if manager else ""


def _before_request() -> None:
    manager = shopper_session()
    if manager is None:
        return
    path = request.path
    # Unknown paths (a browser's automatic /favicon.ico) are not the shopper doing anything:
    # counting them would start a session every time the attract screen is shown.
    if request.endpoint in (None, "static", "media") or path.startswith(_PASSIVE_PREFIXES):
        return
    # Read-only API calls need no browser state: skipping the cookie keeps them cheap.
    if not (request.method == "GET" and path.startswith("/api/") and path != "/api/session"):
        sync_with_shopper_session(manager.generation)
    if path in _HOME_PATHS and request.method == "GET":
        manager.touch(start=False)
    else:
        manager.touch()


def _template_context() -> dict[str, Any]:
    manager = shopper_session()
    state = manager.snapshot() if manager else SessionState()
    welcome = manager.welcome_data() if manager and state.identified else None
    cfg = services().config
    return {
        "kiosk_state": state,
        "welcome": welcome,
        "idle_timeout_s": cfg.kiosk.idle_timeout_s,
        "large_text": bool(_session_flag("large")),
    }


def _session_flag(name: str) -> Any:
    from flask import session

    return session.get(name)


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _http_error(exc: HTTPException) -> Any:
    code = exc.code or 500
    if _wants_json():
        body: dict[str, Any] = {"error": exc.description if code != 400 else "bad request"}
        if exc.description == "csrf":
            body = {"error": "missing or wrong CSRF token", "field": "X-CSRF-Token"}
        elif code == 404:
            body = {"error": "not found"}
        elif code == 413:
            body = {"error": "request too large"}
        return jsonify(body), code
    return render_template("error.html", code=code, csrf=exc.description == "csrf"), code


def _media(name: str) -> WerkzeugResponse:
    folder = media_dir(services().config.device.data_dir)
    response = send_from_directory(folder, name, max_age=86400)
    if name.lower().endswith(".svg"):  # opened on its own, an SVG must not run anything
        response.headers["Content-Security-Policy"] = SVG_CONTENT_SECURITY_POLICY
    return response


def _media_name(image: str) -> str:
    """Template global: the /media/ file for a product image, or "" for the placeholder."""
    return local_image(image, media_dir(services().config.device.data_dir))


def init_web(app: Flask, services_: Services) -> None:
    """Install i18n, security, the per-request hooks, error pages and /media/."""
    init_i18n(app, services_.config.device.data_dir, services_.config.device.locale)
    init_security(app)
    app.before_request(_before_request)
    app.context_processor(_template_context)
    app.register_error_handler(HTTPException, _http_error)
    app.add_url_rule("/media/<path:name>", "media", _media)
    app.jinja_env.globals["media_name"] = _media_name
