"""Product images as mail clients show them: PNG, JPEG or GIF, never SVG.

Gmail, Outlook and most other mail clients do not show SVG images inline, and catalog images
may be SVG (the demo catalog's are) or WebP. The mail embeds what every client shows: PNG,
JPEG and GIF go as they are; SVG is drawn to PNG with cairosvg, which is never allowed to
fetch what the drawing links to (no network, no local files: a catalog comes from outside);
other formats Pillow reads become PNG. Anything that cannot be converted is left out of the
mail rather than sent in a form the shopper cannot see.
"""

from __future__ import annotations

import io
import logging
from typing import Final

_LOGGER = logging.getLogger(__name__)

# What every common mail client shows inline.
MAIL_SAFE: Final = frozenset({"image/png", "image/jpeg", "image/gif"})
# The mail shows product images 120 px wide; twice that stays sharp on high-density phones.
RENDER_WIDTH: Final = 240
# The largest picture decoded or drawn: a hostile file cannot make the kiosk eat its memory.
MAX_PIXELS: Final = 4096 * 4096


class ImageConversionError(ValueError):
    """The image cannot be turned into one mail clients show; the message says why."""


def _refuse_fetch(url: str, resource_type: str) -> bytes:
    """cairosvg's fetcher for linked resources: none is ever read (SSRF, local files)."""
    raise ImageConversionError(f"linked {resource_type} resources are not loaded")


def svg_to_png(data: bytes, width: int = RENDER_WIDTH) -> bytes:
    """Draw an SVG as a PNG ``width`` pixels wide (height to scale); ImageConversionError."""
    try:
        from cairosvg.surface import PNGSurface
    except (ImportError, OSError) as exc:  # OSError: the cairo library itself is missing
        raise ImageConversionError(
            f"SVG images need cairosvg and Debian's libcairo2 ({exc})"
        ) from None
    try:
        # PNGSurface.convert, not svg2png: only it passes url_fetcher on to the parser.
        png: bytes = PNGSurface.convert(
            bytestring=data, output_width=width, unsafe=False, url_fetcher=_refuse_fetch
        )
    except Exception as exc:  # cairosvg raises many types on malformed drawings
        raise ImageConversionError(f"the SVG cannot be drawn: {type(exc).__name__}") from None
    return png


def raster_to_png(data: bytes) -> bytes:
    """Re-encode a raster image Pillow can read (WebP, BMP, TIFF...) as PNG."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageConversionError(f"the image is too large ({img.width}x{img.height})")
            out = io.BytesIO()
            img.convert("RGBA" if "A" in img.getbands() else "RGB").save(out, "PNG")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ImageConversionError(f"the image cannot be read: {type(exc).__name__}") from None
    return out.getvalue()


def for_mail(data: bytes, mime: str) -> tuple[bytes, str]:
    """The image as (bytes, MIME type) every mail client shows; ImageConversionError."""
    if mime in MAIL_SAFE:
        return data, mime
    if mime == "image/svg+xml":
        return svg_to_png(data), "image/png"
    return raster_to_png(data), "image/png"
