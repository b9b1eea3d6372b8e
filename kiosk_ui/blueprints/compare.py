"""Compare 2-4 products side by side, and the compare list the shopper builds."""

from __future__ import annotations

import logging

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from edge.catalog.compare import compare_rows
from edge.session import MAX_COMPARE
from kiosk_ui.i18n import current_language
from kiosk_ui.security import require_csrf, safe_next
from kiosk_ui.web import catalog, publish, session_id, shopper_session

_LOGGER = logging.getLogger(__name__)

bp = Blueprint("compare", __name__)


@bp.get("/compare")
def table() -> str:
    """The comparison of the products named in the URL, else of the shopper's list."""
    skus = request.args.getlist("sku")[:MAX_COMPARE]
    manager = shopper_session()
    if not skus and manager is not None:
        skus = manager.snapshot().compare
    store = catalog()
    products = store.get_products(list(dict.fromkeys(skus))) if store else []
    hide_same = request.args.get("hide_same") == "1"
    rows = compare_rows(products, current_language()) if len(products) >= 2 else []
    shown = [r for r in rows if r.differs or not hide_same]
    if len(products) >= 2:
        publish("kiosk.compare", {"skus": [p.sku for p in products], "session_id": session_id()})
    ratings = {p.sku: store.rating_summary(p.sku) for p in products} if store else {}
    return render_template(
        "compare.html",
        products=products,
        rows=shown,
        hidden=len(rows) - len(shown),
        hide_same=hide_same,
        ratings=ratings,
        skus=[p.sku for p in products],
        max_compare=MAX_COMPARE,
    )


def _back() -> Response:
    target = safe_next(request.form.get("next", ""))
    if target is not None:
        return redirect(target, code=303)
    return redirect(url_for("compare.table"), code=303)


@bp.post("/compare/add")
@require_csrf
def add() -> Response:
    """Put a product on the compare list."""
    sku = request.form.get("sku", "")
    store = catalog()
    manager = shopper_session()
    if manager is not None and store is not None and store.get_product(sku) is not None:
        manager.add_compare(sku)
    return _back()


@bp.post("/compare/remove")
@require_csrf
def remove() -> Response:
    """Take a product off the compare list."""
    manager = shopper_session()
    if manager is not None:
        manager.remove_compare(request.form.get("sku", ""))
    return _back()
