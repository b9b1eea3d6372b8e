"""JSON API under /api/: the same data the pages show, for scripts and other screens.

Bad input is answered 400 with ``{"error": ..., "field": ...}`` naming the field; an unknown
SKU 404. ``/api/events`` streams the local events the screen reacts to (Server-Sent Events).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any, Final

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context

from edge import __version__
from edge.catalog.codec import offer_to_dict, product_to_dict, review_to_dict
from edge.catalog.compare import compare_rows
from edge.catalog.store import ProductHit
from edge.session import MAX_COMPARE
from kiosk_ui import services_of
from kiosk_ui.blueprints.product import product_context, review_limiter, submit_review
from kiosk_ui.forms import parse_search, validate_review
from kiosk_ui.i18n import current_language
from kiosk_ui.security import csrf_token, require_csrf
from kiosk_ui.web import (
    catalog,
    publish,
    query_for_event,
    require_catalog,
    session_id,
    shopper_session,
)

_LOGGER = logging.getLogger(__name__)

bp = Blueprint("api", __name__)

# Local events the kiosk screen reacts to, and the SSE event name each is sent as.
STREAM_EVENTS: Final = {
    "local.session.welcome": "welcome",
    "local.session.cleared": "cleared",
    "local.product.open": "product",
    "local.kiosk.identify": "identify",
}
# A comment line this often keeps the stream alive and lets the server notice a closed tab
# (waitress only learns of a disconnect when a write fails), freeing its thread.
KEEPALIVE_S: Final = 2.0
# Each open stream holds a server thread; the kiosk shows one page at a time, so beyond this
# many streams the oldest (a page already left) is ended.
MAX_STREAMS: Final = 3
# How often a waiting stream checks whether the daemon is stopping.
STREAM_POLL_S: Final = 0.5


def _error(message: str, field: str, status: int = 400, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, "field": field, **extra}), status


def hit_to_dict(hit: ProductHit) -> dict[str, Any]:
    """A product with its rating, as the API lists it."""
    data = product_to_dict(hit.product)
    data["rating"] = {"average": round(hit.rating_avg, 2), "count": hit.rating_count}
    return data


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


@bp.get("/products")
def products() -> Response | tuple[Response, int]:
    """Search: q, category, price_min, price_max, sort, limit, offset (query string)."""
    store = require_catalog()
    query, errors = parse_search(request.args)
    if errors:
        field, message = next(iter(errors.items()))
        return _error(f"{field} {message}", field)

    def answer() -> tuple[int, bytes]:
        result = store.search(query)
        body = {
            "total": result.total,
            "limit": query.limit,
            "offset": query.offset,
            "items": [hit_to_dict(h) for h in result.hits],
        }
        return result.total, json.dumps(body, ensure_ascii=False).encode()

    # The same search is asked again and again: keep its JSON until the catalog changes.
    total, body = store.memoize(("api.products", query), answer)
    if query.text or query.category:
        publish(
            "kiosk.search",
            {
                "query": query_for_event(query.text),
                "category": query.category or None,
                "results": total,
                "session_id": session_id(),
            },
        )
    return Response(body, mimetype="application/json")


@bp.get("/products/<sku>")
def product(sku: str) -> Response | tuple[Response, int]:
    """One product with rating summary, offers and approved reviews."""
    store = require_catalog()
    if store.get_product(sku) is None:
        return _error("unknown product", "sku", 404, sku=sku)
    ctx = product_context(store, sku)
    summary = ctx["summary"]
    return jsonify(
        {
            "product": product_to_dict(ctx["product"]),
            "rating": {
                "average": summary.average,
                "count": summary.count,
                "distribution": {str(k): v for k, v in summary.distribution.items()},
            },
            "offers": [offer_to_dict(o) for o in ctx["offers"]],
            "reviews": [review_to_dict(r) for r in ctx["reviews"]],
        }
    )


@bp.get("/compare")
def compare() -> Response | tuple[Response, int]:
    """Rows of the comparison of 2-4 products: ``?sku=A&sku=B``."""
    store = require_catalog()
    skus = request.args.getlist("sku")
    if not 2 <= len(skus) <= MAX_COMPARE:
        return _error(f"give 2 to {MAX_COMPARE} sku parameters, got {len(skus)}", "sku")
    if len(set(skus)) != len(skus):
        return _error("the same sku is given twice", "sku")
    found = store.get_products(skus)
    missing = [s for s in skus if s not in {p.sku for p in found}]
    if missing:
        return _error("unknown product", "sku", 404, sku=missing[0])
    lang = current_language()

    def answer() -> bytes:
        rows = compare_rows(found, lang)
        body = {
            "products": [product_to_dict(p) for p in found],
            "rows": [
                {
                    "key": r.key,
                    "label": r.label,
                    "unit": r.unit,
                    "better": r.better,
                    "differs": r.differs,
                    "cells": [{"value": c.value, "best": c.best} for c in r.cells],
                }
                for r in rows
            ],
        }
        return json.dumps(body, ensure_ascii=False).encode()

    body = store.memoize(("api.compare", tuple(skus), lang), answer)
    publish("kiosk.compare", {"skus": skus, "session_id": session_id()})
    return Response(body, mimetype="application/json")


@bp.post("/reviews")
@require_csrf
def reviews() -> tuple[Response, int]:
    """Submit a review: ``{sku, rating, title, text, author, consent: true}`` -> 201 pending."""
    store = require_catalog()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error("expected a JSON object", "body")
    sku = body.get("sku")
    if not isinstance(sku, str) or not sku:
        return _error("sku is required", "sku")
    if store.get_product(sku) is None:
        return _error("unknown product", "sku", 404, sku=sku)
    review, errors = validate_review(body)
    if review is None:
        field, message = next(iter(errors.items()))
        return jsonify({"error": f"{field} {message}", "field": field, "errors": errors}), 400
    limiter = review_limiter()
    if not limiter.allow():
        response = jsonify({"error": "too many reviews; try again later", "field": "rate"})
        response.headers["Retry-After"] = str(limiter.retry_after())
        return response, 429
    stored = submit_review(store, sku, review, current_language())
    return jsonify({"id": stored.id, "status": stored.status}), 201


@bp.get("/session")
def session_state() -> Response:
    """The screen's state: CSRF token, identification, compare list, phone nearby."""
    manager = shopper_session()
    state = manager.snapshot() if manager else None
    return jsonify(
        {
            "csrf_token": csrf_token(),
            "active": bool(state and state.active),
            "identified": bool(state and state.identified),
            "first_name": state.first_name if state else "",
            "compare": state.compare if state else [],
            "phone_nearby": bool(state and state.phone_nearby),
            "lang": current_language(),
        }
    )


