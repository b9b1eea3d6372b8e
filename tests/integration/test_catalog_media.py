"""Remote product images against real parts: a loopback HTTP server, retained product
messages through the real catalog sync and store, the kiosk pages and the mail loader."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from edge.catalog.media import (
    MAX_BYTES,
    MediaFetcher,
    local_image,
    media_component,
    remote_name,
)
from edge.catalog.store import media_dir
from edge.catalog.sync import CatalogSync
from edge.daemon import COMPONENT_FACTORIES
from edge.relay.topics import Topics
from edge.takeaway.mail import media_loader
from tests.conftest import ConfigWriter, free_port
from tests.support.daemon import InProcessDaemon
from tests.support.kiosk_app import Kiosk, make_kiosk

TOPICS = Topics("store-7", "kiosk-2")


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (10, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4"/></svg>'


class ImageServer:
    """A loopback HTTP server serving {path: (content type, body)}; stopped and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.files: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []
        self.delay_s = 0.0  # a slow server: each answer waits this long
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        files, requests, server = self.files, self.requests, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                time.sleep(server.delay_s)
                found = files.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", found[0])
                self.send_header("Content-Length", str(len(found[1])))
                self.end_headers()
                self.wfile.write(found[1])

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


class Clock:
    """A monotonic clock the test can move forward (to skip a backoff)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[ImageServer]:
    srv = ImageServer()
    yield srv
    srv.stop()


@pytest.fixture
def kiosk(tmp_path: Path) -> Iterator[Kiosk]:
    k = make_kiosk(tmp_path, locale="en_GB")
    yield k
    k.services.catalog.close()


@pytest.fixture
def sync(kiosk: Kiosk) -> Iterator[CatalogSync]:
    s = CatalogSync(TOPICS, lambda: kiosk.services.catalog, linger_s=0.0)
    s.start()
    yield s
    s.stop()


def publish_product(sync: CatalogSync, sku: str, image: str) -> None:
    """A retained product message from central, applied through the real sync and store."""
    body = {"sku": sku, "name": f"Remote {sku}", "price": 99.0, "category": "Tests"}
    body["image"] = image
    sync.offer(TOPICS.catalog_topic("product", sku), json.dumps(body).encode())
    assert sync.wait_idle()
    assert sync.stats.rejected == 0, sync.errors


def delete_product(sync: CatalogSync, sku: str) -> None:
    sync.offer(TOPICS.catalog_topic("product", sku), b"")
    assert sync.wait_idle()


def img_sources(html: str) -> list[str]:
    return re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)


def test_image_arrives_after_the_server_comes_back(
    kiosk: Kiosk, sync: CatalogSync, server: ImageServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Server down: placeholder, retry scheduled; server up: the copy arrives and is shown."""
    server.files["/img/r1.png"] = ("image/png", PNG)
    url = server.url("/img/r1.png")
    publish_product(sync, "R-1", url)
    clock = Clock()
    fetcher = MediaFetcher(kiosk.services, clock=clock)
    client = kiosk.client()

    with caplog.at_level(logging.WARNING, logger="edge.catalog.media"):
        down = fetcher.step()  # nothing listens on the port yet
    assert (down.queued, down.cached, down.failed) == (1, 0, 0)
    assert "not fetched" in caplog.text
    assert "trying again in 5 s" in caplog.text
    assert kiosk.services.health.get("media").metrics["queued"] == 1  # type: ignore[union-attr]
    html = client.get("/products/R-1").get_data(as_text=True)
    assert "Remote R-1" in html
    assert "127.0.0.1" not in html  # never the remote URL
    assert "placeholder" in html

    server.start()
    assert fetcher.step().queued == 1  # still backing off: no request yet
    assert server.requests == []
    clock.now += 5.0
    up = fetcher.step()
    assert (up.queued, up.cached, up.failed) == (0, 1, 0)
    assert server.requests == ["/img/r1.png"]
    name = remote_name(url, "png")
    folder = media_dir(kiosk.services.config.device.data_dir)
    assert (folder / name).read_bytes() == PNG

    html = client.get("/products/R-1").get_data(as_text=True)  # the cached page was dropped
    sources = img_sources(html)
    assert f"/media/{name}" in sources
    assert all(src.startswith("/media/") for src in sources), sources
    assert "://" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', html))
    served = client.get(f"/media/{name}")
    assert served.status_code == 200
    assert served.mimetype == "image/png"
    assert served.data == PNG
    health = kiosk.services.health.get("media")
    assert health is not None
    assert health.metrics == {"queued": 0, "cached": 1, "failed": 0}


