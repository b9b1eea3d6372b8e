"""Receipt layout: byte-exact golden receipts, widths respected, French in the code page."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from edge.catalog.models import Product, Spec, product_from_dict
from edge.takeaway.compare import build_comparison
from edge.takeaway.receipt import (
    EncodeOptions,
    Line,
    ReceiptContext,
    ReceiptError,
    choose_codepage,
    encode,
    layout_products,
    render_comparison,
    render_test_page,
)
from tests.support.escpos_text import decode

DATA = Path(__file__).resolve().parent.parent / "data" / "receipts"
# Set to regenerate the golden files after a deliberate layout change (then review the diff
# of the .txt views and commit both).
UPDATE = os.environ.get("KIOSK_EDGE_UPDATE_GOLDEN") == "1"
URL = "https://shop.example/compare?skus=TV-001,TV-002,TV-003"
WHEN = datetime(2026, 11, 24, 10, 30)


def products(count: int = 3) -> list[Product]:
    raw = json.loads((DATA / "comparison.json").read_text(encoding="utf-8"))
    return [product_from_dict(d) for d in raw[:count]]


def context(width: int, lang: str = "fr") -> ReceiptContext:
    return ReceiptContext("Magasin Démo Paris", "kiosk-1", WHEN, URL, lang, width)


@pytest.mark.parametrize("width", [32, 42, 48])
def test_comparison_matches_golden_bytes(width: int) -> None:
    """A fixed 3-product comparison renders to exactly the reviewed bytes at each width."""
    data = render_comparison(products(), context(width))
    golden = DATA / f"compare3_{width}.bin"
    view = DATA / f"compare3_{width}.txt"
    if UPDATE:
        golden.write_bytes(data)
        view.write_text("\n".join(decode(data).lines) + "\n", encoding="utf-8")
    assert data == golden.read_bytes()
    assert "\n".join(decode(data).lines) + "\n" == view.read_text(encoding="utf-8")


@pytest.mark.parametrize("width", [32, 42, 48])
@pytest.mark.parametrize("count", [1, 2, 3, 4])
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_no_line_wider_than_the_paper(width: int, count: int, lang: str) -> None:
    """Every decoded text line fits the width, for 1-4 products in both languages."""
    decoded = decode(render_comparison(products(count), context(width, lang)))
    assert decoded.lines
    too_wide = [line for line in decoded.lines if len(line) > width]
    assert too_wide == []
    assert decoded.cuts == 1
    assert len(decoded.images) == 1
    assert decoded.images[0][0] == width * 12  # the QR image spans the paper, code centred


def test_product_names_are_wrapped_never_cut() -> None:
    """Every word of a long name appears on the 32-column receipt."""
    text = "\n".join(decode(render_comparison(products(1), context(32))).lines)
    words = products(1)[0].name.split()
    flat = text.split()
    for word in words:
        assert word in flat


def test_french_characters_in_cp858() -> None:
    """é è à ç « » € are sent as their CP858 bytes after ESC t 19."""
    data = render_comparison(products(4), context(48)) + render_test_page(context(48))
    assert data.startswith(b"\x1b@\x1bt\x13")  # init, then code page 19 (CP858)
    for char in "éèàçùâêô«»€":
        assert char.encode("cp858") in data
    assert "€".encode("cp858") == b"\xd5"
    decoded = decode(data)
    assert decoded.codepages == [19, 19]
    assert any("Garçon" in line for line in decoded.lines)
    assert any("899,00 €" in line for line in decoded.lines)
    assert any("« Série 7 »" in line for line in decoded.lines)
    assert any("Crème brûlée" in line for line in decoded.lines)


def test_best_value_marked_per_row() -> None:
    """The lowest price, lowest consumption and biggest screen carry the mark."""
    lines = decode(render_comparison(products(3), context(48))).lines
    price = next(line for line in lines if line.startswith("Prix"))
    assert price.endswith("749,50 €*")
    assert price.count("*") == 1
    diag = next(line for line in lines if line.startswith("Diagonale"))
    assert diag.endswith('65"*')
    assert any(line.endswith("87 kWh*  121,5 kWh") for line in lines)
    assert "* meilleure valeur" in lines


def test_narrow_paper_switches_to_one_block_per_product() -> None:
    """At 32 columns three products do not fit as columns: one block each, with dot leaders."""
    lines = decode(render_comparison(products(3), context(32))).lines
    assert '   Diagonale .............. 65"*' in lines
    assert not any(line.strip().startswith("#1") for line in lines)


def test_english_receipt() -> None:
    """Language follows the shopper: English texts and number format."""
    lines = decode(render_comparison(products(2), context(48, "en"))).lines
    assert "Your comparison" in lines
    assert any("€1,299.00" in line for line in lines)
    assert any(line.startswith("Annual energy use") for line in lines)


def test_control_characters_in_catalog_text_are_not_sent() -> None:
    """An ESC or DLE in a product name cannot become a printer command."""
    evil = Product(
        sku="X-1",
        name="Bad\x1bd\x09name\x10\x04\x02",
        price=1.0,
        specs=(Spec("k", "Label\x1b@", "v\x1dV\x00"),),
    )
    data = render_comparison([evil], context(32))
    decoded = decode(data)  # raises on any unexpected command
    assert decoded.inits == 1
    assert decoded.cuts == 1
    assert decoded.status_queries == []


def test_native_qr_option_sends_gs_k_with_the_link() -> None:
    """With qr = native the link is sent as GS ( k data, no raster image."""
    decoded = decode(render_comparison(products(2), context(42), EncodeOptions(qr="native")))
    assert decoded.native_qr == [URL.encode()]
    assert decoded.images == []


def test_codepage_choice() -> None:
    """auto picks CP858; a page the profile lacks is refused with the fix in the message."""
    assert choose_codepage("default") == "CP858"
    assert choose_codepage("TM-T88V", "CP1252") == "CP1252"
    with pytest.raises(ReceiptError, match=r"set printer\.codepage"):
        choose_codepage("simple", "CP858")
    with pytest.raises(ReceiptError, match="unknown printer profile"):
        choose_codepage("no-such-printer")


def test_cp1252_encodes_the_euro_as_0x80() -> None:
    """The CP1252 fallback sends ESC t 16 and € as 0x80."""
    data = render_comparison(products(2), context(42), EncodeOptions(codepage="CP1252"))
    assert b"\x1bt\x10" in data
    assert b"\x80" in data
    assert any("1 299,00 €" in line for line in decode(data).lines)


def test_unknown_width_and_overlong_line_are_refused() -> None:
    """Only 32/42/48 columns; encode refuses a line wider than the paper."""
    with pytest.raises(ReceiptError, match="width 40"):
        layout_products(products(2), context(40))
    with pytest.raises(ReceiptError, match="wider than 32"):
        encode([Line("x" * 33)], 32)


def test_test_page_fits_and_shows_accents() -> None:
    """The test page fits 32 columns and carries the French characters and a QR code."""
    decoded = decode(render_test_page(context(32)))
    assert all(len(line) <= 32 for line in decoded.lines)
    assert any("« » €" in line for line in decoded.lines)
    assert len(decoded.images) == 1


def test_comparison_rows_shared_logic() -> None:
    """Ties all win; rows with a single value or no rule mark nothing."""
    comp = build_comparison(products(4), "fr")
    hdr = next(r for r in comp.rows if r.key == "hdr")
    assert hdr.best == frozenset({0, 1, 3})
    panel = next(r for r in comp.rows if r.key == "panel")
    assert panel.best == frozenset()
    weight = next(r for r in comp.rows if r.key == "weight")
    assert weight.cells == ("-", "-", "17,2 kg", "-")
    assert weight.best == frozenset()
