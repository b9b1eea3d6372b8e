"""Fuzzing the parsers of outside input: search text, filters, reviews, CSV catalogs.

Whatever a shopper types or a file contains, these either return a value or raise the one
documented error; they never crash the kiosk with anything else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.catalog.importer import CatalogFileError, parse_csv, to_changes
from edge.catalog.store import fts_match_expression
from kiosk_ui.forms import parse_search, validate_review

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@pytest.fixture(scope="module")
def fts() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(a, tokenize = 'unicode61 remove_diacritics 2')")
    conn.execute("INSERT INTO t(a) VALUES ('Téléviseur OLED 55 pouces')")
    yield conn
    conn.close()


@settings(max_examples=300, deadline=None)
@given(text=TEXT)
def test_any_search_text_is_a_valid_fts_query(fts: sqlite3.Connection, text: str) -> None:
    """No typed text makes an FTS5 syntax error: words are always quoted prefixes."""
    expression = fts_match_expression(text)
    if expression:
        fts.execute("SELECT rowid FROM t WHERE t MATCH ?", (expression,)).fetchall()


@settings(max_examples=300, deadline=None)
@given(
    args=st.dictionaries(
        st.sampled_from(
            ["q", "category", "price_min", "price_max", "sort", "limit", "offset", "page", "x"]
        ),
        TEXT,
        max_size=9,
    )
)
def test_any_query_string_parses_or_names_fields(args: dict[str, str]) -> None:
    """Filters parse to a bounded query; problems are reported by field name."""
    query, errors = parse_search(args)
    assert 1 <= query.limit <= 100
    assert query.offset >= 0
    assert set(errors) <= set(args) | {"price_max"}


@settings(max_examples=300, deadline=None)
@given(
    form=st.dictionaries(
        st.sampled_from(["rating", "title", "text", "author", "consent", "sku"]),
        st.one_of(
            TEXT, st.integers(), st.booleans(), st.none(), st.lists(st.integers(), max_size=3)
        ),
        max_size=6,
    )
)
def test_any_review_body_validates_or_names_fields(form: dict[str, object]) -> None:
    """A review body is either a clean review or errors keyed by known field names."""
    review, errors = validate_review(form)
    if review is None:
        assert errors
        assert set(errors) <= {"rating", "title", "text", "author", "consent"}
    else:
        assert 1 <= review.rating <= 5
        assert "@" not in review.author


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=500))
def test_any_csv_parses_or_is_refused_clearly(text: str) -> None:
    """A CSV file becomes product rows or a CatalogFileError, never another exception."""
    try:
        data = parse_csv(text)
    except CatalogFileError:
        return
    changes, errors = to_changes(data)
    assert len(changes) + len(errors) == len(data["products"])