def test_search_and_home_pages_only_reference_local_media(
    kiosk: Kiosk, sync: CatalogSync, server: ImageServer
) -> None:
    """Result cards and category covers use /media/ copies or the placeholder, never URLs."""
    server.start()
    server.files["/a.png"] = ("image/png", PNG)
    publish_product(sync, "R-2", server.url("/a.png"))
    publish_product(sync, "R-3", server.url("/missing.png"))  # 404: stays a placeholder
    client = kiosk.client()
    MediaFetcher(kiosk.services).step()
    for path in ("/", "/search?category=Tests", "/search?q=Remote"):
        html = client.get(path).get_data(as_text=True)
        sources = img_sources(html)
        assert all(src.startswith(("/media/", "/static/")) for src in sources), (path, sources)
        assert "127.0.0.1:" not in html, path
    html = client.get("/search?category=Tests").get_data(as_text=True)
    assert f"/media/{remote_name(server.url('/a.png'), 'png')}" in html


def test_oversized_and_non_image_responses_are_refused(
    kiosk: Kiosk, sync: CatalogSync, server: ImageServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Too big, HTML and scripted SVG are refused with a clear log line and counted failed."""
    server.start()
    server.files["/big.png"] = ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(MAX_BYTES))
    server.files["/page.png"] = ("text/html", b"<html>login</html>")
    server.files["/fake.png"] = ("image/png", b"<html>not really</html>")
    server.files["/bad.svg"] = ("image/svg+xml", b'<svg xmlns="x" onload="alert(1)"/>')
    server.files["/good.svg"] = ("image/svg+xml", SVG)
    for i, path in enumerate(server.files):
        publish_product(sync, f"B-{i}", server.url(path))
    fetcher = MediaFetcher(kiosk.services)
    with caplog.at_level(logging.WARNING, logger="edge.catalog.media"):
        result = fetcher.step()
    assert (result.queued, result.cached, result.failed) == (0, 1, 4)
    log = caplog.text
    assert f"/big.png refused: larger than {MAX_BYTES} bytes" in log
    assert "/page.png refused: content type 'text/html' is not an image" in log
    assert "/fake.png refused: not a PNG, JPEG, WebP or SVG image" in log
    assert "/bad.svg refused: SVG with scripts" in log
    folder = media_dir(kiosk.services.config.device.data_dir)
    assert sorted(p.name for p in folder.glob("remote-*")) == [
        remote_name(server.url("/good.svg"), "svg")
    ]
    # Refused URLs are not asked again at once.
    before = len(server.requests)
    fetcher.step()
    assert len(server.requests) == before
    # An accepted SVG is served with a CSP that lets nothing run.
    served = kiosk.client().get(f"/media/{remote_name(server.url('/good.svg'), 'svg')}")
    assert served.status_code == 200
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert "default-src 'none'" in served.headers["Content-Security-Policy"]


def test_unreferenced_copies_are_removed_and_imported_images_kept(
    kiosk: Kiosk, sync: CatalogSync, server: ImageServer
) -> None:
    """A deleted product or a changed URL removes the old copy; the importer's files stay."""
    server.start()
    server.files["/one.png"] = ("image/png", PNG)
    server.files["/two.png"] = ("image/png", PNG)
    folder = media_dir(kiosk.services.config.device.data_dir)
    imported = sorted(p.name for p in folder.iterdir())
    assert imported  # the demo catalog's images
    publish_product(sync, "R-4", server.url("/one.png"))
    publish_product(sync, "R-5", server.url("/one.png"))
    fetcher = MediaFetcher(kiosk.services)
    assert fetcher.step().cached == 1  # one copy for two products
    publish_product(sync, "R-4", server.url("/two.png"))
    assert fetcher.step().cached == 2
    delete_product(sync, "R-5")
    fetcher.step()
    remote = sorted(p.name for p in folder.glob("remote-*"))
    assert remote == [remote_name(server.url("/two.png"), "png")]
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("remote-")) == imported


