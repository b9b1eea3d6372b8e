"""Validation of what the shopper sends: search filters and reviews (pure, no I/O).

Each validator returns either the clean value or the errors keyed by field name, so the
page can show them beside the field and the API can answer 400 naming the field.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from edge.catalog.store import MAX_PAGE_SIZE, SORT_KEYS, SearchQuery, SortKey

_LOGGER = logging.getLogger(__name__)

# Review limits: long enough for a real opinion, short enough to read on a kiosk and to
# keep one malicious post from filling the screen.
TITLE_MIN: Final = 3
TITLE_MAX: Final = 120
TEXT_MIN: Final = 10
TEXT_MAX: Final = 2000
AUTHOR_MIN: Final = 2
AUTHOR_MAX: Final = 40
QUERY_MAX: Final = 200
PRICE_MAX: Final = 1_000_000.0
# Display names with an e-mail address or a long number would publish personal data.
_PERSONAL: Final = re.compile(r"@|\d{5,}")
# Control characters other than new lines have no place in a review.
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Errors = dict[str, str]


@dataclass(frozen=True)
class ReviewInput:
    """A validated review as typed at the kiosk."""

    rating: int
    title: str
    text: str
    author: str


def _price(raw: Any, field: str, errors: Errors) -> float | None:
    if raw in (None, ""):
        return None
    try:
        value = float(str(raw).replace(",", "."))
    except ValueError:
        errors[field] = "must be a number"
        return None
    if not math.isfinite(value) or value < 0 or value > PRICE_MAX:
        errors[field] = f"must be between 0 and {PRICE_MAX:.0f}"
        return None
    return value


def _int(raw: Any, field: str, errors: Errors, *, low: int, high: int, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        errors[field] = "must be a whole number"
        return default
    if not low <= value <= high:
        errors[field] = f"must be between {low} and {high}"
        return default
    return value


def parse_search(args: Mapping[str, Any], page_size: int = 24) -> tuple[SearchQuery, Errors]:
    """Search filters from query-string arguments; bad fields are named and ignored."""
    errors: Errors = {}
    text = str(args.get("q", "") or "")
    if len(text) > QUERY_MAX:
        errors["q"] = f"must be at most {QUERY_MAX} characters"
        text = text[:QUERY_MAX]
    category = str(args.get("category", "") or "")[:100]
    price_min = _price(args.get("price_min"), "price_min", errors)
    price_max = _price(args.get("price_max"), "price_max", errors)
    if price_min is not None and price_max is not None and price_min > price_max:
        errors["price_max"] = "must not be below price_min"
        price_max = None
    sort = str(args.get("sort", "") or "relevance")
    if sort not in SORT_KEYS:
        errors["sort"] = f"must be one of {', '.join(SORT_KEYS)}"
        sort = "relevance"
    limit = _int(args.get("limit"), "limit", errors, low=1, high=MAX_PAGE_SIZE, default=page_size)
    offset = _int(args.get("offset"), "offset", errors, low=0, high=1_000_000, default=0)
    page = _int(args.get("page"), "page", errors, low=1, high=10_000, default=1)
    if "page" in args and "offset" not in args:
        offset = (page - 1) * limit
    query = SearchQuery(
        text=text.strip(),
        category=category,
        price_min=price_min,
        price_max=price_max,
        sort=cast(SortKey, sort),
        limit=limit,
        offset=offset,
    )
    return query, errors


def _text(form: Mapping[str, Any], field: str, low: int, high: int, errors: Errors) -> str:
    raw = form.get(field, "")
    if not isinstance(raw, str):
        errors[field] = "must be text"
        return ""
    value = _CONTROL.sub("", raw).strip()
    if len(value) < low:
        errors[field] = f"must be at least {low} characters"
    elif len(value) > high:
        errors[field] = f"must be at most {high} characters"
    return value


def validate_review(form: Mapping[str, Any]) -> tuple[ReviewInput | None, Errors]:
    """A review from a form or JSON body, or the errors by field."""
    errors: Errors = {}
    raw_rating = form.get("rating")
    rating = 0
    if isinstance(raw_rating, bool):
        errors["rating"] = "must be a whole number from 1 to 5"
    else:
        try:
            rating = int(str(raw_rating))
        except ValueError:
            errors["rating"] = "must be a whole number from 1 to 5"
        else:
            if not 1 <= rating <= 5:
                errors["rating"] = "must be a whole number from 1 to 5"
    title = _text(form, "title", TITLE_MIN, TITLE_MAX, errors)
    text = _text(form, "text", TEXT_MIN, TEXT_MAX, errors)
    author = _text(form, "author", AUTHOR_MIN, AUTHOR_MAX, errors)
    if "author" not in errors and _PERSONAL.search(author):
        errors["author"] = "must be a display name, not an e-mail address or a number"
    consent = form.get("consent")
    if consent not in (True, "true", "on", "1", "yes"):
        errors["consent"] = "publication must be accepted"
    if errors:
        return None, errors
    return ReviewInput(rating, title, text, author), errors
