"""Property tests: any catalog text lays out within the paper; any typed address is handled."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.catalog.models import Product, Spec
from edge.takeaway.mail import AddressError, validate_address
from edge.takeaway.receipt import ReceiptContext, render_comparison
from tests.support.escpos_text import decode

values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=40),
)
specs = st.lists(
    st.builds(
        Spec,
        key=st.sampled_from(["diag", "power", "hdr", "weight", "panel", "x" * 30]),
        label=st.text(min_size=1, max_size=60),
        value=values,
        unit=st.sampled_from(["", "h", "kg", '"', "kWh", "in", "W", "mm"]),
        better=st.sampled_from([None, "higher", "lower"]),
    ),
    max_size=6,
)
products = st.lists(
    st.builds(
        Product,
        sku=st.from_regex(r"[A-Z]{2}-[0-9]{3}", fullmatch=True),
        name=st.text(min_size=1, max_size=200),
        price=st.floats(min_value=0, max_value=10**7, allow_nan=False),
        specs=specs.map(tuple),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=120, deadline=None)
@given(products, st.sampled_from([32, 42, 48]), st.sampled_from(["fr", "en"]))
def test_any_catalog_text_fits_the_paper(items: list[Product], width: int, lang: str) -> None:
    """Whatever the catalog holds (control characters, emoji, long words): fits, decodes."""
    ctx = ReceiptContext(
        "Magasin", "k1", datetime(2026, 1, 2, 3, 4), "https://s.example/c", lang, width
    )
    decoded = decode(render_comparison(items, ctx))  # raises on any unexpected command byte
    assert all(len(line) <= width for line in decoded.lines)
    assert decoded.cuts == 1
    assert decoded.inits == 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_typed_address_is_refused_or_clean(raw: str) -> None:
    """Any input: AddressError, or an address without spaces/control characters, stable."""
    try:
        clean = validate_address(raw)
    except AddressError:
        return
    assert clean == validate_address(clean)
    assert not any(ch.isspace() or ord(ch) < 32 for ch in clean)
    assert clean.count("@") == 1