def test_mail_embeds_the_local_copy_only(
    kiosk: Kiosk, sync: CatalogSync, server: ImageServer
) -> None:
    """The mail's image loader finds a URL's downloaded copy and never fetches the URL."""
    server.start()
    server.files["/m.png"] = ("image/png", PNG)
    url = server.url("/m.png")
    publish_product(sync, "R-6", url)
    folder = media_dir(kiosk.services.config.device.data_dir)
    load = media_loader(folder)
    assert load(url) is None
    assert server.requests == []
    MediaFetcher(kiosk.services).step()
    loaded = load(url)
    assert loaded is not None
    assert loaded[1] == "image/png"
    assert loaded[0].startswith(b"\x89PNG")
    assert local_image(url, folder) == remote_name(url, "png")


def test_component_runs_supervised_and_is_wired_with_the_kiosk(
    kiosk: Kiosk, sync: CatalogSync, server: ImageServer
) -> None:
    """The daemon's factory list has it; it runs as an async component until cancelled."""
    assert ("media", "_media_component") in [(n, f.__name__) for n, f in COMPONENT_FACTORIES]
    kiosk.services.config.kiosk.enabled = False
    assert media_component(kiosk.services) is None
    kiosk.services.config.kiosk.enabled = True
    component = media_component(kiosk.services)
    assert isinstance(component, MediaFetcher)
    component.scan_s = 0.05
    server.start()
    server.files["/c.png"] = ("image/png", PNG)
    url = server.url("/c.png")
    folder = media_dir(kiosk.services.config.device.data_dir)

    async def scenario() -> None:
        task = asyncio.create_task(component.run())
        await asyncio.sleep(0.2)
        publish_product(sync, "R-7", url)  # arrives while the component runs
        for _ in range(100):
            if (folder / remote_name(url, "png")).exists():
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert (folder / remote_name(url, "png")).read_bytes() == PNG
    health = kiosk.services.health.get("media")
    assert health is not None
    assert health.state == "ok"


def test_cancelling_does_not_wait_for_slow_downloads(
    kiosk: Kiosk, sync: CatalogSync, server: ImageServer
) -> None:
    """Shutdown mid-round returns at once; the round stops before its next download."""
    server.start()
    server.delay_s = 2.0
    for i in range(3):
        server.files[f"/slow{i}.png"] = ("image/png", PNG)
        publish_product(sync, f"S-{i}", server.url(f"/slow{i}.png"))
    component = MediaFetcher(kiosk.services)

    async def scenario() -> float:
        task = asyncio.create_task(component.run())
        await asyncio.sleep(0.3)  # the first download is waiting on the server
        started = time.monotonic()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    began = time.monotonic()
    assert asyncio.run(scenario()) < 0.5
    assert time.monotonic() - began < 1.5  # asyncio.run did not join a download thread
    time.sleep(2.5)  # the thread finishes its one download and takes no other
    assert len(server.requests) == 1


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


def test_daemon_fetches_and_reports_in_healthz(
    write_config: ConfigWriter, server: ImageServer
) -> None:
    """The running daemon downloads a retained product's image, healthz shows `media`
    counts, and the kiosk's product page over HTTP shows the local copy."""
    server.start()
    server.files["/d.png"] = ("image/png", PNG)
    url = server.url("/d.png")
    with InProcessDaemon(write_config()) as daemon:
        sync = CatalogSync(TOPICS, lambda: daemon.services.catalog, linger_s=0.0)
        sync.start()
        try:
            publish_product(sync, "D-1", url)
        finally:
            sync.stop()
        base = daemon.base_url
        deadline = time.monotonic() + 15
        while True:
            with urllib.request.urlopen(base + "/api/healthz", timeout=5) as resp:
                media = json.loads(resp.read())["components"]["media"]
            if media.get("metrics", {}).get("cached") == 1:
                break
            assert time.monotonic() < deadline, media
            time.sleep(0.2)
        assert media["state"] == "ok"
        assert media["metrics"] == {"queued": 0, "cached": 1, "failed": 0}
        _, _, page = _get(base + "/products/D-1")
        html = page.decode()
        name = remote_name(url, "png")
        assert f'src="/media/{name}"' in html
        assert "127.0.0.1:" + str(server.port) not in html
        status, ctype, body = _get(f"{base}/media/{name}")
        assert (status, ctype, body) == (200, "image/png", PNG)
