"""Receipt layout for ESC/POS printers: a comparison or a product, as exact bytes (pure).

:func:`layout_comparison` turns a :class:`~edge.takeaway.compare.Comparison` into styled text
lines that fit the paper (32 columns on 58 mm, 42/48 on 80 mm): product names wrapped, never
cut; specs as aligned columns when they fit, else one product per block; the best value of
each row marked. :func:`encode` renders the lines into python-escpos's ``Dummy`` printer,
which collects exactly the bytes a real printer would receive, so layout tests assert bytes.
French needs a code page with é è à ç « » and €: CP858 (CP850 plus the euro sign) where the
printer profile has it, else CP1252, else ISO 8859-15 (python-escpos issues 39, 312, 358).
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from escpos.image import EscposImage
from escpos.printer import Dummy
from PIL import Image

from edge.catalog.models import Product
from edge.takeaway import qr
from edge.takeaway.compare import Comparison, build_comparison, clean_text, language_of, text

_LOGGER = logging.getLogger(__name__)

WIDTHS: Final = (32, 42, 48)
# In preference order: every one has é è à ç ù â ê ô « » and €; CP858 is the one most
# thermal printers ship, CP1252 and ISO 8859-15 cover the rest of the profiles.
FRENCH_CODEPAGES: Final = ("CP858", "CP1252", "ISO_8859-15")
# Below this a label column is unreadable ("Autono"), so the table switches to blocks.
MIN_LABEL_WIDTH: Final = 8
# A value column narrower than this cannot show a price even wrapped ("1 299,00").
MIN_VALUE_WIDTH: Final = 6
# Hanging indent for wrapped product names and spec lines under "1. ".
INDENT: Final = 3
# Marks the best value of a row; the legend explains it.
BEST_MARK: Final = "*"
# Lines fed before the cut so the last text clears the cutter (escpos feeds 6 too).
FEED_BEFORE_CUT: Final = 4

Align = Literal["left", "center"]


class ReceiptError(ValueError):
    """The receipt cannot be laid out or encoded (bad width, no usable code page)."""


@dataclass(frozen=True)
class Line:
    """One printed line: text no wider than the paper, its alignment and emphasis."""

    text: str
    align: Align = "left"
    bold: bool = False
    big: bool = False  # double height (same width: the line still fits)


@dataclass(frozen=True)
class QrBlock:
    """A QR code printed at this point of the receipt."""

    url: str


Block = Line | QrBlock


@dataclass(frozen=True)
class ReceiptContext:
    """Everything around the comparison: who prints it, when, where its link points."""

    store_name: str
    kiosk: str
    when: datetime
    url: str
    lang: str = "fr"
    width: int = 48


@dataclass(frozen=True)
class EncodeOptions:
    """How the printer wants the bytes: profile, code page ("auto" picks), QR method."""

    profile: str = "default"
    codepage: str = "auto"
    qr: Literal["raster", "native"] = "raster"


def wrap(value: str, width: int, indent: int = 0) -> list[str]:
    """Wrap words to ``width``; words longer than a line are split, never cut off."""
    if width - indent < 1:
        raise ReceiptError(f"cannot wrap text into {width - indent} columns")
    lines = textwrap.wrap(
        value,
        width=width,
        subsequent_indent=" " * indent,
        break_long_words=True,
        break_on_hyphens=True,
    )
    return lines or [""]


def _rule(width: int) -> Line:
    return Line("-" * width)


def _table_widths(comp: Comparison, width: int) -> tuple[int, int] | None:
    """(label width, value width) for side-by-side columns, or None when they do not fit.

    Columns are used only when every label word and every price fit on one line: a label
    cut mid-word or a price split over lines reads worse than one block per product.
    """
    count = len(comp.names)
    if count < 2:
        return None
    longest_word = max((len(w) for row in comp.rows for w in row.label.split()), default=1)
    label_width = max(MIN_LABEL_WIDTH, longest_word)
    # Each column: a separating space, the value, the best mark.
    widest_value = (width - label_width) // count - 2
    natural = max((len(cell) for row in comp.rows for cell in row.cells), default=1)
    price_len = max(len(price) for price in comp.prices)
    if widest_value < max(MIN_VALUE_WIDTH, price_len):
        return None
    value_width = min(natural, widest_value)
    return width - count * (value_width + 2), value_width


def _table(comp: Comparison, width: int, label_width: int, value_width: int) -> list[Line]:
    """Rows as columns: label, then per product a right-aligned value and its mark."""
    lines: list[Line] = []
    header = " " * label_width + "".join(
        " " + f"#{i + 1}".rjust(value_width) + " " for i in range(len(comp.names))
    )
    lines.append(Line(header.rstrip(), bold=True))
    for row in comp.rows:
        label_lines = wrap(row.label, label_width)
        cell_lines = [wrap(cell, value_width) for cell in row.cells]
        height = max(len(label_lines), *(len(c) for c in cell_lines))
        for n in range(height):
            parts = [
                label_lines[n].ljust(label_width) if n < len(label_lines) else " " * label_width
            ]
            for i, cells in enumerate(cell_lines):
                # Bottom-align wrapped values so the mark sits after the number's last line.
                offset = height - len(cells)
                piece = cells[n - offset] if n >= offset else ""
                mark = BEST_MARK if i in row.best and n == height - 1 else " "
                parts.append(" " + piece.rjust(value_width) + mark)
            lines.append(Line("".join(parts).rstrip()))
    return lines


def _dotted(label: str, value: str, width: int, indent: int) -> list[str]:
    """ "Label ....... value" on one line when it fits, else the label wrapped, value below."""
    room = width - indent
    if len(label) + len(value) + 2 <= room:
        dots = room - len(label) - len(value) - 2
        filler = " " + "." * dots + " " if dots >= 2 else " " * (dots + 2)
        return [" " * indent + label + filler + value]
    out = [" " * indent + part for part in wrap(label, room)]
    out.extend(" " * indent + part.rjust(room) for part in wrap(value, room))
    return out


def _blocks(comp: Comparison, width: int) -> list[Line]:
    """One product per block: its name, then each row as "label ..... value*"."""
    lines: list[Line] = []
    numbered = len(comp.names) > 1
    for i, name in enumerate(comp.names):
        if i:
            lines.append(Line(""))
        prefix = f"{i + 1}. " if numbered else ""
        for part in wrap(prefix + name, width, INDENT if numbered else 0):
            lines.append(Line(part, bold=True))
        for row in comp.rows:
            mark = BEST_MARK if i in row.best else ""
            for part in _dotted(row.label, row.cells[i] + mark, width, INDENT if numbered else 0):
                lines.append(Line(part))
    return lines


def _names(comp: Comparison, width: int) -> list[Line]:
    lines: list[Line] = []
    for i, name in enumerate(comp.names):
        for part in wrap(f"{i + 1}. {name}", width, INDENT):
            lines.append(Line(part, bold=True))
    return lines


def _when(moment: datetime, lang: str) -> str:
    return moment.strftime("%d/%m/%Y %H:%M" if language_of(lang) == "fr" else "%Y-%m-%d %H:%M")


def layout_comparison(comp: Comparison, ctx: ReceiptContext) -> list[Block]:
    """The receipt for a comparison (two or more products) or a single product."""
    width = ctx.width
    if width not in WIDTHS:
        raise ReceiptError(f"width {width} is not supported; use one of {WIDTHS}")
    if not comp.names:
        raise ReceiptError("nothing to print: the comparison has no products")
    lang = language_of(ctx.lang)
    out: list[Block] = []
    for part in wrap(clean_text(ctx.store_name), width):
        out.append(Line(part, align="center", bold=True, big=True))
    title = text(lang, "title") if len(comp.names) > 1 else text(lang, "product")
    out.append(Line(title, align="center"))
    out.append(_rule(width))
    widths = _table_widths(comp, width)
    if widths is None:
        out.extend(_blocks(comp, width))
    else:
        out.extend(_names(comp, width))
        out.append(Line(""))
        out.extend(_table(comp, width, *widths))
    out.append(_rule(width))
    if comp.any_best:
        out.append(Line(text(lang, "best")))
    for part in wrap(text(lang, "scan"), width):
        out.append(Line(part, align="center"))
    out.append(QrBlock(ctx.url))
    for part in wrap(ctx.url, width):
        out.append(Line(part, align="center"))
    out.append(_rule(width))
    out.append(Line(_when(ctx.when, lang), align="center"))
    where = f"{clean_text(ctx.store_name)} - {text(lang, 'kiosk')} {clean_text(ctx.kiosk)}"
    for part in wrap(where, width):
        out.append(Line(part, align="center"))
    out.append(Line(text(lang, "thanks"), align="center", bold=True))
    return out


def layout_products(products: Sequence[Product], ctx: ReceiptContext) -> list[Block]:
    """Layout for catalog products: builds the comparison in the receipt's language."""
    return layout_comparison(build_comparison(products, ctx.lang), ctx)