@bp.post("/session/activity")
@require_csrf
def activity() -> Response:
    """The shopper is doing something on screen (typing, scrolling): postpone the idle end."""
    return jsonify({"ok": True})


@bp.post("/session/end")
@require_csrf
def end() -> Response:
    """End the shopper session."""
    manager = shopper_session()
    if manager is not None:
        manager.end("ended")
    return jsonify({"ok": True})


@bp.post("/compare/items")
@require_csrf
def compare_add() -> Response | tuple[Response, int]:
    """Add ``{sku}`` to the compare list."""
    body = request.get_json(silent=True)
    sku = body.get("sku") if isinstance(body, dict) else None
    if not isinstance(sku, str) or not sku:
        return _error("sku is required", "sku")
    store = catalog()
    if store is None or store.get_product(sku) is None:
        return _error("unknown product", "sku", 404, sku=sku)
    manager = shopper_session()
    items = manager.add_compare(sku) if manager else []
    return jsonify({"compare": items})


_streams_lock = threading.Lock()


def _register_stream(streams: list[threading.Event]) -> threading.Event:
    """A stop flag for a new stream; ends the oldest streams beyond MAX_STREAMS."""
    stop = threading.Event()
    with _streams_lock:
        streams.append(stop)
        while len(streams) > MAX_STREAMS:
            streams.pop(0).set()
    return stop


def _unregister_stream(streams: list[threading.Event], stop: threading.Event) -> None:
    with _streams_lock:
        if stop in streams:
            streams.remove(stop)


def _sse(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@bp.get("/events")
def events() -> Response:
    """Server-Sent Events: welcome, cleared, product, identify, phone (nearby or not)."""
    services = services_of(current_app)
    sub = services.bus.subscribe_thread(*STREAM_EVENTS, "local.presence.phone", "kiosk.beacon.")
    manager = services.session
    streams: list[threading.Event] = current_app.extensions.setdefault("kiosk_streams", [])
    stop = _register_stream(streams)

    def stream() -> Iterator[str]:
        """Hello first, then each local event as it comes, keepalives in between."""
        phone = bool(manager and manager.snapshot().phone_nearby)
        try:
            yield "retry: 2000\n" + _sse("hello", {"phone_nearby": phone})
            idle = 0.0
            while not services.stopping.is_set() and not stop.is_set():
                event = sub.get(timeout=STREAM_POLL_S)
                if event is None:
                    idle += STREAM_POLL_S
                    if idle >= KEEPALIVE_S:
                        idle = 0.0
                        yield ": keepalive\n\n"
                    continue
                idle = 0.0
                name = STREAM_EVENTS.get(event.type)
                if name is not None:
                    yield _sse(name, event.data)
                    continue
                now = bool(manager and manager.snapshot().phone_nearby)
                if now != phone:
                    phone = now
                    yield _sse("phone", {"nearby": phone})
        finally:
            sub.close()
            _unregister_stream(streams, stop)

    response = Response(stream_with_context(stream()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response
