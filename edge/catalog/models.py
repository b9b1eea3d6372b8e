"""The catalog's data shapes and their validation from JSON (pure, no I/O).

One shape serves the demo import file, central's retained MQTT messages, the kiosk pages,
receipts and e-mails. ``*_from_dict`` raise :class:`CatalogDataError` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

Better = Literal["higher", "lower"]
ReviewStatus = Literal["pending", "approved", "rejected"]
ReviewSource = Literal["kiosk", "central"]
ChangeKind = Literal["product", "offer", "reviews", "shopper"]


class CatalogDataError(ValueError):
    """A catalog record is malformed; the message names the field and what is expected."""


@dataclass(frozen=True)
class Spec:
    """One typed attribute of a product, e.g. battery 20 h (higher is better)."""

    key: str
    label: str
    value: float | int | str | bool
    unit: str = ""
    better: Better | None = None
    labels: dict[str, str] = field(default_factory=dict)  # per language, e.g. {"en": "Battery"}

    def label_for(self, lang: str) -> str:
        """The label in ``lang`` when known, else the default label."""
        return self.labels.get(lang, self.label)


@dataclass(frozen=True)
class Product:
    """A product the kiosk can show, compare and print."""

    sku: str
    name: str
    price: float
    brand: str = ""
    category: str = ""
    ean: str = ""
    currency: str = "EUR"
    image: str = ""
    description: str = ""
    specs: tuple[Spec, ...] = ()

    def spec(self, key: str) -> Spec | None:
        """The spec with this key, if the product has it."""
        return next((s for s in self.specs if s.key == key), None)


@dataclass(frozen=True)
class Offer:
    """A promotion, for everyone (no segments) or for loyalty segments, within dates."""

    id: str
    title: str
    description: str = ""
    skus: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    valid_from: date | None = None
    valid_to: date | None = None

    def applies(self, today: date, segments: frozenset[str]) -> bool:
        """True when the offer is valid on ``today`` for a shopper in ``segments``."""
        if self.valid_from and today < self.valid_from:
            return False
        if self.valid_to and today > self.valid_to:
            return False
        return not self.segments or bool(segments.intersection(self.segments))


@dataclass(frozen=True)
class Review:
    """A shopper's review of a product."""

    id: str
    sku: str
    rating: int
    title: str
    text: str
    author: str
    date: date
    store: str = ""
    status: ReviewStatus = "approved"
    source: ReviewSource = "central"


@dataclass(frozen=True)
class Shopper:
    """What central tells the kiosk about an identified shopper (keyed by the salted hash)."""

    id_hash: str
    first_name: str
    segments: tuple[str, ...] = ()
    locale: str = ""


@dataclass(frozen=True)
class CatalogChange:
    """One retained-message change: a record to upsert, or None to delete it."""

    kind: ChangeKind
    key: str
    payload: dict[str, Any] | None


