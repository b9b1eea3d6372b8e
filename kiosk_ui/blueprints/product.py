"""The product page (specs, offers, ratings, reviews) and writing a review."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from typing import Any, Final

from flask import Blueprint, abort, render_template, request, session

from edge.catalog.codec import review_to_dict
from edge.catalog.models import Review
from edge.catalog.store import CatalogStore
from edge.session import SessionState
from kiosk_ui.forms import ReviewInput, validate_review
from kiosk_ui.i18n import current_language
from kiosk_ui.security import client_limiter, personalise, render_shared, require_csrf
from kiosk_ui.web import publish, require_catalog, services, session_id

_LOGGER = logging.getLogger(__name__)

bp = Blueprint("product", __name__)

# A kiosk's reviews come from people standing at one screen: more than this many in ten
# minutes is someone (or something) flooding the moderation queue.
REVIEW_LIMIT: Final = 5
REVIEW_WINDOW_S: Final = 600.0


def product_context(store: CatalogStore, sku: str) -> dict[str, Any]:
    """Everything the product page and the API show for one product."""
    hit = store.get_hit(sku)
    if hit is None:
        abort(404)
    manager = services().session
    segments = manager.snapshot().segments if manager else ()
    return {
        "product": hit.product,
        "summary": store.rating_summary(sku),
        "offers": store.offers_for(date.today(), segments, sku=sku),
        "reviews": store.reviews_for(sku)[:50],
    }


@bp.get("/products/<sku>")
def show(sku: str) -> str:
    """One product.

    The page is rendered once per product and everything the page shows about the shopper's
    session (language, text size, identity and offers, compare list, phone nearby, the URL),
    kept until the catalog changes, and given each browser's CSRF token on the way out:
    a busy kiosk shows the same few pages over and over.
    """
    store = require_catalog()
    if store.get_product(sku) is None:
        abort(404)
    lang = current_language()
    manager = services().session
    state = manager.snapshot() if manager else SessionState()
    key = (
        "page.product",
        sku,
        lang,
        bool(session.get("large")),
        state.active,
        state.identified,
        state.first_name,
        state.segments,
        tuple(state.compare),
        state.phone_nearby,
        request.full_path,
        date.today(),
    )

    def page() -> str:
        context = product_context(store, sku)
        return render_shared(lambda: render_template("product.html", skus=[sku], **context))

    html = store.memoize(key, page)
    publish(
        "kiosk.product.view",
        {"sku": sku, "session_id": session_id(), "via": request.args.get("via", "touch")[:16]},
    )
    return personalise(html)


def submit_review(store: CatalogStore, sku: str, review: ReviewInput, lang: str) -> Review:
    """Store a kiosk review as pending and tell central (kiosk.review.submitted)."""
    cfg = services().config.device
    stored = Review(
        id=uuid.uuid4().hex,
        sku=sku,
        rating=review.rating,
        title=review.title,
        text=review.text,
        author=review.author,
        date=date.today(),
        store=cfg.store_id,
        status="pending",
        source="kiosk",
    )
    store.add_review(stored)
    data = review_to_dict(stored)
    data.update(device=cfg.device_id, lang=lang, consent=True)
    publish("kiosk.review.submitted", data)
    _LOGGER.info("review %s of %s stored, pending moderation", stored.id, sku)
    return stored


def review_limiter() -> Any:
    """The kiosk-wide review rate limiter."""
    return client_limiter("reviews", REVIEW_LIMIT, REVIEW_WINDOW_S)


@bp.get("/products/<sku>/review")
def review_form(sku: str) -> str:
    """The review form."""
    product = require_catalog().get_product(sku)
    if product is None:
        abort(404)
    return render_template("review.html", product=product, errors={}, form={})


@bp.post("/products/<sku>/review")
@require_csrf
def review_post(sku: str) -> tuple[str, int] | str:
    """Validate and store a review; thank the shopper (it appears after moderation)."""
    store = require_catalog()
    product = store.get_product(sku)
    if product is None:
        abort(404)
    review, errors = validate_review(request.form)
    if review is None:
        return render_template(
            "review.html", product=product, errors=errors, form=request.form
        ), 400
    limiter = review_limiter()
    if not limiter.allow():
        return render_template(
            "review.html", product=product, errors={}, form=request.form, limited=True
        ), 429
    submit_review(store, sku, review, current_language())
    return render_template("thanks.html", product=product)
