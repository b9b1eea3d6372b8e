"""QR codes for the take-away link: SVG for the kiosk screen, PNG for e-mail, bitmap for paper.

One encoder (segno, pure Python) serves all three, so the code on screen, in the mail and on
the receipt is the same symbol. Building the link from the configured template lives here too.
"""

from __future__ import annotations

import functools
import io
import logging
import re
from collections.abc import Sequence
from typing import Final
from urllib.parse import quote

import segno
from PIL import Image

_LOGGER = logging.getLogger(__name__)

# M recovers from ~15 % damage: a crumpled receipt or a phone at an angle, at a modest size.
ERROR_LEVEL: Final = "m"
# The quiet zone the QR standard asks for is 4 modules; 2 is enough on white paper and
# screens and keeps the printed code larger for the same width.
BORDER: Final = 2
# Font A on ESC/POS printers is 12 dots wide, so a line of N columns is N * 12 dots.
DOTS_PER_COLUMN: Final = 12
# The printed code takes at most this share of the paper width (leaves margins to hold it).
PRINT_WIDTH_SHARE: Final = 0.6
# Bigger modules than this make the code larger than phones need.
MAX_PRINT_SCALE: Final = 8
# Links remembered: a few comparisons per shopper, a few shoppers per minute.
CACHE_SIZE: Final = 64
# SKUs in the link: what catalog identifiers are made of; anything else is refused.
_SKU_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class QrError(ValueError):
    """The take-away link cannot be built (bad SKUs or template)."""


def takeaway_url(template: str, skus: Sequence[str]) -> str:
    """The store-website link for these SKUs from a template with ``{skus}`` (comma-joined)."""
    if not skus:
        raise QrError("no products to link to; give at least one SKU")
    for sku in skus:
        if not _SKU_RE.match(sku):
            raise QrError(f"{sku!r} is not a valid SKU (letters, digits, _ . : - only)")
    return template.replace("{skus}", quote(",".join(skus), safe=","))


@functools.lru_cache(maxsize=CACHE_SIZE)
def make(content: str) -> segno.QRCode:
    """The QR symbol for ``content`` (error level M, smallest version that fits).

    Cached: choosing the mask is most of a receipt's render time, and the same link is
    shown on screen, printed and mailed for one comparison.
    """
    return segno.make(content, error=ERROR_LEVEL, micro=False)


def svg(content: str, scale: int = 8) -> bytes:
    """An SVG image of the code for the kiosk screen (crisp at any size)."""
    buf = io.BytesIO()
    make(content).save(buf, kind="svg", scale=scale, border=BORDER, xmldecl=False, svgns=True)
    return buf.getvalue()


def png(content: str, scale: int = 6) -> bytes:
    """A PNG image of the code (e-mail inline image)."""
    buf = io.BytesIO()
    make(content).save(buf, kind="png", scale=scale, border=BORDER)
    return buf.getvalue()


def print_image(content: str, columns: int) -> Image.Image:
    """A 1-bit image as wide as the paper, the code centred, for ESC/POS raster printing."""
    code = make(content)
    size = int(code.symbol_size(scale=1, border=BORDER)[0])
    paper = columns * DOTS_PER_COLUMN
    scale = max(1, min(MAX_PRINT_SCALE, int(paper * PRINT_WIDTH_SHARE) // size))
    side = size * scale
    small = Image.new("1", (size, size), 1)
    small.putdata(
        [0 if dark else 1 for row in code.matrix_iter(scale=1, border=BORDER) for dark in row]
    )
    image = Image.new("1", (paper, side), 1)
    image.paste(small.resize((side, side), Image.Resampling.NEAREST), ((paper - side) // 2, 0))
    return image