def layout_test_page(ctx: ReceiptContext) -> list[Block]:
    """A test page: store, width ruler, the French characters, a QR code, the time."""
    width = ctx.width
    if width not in WIDTHS:
        raise ReceiptError(f"width {width} is not supported; use one of {WIDTHS}")
    lang = language_of(ctx.lang)
    out: list[Block] = [
        Line(text(lang, "test_title"), align="center", bold=True, big=True),
        *(Line(p, align="center") for p in wrap(clean_text(ctx.store_name), width)),
        Line(("1234567890" * 5)[:width]),
        _rule(width),
        *(Line(p) for p in wrap(text(lang, "test_chars"), width)),
        Line(f"{width} col."),
        QrBlock(ctx.url),
        *(Line(p, align="center") for p in wrap(ctx.url, width)),
        Line(_when(ctx.when, lang), align="center"),
        Line(f"{text(lang, 'kiosk')} {clean_text(ctx.kiosk)}", align="center"),
    ]
    return out


def choose_codepage(profile: str, configured: str = "auto") -> str:
    """The code page to print French with on this printer profile (raises when none fits)."""
    try:
        available = Dummy(profile=profile).profile.get_code_pages()
    except Exception as exc:
        raise ReceiptError(
            f"unknown printer profile {profile!r}; use a python-escpos profile such as "
            "'default' or 'TM-T88V'"
        ) from exc
    if configured != "auto":
        if configured not in available:
            raise ReceiptError(
                f"code page {configured} is not in profile {profile!r}; set printer.codepage "
                f"to auto or one of {', '.join(sorted(available))}"
            )
        return configured
    for name in FRENCH_CODEPAGES:
        if name in available:
            return name
    raise ReceiptError(
        f"profile {profile!r} has no code page with French accents and the euro sign "
        f"({', '.join(FRENCH_CODEPAGES)}); choose another printer.profile"
    )


