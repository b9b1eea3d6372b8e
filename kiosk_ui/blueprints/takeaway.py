"""Take the comparison home: print it, e-mail it, or show a QR code (JSON under /api/takeaway).

``POST print`` and ``POST email`` answer 202 with a job id as soon as the job is durable in its
queue; ``GET jobs/<id>`` gives its state so the screen can say "printed", "sent" or "the
printer needs attention". The e-mail address is passed to the mail queue and nowhere else:
not to events, not to logs, not back in any response.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from flask import Blueprint, Response, jsonify, request, url_for

from edge.catalog.models import Product
from edge.takeaway import qr
from edge.takeaway.compare import LANGUAGES, language_of
from edge.takeaway.mail import AddressError
from edge.takeaway.receipt import EncodeOptions, ReceiptContext, ReceiptError, render_comparison
from kiosk_ui import web
from kiosk_ui.security import same_origin

_LOGGER = logging.getLogger(__name__)

bp = Blueprint("takeaway", __name__)

# The compare screen shows at most four products; a receipt or mail of more is not a comparison.
MAX_SKUS: Final = 4
# Receipts waiting for the printer beyond this are refused (the shopper is offered e-mail or
# the QR code): once the printer is back, a long backlog would print receipts for shoppers
# long gone, and a playful visitor cannot queue a roll's worth of paper.
MAX_WAITING_PRINTS: Final = 5
# Mails waiting for the server beyond this are refused: the queue (and the addresses in it)
# stays small through a long outage, and the kiosk cannot be used to queue a mass mailing.
MAX_WAITING_MAILS: Final = 50
# What the kiosk screen says, per language (the rest of the UI has its own catalogues).
TEXTS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "print": "Imprimer",
        "email": "M'envoyer par e-mail",
        "qr": "Scanner pour l'emporter",
        "address": "Votre adresse e-mail",
        "consent": "J'accepte que cette adresse serve uniquement à m'envoyer ce comparatif ; "
        "elle est effacée de la borne dès l'envoi.",
        "send": "Envoyer",
        "cancel": "Annuler",
        "close": "Fermer",
        "qr_hint": "Scannez ce code avec votre téléphone pour retrouver ce comparatif.",
        "queued_print": "Impression en cours…",
        "printed": "Votre ticket est imprimé.",
        "attention": "L'imprimante demande l'intervention d'un vendeur ; votre ticket "
        "sortira dès qu'elle sera prête.",
        "interrupted": "L'impression a été interrompue ; demandez à un vendeur.",
        "queued_email": "E-mail en préparation…",
        "waiting_email": "E-mail en attente : il partira dès que possible.",
        "sent": "E-mail envoyé.",
        "failed": "Désolé, l'envoi n'a pas abouti.",
        "error": "Une erreur est survenue.",
        "busy": "L'imprimante n'est pas disponible pour le moment ; recevez ce comparatif "
        "par e-mail ou scannez le code QR.",
        "busy_email": "L'envoi d'e-mails n'est pas disponible pour le moment ; scannez le "
        "code QR pour emporter ce comparatif.",
    },
    "en": {
        "print": "Print",
        "email": "E-mail me",
        "qr": "Scan to take it with you",
        "address": "Your e-mail address",
        "consent": "I agree this address is used only to send me this comparison; it is "
        "erased from the kiosk as soon as it is sent.",
        "send": "Send",
        "cancel": "Cancel",
        "close": "Close",
        "qr_hint": "Scan this code with your phone to keep this comparison.",
        "queued_print": "Printing…",
        "printed": "Your receipt is printed.",
        "attention": "The printer needs a staff member; your receipt will print as soon as "
        "it is ready.",
        "interrupted": "Printing was interrupted; please ask a staff member.",
        "queued_email": "Preparing your e-mail…",
        "waiting_email": "E-mail waiting: it will be sent as soon as possible.",
        "sent": "E-mail sent.",
        "failed": "Sorry, the e-mail could not be sent.",
        "error": "Something went wrong.",
        "busy": "The printer is not available right now; get this comparison by e-mail or "
        "scan the QR code.",
        "busy_email": "E-mail is not available right now; scan the QR code to take this "
        "comparison with you.",
    },
}


class BadRequest(Exception):
    """A request the kiosk cannot act on; ``status`` and a sentence for the screen."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@bp.errorhandler(BadRequest)
def _bad_request(exc: BadRequest) -> tuple[Response, int]:
    return jsonify({"error": str(exc)}), exc.status


