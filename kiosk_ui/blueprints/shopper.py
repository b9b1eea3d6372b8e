"""The attract screen and the shopper's own controls: language, text size, "it's me",
"not me / end session"."""

from __future__ import annotations

import logging
from datetime import date

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from kiosk_ui.i18n import LANGUAGES
from kiosk_ui.security import require_csrf, safe_next
from kiosk_ui.web import catalog, services, session_id, shopper_session

_LOGGER = logging.getLogger(__name__)

bp = Blueprint("shopper", __name__)


def _back(default: str = "shopper.home") -> Response:
    """Redirect to the page the form was on (same site only), else ``default``."""
    target = safe_next(request.form.get("next", ""))
    if target is not None:
        return redirect(target, code=303)
    return redirect(url_for(default), code=303)


@bp.get("/")
def home() -> str:
    """The attract screen (or "needs attention" when the configuration is unusable)."""
    svc = services()
    if svc.config_problems:
        return render_template("attention.html", problems=svc.config_problems)
    store = catalog()
    categories = store.categories() if store else []
    covers = {}
    if store:
        from edge.catalog.store import SearchQuery

        for slug, _ in categories:
            hits = store.search(SearchQuery(category=slug, sort="rating", limit=1)).hits
            if hits:
                covers[slug] = hits[0].product.image
    offers = store.offers_for(date.today(), ()) if store else []
    return render_template("home.html", categories=categories, covers=covers, offers=offers[:3])


@bp.post("/prefs")
@require_csrf
def prefs() -> Response:
    """Switch the language or the larger-text mode for this shopper."""
    lang = request.form.get("lang")
    if lang in LANGUAGES:
        session["lang"] = lang
        # Remembered with the session it was made in: a shopper profile's language replaces
        # a choice made before identifying (see i18n.choose_language).
        session["lang_session"] = session_id()
        g.pop("_kiosk_lang", None)
    if "large" in request.form:
        session["large"] = request.form.get("large") == "1"
    return _back()


@bp.post("/session/end")
@require_csrf
def end_session() -> Response:
    """ "Not me / end session": forget the shopper now and return to the attract screen."""
    manager = shopper_session()
    if manager is not None:
        manager.end("ended")
    session.clear()
    return redirect(url_for("shopper.home"), code=303)


@bp.post("/session/its-me")
@require_csrf
def its_me() -> Response:
    """The shopper confirms the phone detected near the kiosk is theirs."""
    manager = shopper_session()
    if manager is not None:
        manager.identify_nearby_phone()
    return _back()
