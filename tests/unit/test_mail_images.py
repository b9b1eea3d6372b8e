"""Product images for mails: SVG drawn as PNG without fetching links, other formats re-encoded."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image

from edge.takeaway import images
from edge.takeaway.mail import media_loader

SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 50" width="100" height="50">'
    b'<rect width="100" height="50" fill="#ff0000"/></svg>'
)


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Counter.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Counter.hits = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_svg_becomes_png_at_mail_width_to_scale() -> None:
    """An SVG is drawn as PNG 240 px wide, its aspect kept, its colours drawn."""
    data, mime = images.for_mail(SVG, "image/svg+xml")
    assert mime == "image/png"
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    assert img.size == (240, 120)
    assert img.convert("RGB").getpixel((120, 60)) == (255, 0, 0)


def test_mail_safe_images_pass_unchanged() -> None:
    """PNG, JPEG and GIF are what every client shows: sent byte for byte."""
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "blue").save(out, "JPEG")
    assert images.for_mail(out.getvalue(), "image/jpeg") == (out.getvalue(), "image/jpeg")


def test_webp_becomes_png() -> None:
    """WebP (which Outlook does not show) is re-encoded as PNG with its transparency."""
    out = io.BytesIO()
    Image.new("RGBA", (8, 6), (0, 128, 0, 128)).save(out, "WEBP", lossless=True)
    data, mime = images.for_mail(out.getvalue(), "image/webp")
    assert mime == "image/png"
    img = Image.open(io.BytesIO(data))
    assert (img.format, img.size, img.mode) == ("PNG", (8, 6), "RGBA")


def test_svg_links_are_never_fetched(web: str, tmp_path: Path) -> None:
    """A catalog SVG linking to a URL or a local file reads neither (no SSRF, no file leak)."""
    secret = tmp_path / "secret.png"
    Image.new("RGB", (4, 4), "white").save(secret)
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
        ' viewBox="0 0 10 10" width="10" height="10">'
        f'<image xlink:href="{web}/track.png" width="10" height="10"/>'
        f'<image href="file://{secret}" width="10" height="10"/>'
        '<rect width="5" height="5" fill="#00f"/></svg>'
    ).encode()
    try:
        data, mime = images.for_mail(svg, "image/svg+xml")
    except images.ImageConversionError:
        pass  # left out of the mail: also acceptable, nothing was fetched
    else:
        assert mime == "image/png"
        assert Image.open(io.BytesIO(data)).format == "PNG"
    assert _Counter.hits == []


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not xml at all",
        b"<svg",
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
    ],
)
def test_malformed_svg_is_a_clear_error(data: bytes) -> None:
    """A broken or hostile SVG raises ImageConversionError (the mail goes without it)."""
    with pytest.raises(images.ImageConversionError, match="SVG"):
        images.for_mail(data, "image/svg+xml")


def test_media_loader_converts_and_leaves_out_broken(tmp_path: Path) -> None:
    """The mail's image loader gives PNG for an SVG file and None for one it cannot draw."""
    (tmp_path / "ok.svg").write_bytes(SVG)
    (tmp_path / "bad.svg").write_bytes(b"<svg")
    (tmp_path / "notes.txt").write_text("not an image")
    load = media_loader(tmp_path)
    loaded = load("ok.svg")
    assert loaded is not None
    assert loaded[1] == "image/png"
    assert load("bad.svg") is None
    assert load("notes.txt") is None
    assert load("../ok.svg") is None
    # A changed file is drawn again, not served from the cache.
    (tmp_path / "ok.svg").write_bytes(SVG.replace(b"#ff0000", b"#0000ff") + b" ")
    again = load("ok.svg")
    assert again is not None
    assert Image.open(io.BytesIO(again[0])).convert("RGB").getpixel((1, 1)) == (0, 0, 255)