def _req_str(d: dict[str, Any], key: str, where: str, max_len: int = 500) -> str:
    value = d.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CatalogDataError(f"{where}.{key}: expected a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise CatalogDataError(f"{where}.{key}: longer than {max_len} characters")
    return value.strip()


def _opt_str(d: dict[str, Any], key: str, where: str, max_len: int = 5000) -> str:
    value = d.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CatalogDataError(f"{where}.{key}: expected a string, got {value!r}")
    if len(value) > max_len:
        raise CatalogDataError(f"{where}.{key}: longer than {max_len} characters")
    return value


def _number(d: dict[str, Any], key: str, where: str) -> float:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CatalogDataError(f"{where}.{key}: expected a number, got {value!r}")
    return float(value)


def _str_list(d: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = d.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogDataError(f"{where}.{key}: expected a list of strings, got {value!r}")
    return tuple(value)


def _date(d: dict[str, Any], key: str, where: str) -> date | None:
    value = d.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise CatalogDataError(f"{where}.{key}: expected an ISO date (YYYY-MM-DD), got {value!r}")
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise CatalogDataError(
            f"{where}.{key}: expected an ISO date (YYYY-MM-DD), got {value!r}"
        ) from None


def spec_from_dict(d: Any, where: str) -> Spec:
    """Validate one spec object."""
    if not isinstance(d, dict):
        raise CatalogDataError(f"{where}: expected an object, got {d!r}")
    key = _req_str(d, "key", where, 64)
    label = _opt_str(d, "label", where, 120) or key
    value = d.get("value")
    if isinstance(value, float) and not math.isfinite(value):
        raise CatalogDataError(f"{where}.value: expected a finite number")
    if not isinstance(value, int | float | str | bool):
        raise CatalogDataError(f"{where}.value: expected a number, text or boolean, got {value!r}")
    better = d.get("better")
    if better not in (None, "higher", "lower"):
        raise CatalogDataError(
            f"{where}.better: expected 'higher', 'lower' or null, got {better!r}"
        )
    labels = d.get("labels", {}) or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise CatalogDataError(f"{where}.labels: expected an object of language to text")
    return Spec(key, label, value, _opt_str(d, "unit", where, 20), better, dict(labels))


def product_from_dict(d: Any) -> Product:
    """Validate a product object (import file row or retained message payload)."""
    if not isinstance(d, dict):
        raise CatalogDataError(f"product: expected an object, got {type(d).__name__}")
    where = f"product[{d.get('sku', '?')}]"
    price = _number(d, "price", where)
    if price < 0:
        raise CatalogDataError(f"{where}.price: must not be negative, got {price}")
    specs_raw = d.get("specs", [])
    if not isinstance(specs_raw, list):
        raise CatalogDataError(f"{where}.specs: expected a list")
    ean = _opt_str(d, "ean", where, 14)
    if ean and not ean.isdigit():
        raise CatalogDataError(f"{where}.ean: expected digits only, got {ean!r}")
    return Product(
        sku=_req_str(d, "sku", where, 64),
        name=_req_str(d, "name", where, 200),
        price=price,
        brand=_opt_str(d, "brand", where, 100),
        category=_opt_str(d, "category", where, 100),
        ean=ean,
        currency=_opt_str(d, "currency", where, 3) or "EUR",
        image=_opt_str(d, "image", where, 500),
        description=_opt_str(d, "description", where, 5000),
        specs=tuple(spec_from_dict(s, f"{where}.specs[{i}]") for i, s in enumerate(specs_raw)),
    )


def offer_from_dict(d: Any) -> Offer:
    """Validate an offer object."""
    if not isinstance(d, dict):
        raise CatalogDataError(f"offer: expected an object, got {type(d).__name__}")
    where = f"offer[{d.get('id', '?')}]"
    return Offer(
        id=_req_str(d, "id", where, 64),
        title=_req_str(d, "title", where, 200),
        description=_opt_str(d, "description", where, 2000),
        skus=_str_list(d, "skus", where),
        segments=_str_list(d, "segments", where),
        valid_from=_date(d, "valid_from", where),
        valid_to=_date(d, "valid_to", where),
    )


def review_from_dict(d: Any, sku: str | None = None) -> Review:
    """Validate a review object; ``sku`` fills it in for per-product review lists."""
    if not isinstance(d, dict):
        raise CatalogDataError(f"review: expected an object, got {type(d).__name__}")
    where = f"review[{d.get('id', '?')}]"
    rating = d.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise CatalogDataError(
            f"{where}.rating: expected a whole number from 1 to 5, got {rating!r}"
        )
    status = d.get("status", "approved")
    if status not in ("pending", "approved", "rejected"):
        raise CatalogDataError(f"{where}.status: expected pending, approved or rejected")
    source = d.get("source", "central")
    if source not in ("kiosk", "central"):
        raise CatalogDataError(f"{where}.source: expected kiosk or central")
    when = _date(d, "date", where) or date(1970, 1, 1)
    return Review(
        id=_req_str(d, "id", where, 64),
        sku=sku or _req_str(d, "sku", where, 64),
        rating=rating,
        title=_opt_str(d, "title", where, 120),
        text=_opt_str(d, "text", where, 4000),
        author=_opt_str(d, "author", where, 60),
        date=when,
        store=_opt_str(d, "store", where, 64),
        status=status,
        source=source,
    )


def shopper_from_dict(id_hash: str, d: Any) -> Shopper:
    """Validate a shopper profile published by central under its hashed loyalty id."""
    if not isinstance(d, dict):
        raise CatalogDataError(f"shopper: expected an object, got {type(d).__name__}")
    where = "shopper"
    return Shopper(
        id_hash=id_hash,
        first_name=_req_str(d, "first_name", where, 60),
        segments=_str_list(d, "segments", where),
        locale=_opt_str(d, "locale", where, 5),
    )