def _raster(printer: Dummy, image: Image.Image) -> None:
    """GS v 0 raster bit image (every ESC/POS model), already as wide as the paper.

    Same bytes as ``Escpos.image(impl="bitImageRaster")``, without its profile width check
    that prints to stdout for generic profiles; our QR image is narrower than any paper.
    """
    im = EscposImage(image)
    header = (
        b"\x1dv0\x00"
        + printer._int_low_high(im.width_bytes, 2)
        + printer._int_low_high(im.height, 2)
    )
    printer._raw(header + im.to_raster_format())


def encode(blocks: Sequence[Block], width: int, options: EncodeOptions | None = None) -> bytes:
    """The ESC/POS bytes for laid-out blocks: init, code page, styled lines, QR, feed, cut."""
    opts = options or EncodeOptions()
    codepage = choose_codepage(opts.profile, opts.codepage)
    printer = Dummy(profile=opts.profile)
    printer.hw("INIT")
    # Forcing the code page sends ESC t once and stops python-escpos from switching pages
    # per character (which profiles often get wrong); unknown characters print as "?".
    printer.charcode(codepage)
    style = Line("")
    for block in blocks:
        if isinstance(block, QrBlock):
            printer.set(align="center")
            if opts.qr == "native":
                printer.qr(block.url, size=6, native=True)
                printer.text("\n")
            else:
                _raster(printer, qr.print_image(block.url, width))
            printer.set(align="left")
            style = Line("")
            continue
        if len(block.text) > width:
            raise ReceiptError(f"line wider than {width} columns: {block.text!r}")
        if (block.align, block.bold, block.big) != (style.align, style.bold, style.big):
            printer.set(
                align=block.align,
                bold=block.bold,
                double_height=block.big,
                normal_textsize=not block.big,
            )
            style = block
        printer.text(block.text + "\n")
    printer.set(align="left", bold=False, normal_textsize=True)
    printer.ln(FEED_BEFORE_CUT)
    printer.cut(feed=False)
    data: bytes = printer.output
    return data


def render_comparison(
    products: Sequence[Product], ctx: ReceiptContext, options: EncodeOptions | None = None
) -> bytes:
    """Lay out and encode a comparison (or one product) in one step."""
    return encode(layout_products(products, ctx), ctx.width, options)


def render_test_page(ctx: ReceiptContext, options: EncodeOptions | None = None) -> bytes:
    """Lay out and encode the test page."""
    return encode(layout_test_page(ctx), ctx.width, options)