def _body() -> dict[str, Any]:
    """The JSON body; JSON only, which a cross-site form cannot send without CORS (CSRF)."""
    if not request.is_json:
        raise BadRequest("send the request as application/json", 415)
    if request.headers.get("Origin") and not same_origin():
        raise BadRequest("cross-origin requests are not accepted", 403)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _skus(raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        raise BadRequest("give 'skus' as a list of 1 to 4 product SKUs")
    skus = list(dict.fromkeys(s.strip() for s in raw if s.strip()))
    if not 1 <= len(skus) <= MAX_SKUS:
        raise BadRequest(f"give 'skus' as a list of 1 to {MAX_SKUS} product SKUs")
    return skus


def _products(skus: Sequence[str]) -> list[Product]:
    store = web.require_catalog()
    products: list[Product] = store.get_products(list(skus))
    missing = sorted(set(skus) - {p.sku for p in products})
    if missing:
        raise BadRequest(f"unknown product(s): {', '.join(missing)}", 404)
    return products


def _lang(body: dict[str, Any]) -> str:
    """The shopper's language: asked for, else the identified shopper's, else the kiosk's."""
    asked = body.get("lang")
    if isinstance(asked, str) and asked[:2].lower() in LANGUAGES:
        return asked[:2].lower()
    services = web.services()
    if services.session is not None:
        locale = services.session.snapshot().locale
        if locale:
            return language_of(locale)
    return language_of(services.config.device.locale)


def _url(skus: Sequence[str]) -> str:
    try:
        return qr.takeaway_url(web.services().config.kiosk.compare_url_template, skus)
    except qr.QrError as exc:
        raise BadRequest(str(exc)) from None


def _refuse_when_backlogged(waiting: int, limit: int, lang: str, text_key: str) -> None:
    """503 with TEXTS[lang][text_key] (what to use instead) when ``limit`` jobs already wait."""
    if waiting >= limit:
        _LOGGER.warning("take-away refused (%s): %d jobs already waiting", text_key, waiting)
        raise BadRequest(TEXTS[language_of(lang)][text_key], 503)


def _accepted(job_id: str) -> tuple[Response, int]:
    status = url_for("takeaway.job", job_id=job_id)
    response = jsonify({"job_id": job_id, "state": "queued", "status_url": status})
    response.headers["Location"] = status
    return response, 202


@bp.post("/print")
def print_receipt() -> tuple[Response, int]:
    """Queue the comparison (or one product) for the receipt printer; 202 with the job id."""
    services = web.services()
    if services.printer is None:
        raise BadRequest("printing is not available on this kiosk", 503)
    body = _body()
    skus = _skus(body.get("skus"))
    lang = _lang(body)
    _refuse_when_backlogged(services.printer.depth(), MAX_WAITING_PRINTS, lang, "busy")
    products = _products(skus)
    cfg = services.config
    ctx = ReceiptContext(
        store_name=cfg.printer.store_name or cfg.device.store_id,
        kiosk=cfg.device.device_id,
        when=datetime.now().astimezone(),
        url=_url(skus),
        lang=lang,
        width=cfg.printer.columns,
    )
    try:
        data = render_comparison(
            products, ctx, EncodeOptions(cfg.printer.profile, cfg.printer.codepage, cfg.printer.qr)
        )
    except ReceiptError as exc:
        _LOGGER.error("receipt not rendered: %s", exc)
        raise BadRequest(f"the receipt cannot be printed: {exc}", 500) from None
    job_id = services.printer.submit(data, kind="receipt", skus=skus)
    web.publish(
        "kiosk.takeaway.print",
        {"job_id": job_id, "skus": skus, "lang": lang, "session_id": web.session_id()},
    )
    return _accepted(job_id)


@bp.post("/email")
def email() -> tuple[Response, int]:
    """Queue the comparison e-mail after explicit consent; 202 with the job id."""
    services = web.services()
    if services.mail is None:
        raise BadRequest("e-mail is not available on this kiosk", 503)
    body = _body()
    if body.get("consent") is not True:
        raise BadRequest("the shopper must agree to the use of the address (consent: true)")
    address = body.get("email")
    if not isinstance(address, str):
        raise BadRequest("give the e-mail address as 'email'")
    skus = _skus(body.get("skus"))
    lang = _lang(body)
    _refuse_when_backlogged(services.mail.depth(), MAX_WAITING_MAILS, lang, "busy_email")
    products = _products(skus)
    try:
        job_id = services.mail.submit(address, products, lang)
    except AddressError as exc:
        raise BadRequest(str(exc), 422) from None
    web.publish(
        "kiosk.takeaway.email",
        {"job_id": job_id, "skus": skus, "lang": lang, "session_id": web.session_id()},
    )
    return _accepted(job_id)


@bp.post("/qr")
def show_qr() -> Response:
    """The link and QR image for these products (the shopper chose "scan to take it")."""
    body = _body()
    skus = _skus(body.get("skus"))
    _products(skus)
    url = _url(skus)
    web.publish("kiosk.takeaway.qr", {"skus": skus, "session_id": web.session_id()})
    return jsonify({"url": url, "image": url_for("takeaway.qr_image", sku=skus)})


@bp.get("/qr.svg")
def qr_image() -> Response:
    """The QR code for ``?sku=A&sku=B`` as SVG (no event: images may be reloaded)."""
    skus = _skus(request.args.getlist("sku"))
    response = Response(qr.svg(_url(skus)), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "max-age=3600"
    return response


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> tuple[Response, int]:
    """A print or mail job's state (never the address); 404 when unknown."""
    services = web.services()
    found: Any = None
    if job_id.startswith("p-") and services.printer is not None:
        found = services.printer.job(job_id)
    elif job_id.startswith("m-") and services.mail is not None:
        found = services.mail.job(job_id)
    if found is None:
        return jsonify({"error": "no such job"}), 404
    data: dict[str, Any] = found.as_dict()
    if job_id.startswith("p-"):
        problem = services.printer.problem
        data["attention"] = data["state"] == "queued" and problem is not None
    return jsonify(data), 200


@bp.app_context_processor
def _template_context() -> dict[str, Any]:
    """What ``takeaway/_actions.html`` needs: texts in the page's language and availability."""
    services = web.services()

    def takeaway_texts(lang: str | None = None) -> dict[str, str]:
        return TEXTS[language_of(lang or services.config.device.locale)]

    return {
        "takeaway_texts": takeaway_texts,
        "takeaway_print": services.printer is not None,
        "takeaway_email": services.mail is not None,
    }
