"""The comparison table: rows per attribute, units aligned, differences and best values."""

from __future__ import annotations

from edge.catalog.compare import compare_rows, convert, identical_rows
from edge.catalog.models import Product, Spec


def tv(sku: str, price: float, *specs: Spec) -> Product:
    return Product(sku=sku, name=sku, price=price, specs=specs)


def test_best_values_follow_the_better_direction() -> None:
    """Lowest price and highest battery are best; rows without a direction mark nothing."""
    a = tv("A", 100, Spec("battery", "Battery", 20, "h", "higher"), Spec("color", "Color", "red"))
    b = tv("B", 80, Spec("battery", "Battery", 30, "h", "higher"), Spec("color", "Color", "blue"))
    rows = {r.key: r for r in compare_rows([a, b])}
    assert [c.best for c in rows["price"].cells] == [False, True]
    assert [c.best for c in rows["battery"].cells] == [False, True]
    assert [c.best for c in rows["color"].cells] == [False, False]
    assert rows["color"].differs


def test_units_are_converted_to_the_row_unit() -> None:
    """A weight in g beside weights in kg is shown in kg, and compared correctly."""
    a = tv("A", 1, Spec("weight", "Weight", 1.2, "kg", "lower"))
    b = tv("B", 1, Spec("weight", "Weight", 900, "g", "lower"))
    c = tv("C", 1, Spec("weight", "Weight", 1.5, "kg", "lower"))
    row = next(r for r in compare_rows([a, b, c]) if r.key == "weight")
    assert row.unit == "kg"
    assert [cell.value for cell in row.cells] == [1.2, 0.9, 1.5]
    assert [cell.best for cell in row.cells] == [False, True, False]
    assert row.numeric


def test_equal_rows_are_identical_and_never_best() -> None:
    """Same values (even through conversion) do not differ and have no winner."""
    a = tv("A", 10, Spec("diag", "Diagonal", 100, "cm", "higher"))
    b = tv("B", 10, Spec("diag", "Diagonal", 1, "m", "higher"))
    rows = compare_rows([a, b])
    assert identical_rows(rows) == ["price", "diag"]
    assert not any(c.best for r in rows for c in r.cells)


def test_missing_values_differ_and_unconvertible_units_become_text() -> None:
    """A product lacking an attribute makes the row differ; odd unit mixes are shown as text."""
    a = tv("A", 1, Spec("hdr", "HDR", True, better="higher"), Spec("x", "X", 5, "dB"))
    b = tv("B", 2, Spec("x", "X", 7, "W"))
    rows = {r.key: r for r in compare_rows([a, b])}
    assert rows["hdr"].differs
    assert rows["hdr"].cells[1].missing
    assert [c.value for c in rows["x"].cells] == ["5 dB", "7 W"]
    assert rows["x"].better is None


def test_labels_follow_the_language_and_bools_rank() -> None:
    """Per-language labels are used; True beats False when higher is better."""
    a = tv("A", 1, Spec("wifi", "Wi-Fi", True, better="higher", labels={"fr": "Wi-Fi intégré"}))
    b = tv("B", 1, Spec("wifi", "Wi-Fi", False, better="higher"))
    row = next(r for r in compare_rows([a, b], "fr") if r.key == "wifi")
    assert row.label == "Wi-Fi intégré"
    assert [c.best for c in row.cells] == [True, False]


def test_convert() -> None:
    """Conversions within a dimension only."""
    assert convert(2, "h", "min") == 120
    assert convert(1, "kg", "W") is None
    assert convert(5, "zz", "zz") == 5
