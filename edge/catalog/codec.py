"""Catalog records to and from plain JSON-able dictionaries (pure, no I/O).

The same dictionaries are stored in SQLite (specs as JSON), served by the kiosk's JSON API
and accepted back by :mod:`edge.catalog.models`' validators, so a record survives a round trip.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.catalog.models import Offer, Product, Review, Shopper, Spec

_LOGGER = logging.getLogger(__name__)


def spec_to_dict(spec: Spec) -> dict[str, Any]:
    """One spec as the import format writes it."""
    out: dict[str, Any] = {"key": spec.key, "label": spec.label, "value": spec.value}
    if spec.unit:
        out["unit"] = spec.unit
    if spec.better:
        out["better"] = spec.better
    if spec.labels:
        out["labels"] = dict(spec.labels)
    return out


def product_to_dict(product: Product) -> dict[str, Any]:
    """A product as the import format and the API write it."""
    return {
        "sku": product.sku,
        "name": product.name,
        "price": product.price,
        "currency": product.currency,
        "brand": product.brand,
        "category": product.category,
        "ean": product.ean,
        "image": product.image,
        "description": product.description,
        "specs": [spec_to_dict(s) for s in product.specs],
    }


def offer_to_dict(offer: Offer) -> dict[str, Any]:
    """An offer as the import format and the API write it."""
    return {
        "id": offer.id,
        "title": offer.title,
        "description": offer.description,
        "skus": list(offer.skus),
        "segments": list(offer.segments),
        "valid_from": offer.valid_from.isoformat() if offer.valid_from else None,
        "valid_to": offer.valid_to.isoformat() if offer.valid_to else None,
    }


def review_to_dict(review: Review) -> dict[str, Any]:
    """A review as the import format and the API write it."""
    return {
        "id": review.id,
        "sku": review.sku,
        "rating": review.rating,
        "title": review.title,
        "text": review.text,
        "author": review.author,
        "date": review.date.isoformat(),
        "store": review.store,
        "status": review.status,
        "source": review.source,
    }


def shopper_to_dict(shopper: Shopper) -> dict[str, Any]:
    """A shopper profile as central publishes it (without the key)."""
    return {
        "first_name": shopper.first_name,
        "segments": list(shopper.segments),
        "locale": shopper.locale,
    }
