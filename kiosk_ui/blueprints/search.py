"""Search results with filters (category, price range) and sorting."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template, request

from edge.catalog.store import SearchResult
from kiosk_ui.forms import parse_search
from kiosk_ui.web import catalog, publish, query_for_event, session_id

_LOGGER = logging.getLogger(__name__)

bp = Blueprint("search", __name__)

# Price bands offered as one-tap filters (EUR); the shopper can also type a range.
PRICE_BANDS = ((None, 100.0), (100.0, 300.0), (300.0, 800.0), (800.0, None))
PAGE_SIZE = 24


@bp.get("/search")
def results() -> str:
    """Products matching the text and filters, one page of cards."""
    query, errors = parse_search(request.args, PAGE_SIZE)
    store = catalog()
    result = store.search(query) if store else SearchResult([], 0)
    if query.text or query.category:
        publish(
            "kiosk.search",
            {
                "query": query_for_event(query.text),
                "category": query.category or None,
                "results": result.total,
                "session_id": session_id(),
            },
        )
    page = query.offset // query.limit + 1
    pages = max(1, -(-result.total // query.limit))
    return render_template(
        "search.html",
        query=query,
        result=result,
        errors=errors,
        categories=store.categories() if store else [],
        bands=PRICE_BANDS,
        page=page,
        pages=pages,
    )
