"""The pure part of the media fetcher: which URLs, local names, type checks, plans, backoff."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from edge.catalog.media import (
    MAX_BYTES,
    RETRY_MAX_S,
    RETRY_MIN_S,
    Attempt,
    MediaRefused,
    check_image,
    is_remote,
    local_image,
    plan,
    remote_name,
    remote_stem,
    retry_delay,
    sniff,
    wanted_urls,
)


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format=fmt)
    return buf.getvalue()


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'


def test_only_http_urls_are_remote() -> None:
    """http(s) URLs are fetched; local names, other schemes and junk are not."""
    assert is_remote("https://cdn.example.com/a.png")
    assert is_remote("HTTP://cdn.example.com/a.png")
    for image in ("tv.png", "file:///etc/passwd", "ftp://x/a.png", "https://a b", "", "http://"):
        assert not is_remote(image), image
    assert not is_remote("https://x/" + "a" * 600)
    assert wanted_urls(["tv.png", "https://x/a.png", "", "data:image/png;base64,AA"]) == {
        "https://x/a.png"
    }


def test_local_name_comes_from_the_url_hash() -> None:
    """The same URL always gives the same file; different URLs give different files."""
    a = remote_stem("https://x/a.png")
    assert a == remote_stem("https://x/a.png")
    assert a != remote_stem("https://x/b.png")
    assert a.startswith("remote-")
    assert len(a) == len("remote-") + 32
    assert remote_name("https://x/a.png", "webp") == a + ".webp"


@pytest.mark.parametrize(("fmt", "ext"), [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")])
def test_magic_bytes_of_real_images(fmt: str, ext: str) -> None:
    """Images Pillow writes are recognised by their bytes, whatever the declared type."""
    data = _encoded(fmt)
    assert sniff(data) == ext
    assert check_image(data, "application/octet-stream") == ext
    assert check_image(data, "image/png; charset=binary") == ext


def test_svg_accepted_and_scripted_svg_refused() -> None:
    """A plain SVG passes; scripts, handlers, entities and external links are refused."""
    assert check_image(SVG, "image/svg+xml") == "svg"
    bad = [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><image href="https://evil/x.png"/></svg>',
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "b">]><svg/>',
    ]
    for data in bad:
        with pytest.raises(MediaRefused, match="SVG with scripts"):
            check_image(data, "image/svg+xml")


def test_refusals_name_the_problem() -> None:
    """Too big, empty, HTML and unknown bytes are refused with a reason."""
    with pytest.raises(MediaRefused, match=f"larger than {MAX_BYTES} bytes"):
        check_image(b"\x89PNG\r\n\x1a\n" + bytes(MAX_BYTES), "image/png")
    with pytest.raises(MediaRefused, match="empty"):
        check_image(b"", "image/png")
    with pytest.raises(MediaRefused, match="'text/html' is not an image"):
        check_image(b"<html></html>", "text/html")
    with pytest.raises(MediaRefused, match="not a PNG, JPEG, WebP or SVG"):
        check_image(b"GIF89a....", "image/gif")


def test_plan_fetches_missing_keeps_cached_and_removes_unused() -> None:
    """Missing URLs are fetched unless backing off; copies no product uses are removed."""
    a, b, c = "https://x/a.png", "https://x/b.png", "https://x/c.png"
    files = [remote_name(a, "png"), remote_name("https://x/old.png", "jpg"), "tv-001.png"]
    files.append(remote_name(b, "png") + ".part")
    attempts = {c: Attempt(failures=2, next_at=100.0)}
    result = plan({a, b, c}, files, attempts, now=50.0)
    assert result.fetch == sorted([b], key=remote_stem)
    assert sorted(result.remove) == sorted(
        [remote_name("https://x/old.png", "jpg"), remote_name(b, "png") + ".part"]
    )
    assert (result.queued, result.cached, result.failed) == (2, 1, 0)
    later = plan({a, b, c}, files, attempts, now=100.0)
    assert set(later.fetch) == {b, c}
    attempts[c] = Attempt(refused="not an image", next_at=1e9)
    refused = plan({a, b, c}, files, attempts, now=100.0)
    assert (refused.queued, refused.cached, refused.failed) == (1, 1, 1)
    assert "tv-001.png" not in refused.remove  # the importer's files are not ours


def test_retry_delay_doubles_to_a_ceiling() -> None:
    """Backoff: 5, 10, 20 ... seconds, never more than the ceiling."""
    assert retry_delay(1) == RETRY_MIN_S
    assert retry_delay(2) == 2 * RETRY_MIN_S
    assert retry_delay(50) == RETRY_MAX_S


def test_local_image_never_returns_a_url(tmp_path: Path) -> None:
    """A URL resolves to its downloaded copy or to "" (placeholder); local names pass."""
    url = "https://x/a.png"
    assert local_image(url, tmp_path) == ""
    assert local_image(url, None) == ""
    assert local_image("ftp://x/a.png", tmp_path) == ""
    assert local_image("tv.png", tmp_path) == "tv.png"
    assert local_image("", tmp_path) == ""
    (tmp_path / remote_name(url, "webp")).write_bytes(b"x")
    assert local_image(url, tmp_path) == remote_name(url, "webp")


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.builds(lambda tail: b"<svg " + tail, st.binary(max_size=512)),
        st.builds(lambda tail: b"\x89PNG\r\n\x1a\n" + tail, st.binary(max_size=64)),
    ),
    content_type=st.text(max_size=40),
)
def test_check_image_fuzz(data: bytes, content_type: str) -> None:
    """Whatever a server sends, the check accepts a known type or raises MediaRefused."""
    reason = ""
    try:
        ext = check_image(data, content_type)
    except MediaRefused as exc:
        reason = str(exc)
        assert reason
    else:
        assert ext in {"png", "jpg", "webp", "svg"}
        assert sniff(data) == ext
