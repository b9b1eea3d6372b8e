"""Product images that central sends as URLs, kept on the kiosk so it works with the network down.

The pure part decides which URLs to fetch, names local copies after the URL's hash (the
kiosk and the mail find a copy from the product's ``image`` alone, without a lookup table),
checks what a server returned (size cap, PNG/JPEG/WebP/SVG by magic bytes, scripted SVG
refused) and plans retries with backoff. :class:`MediaFetcher` is the thin supervised
adapter: it downloads on a worker thread into ``data_dir/media/`` (served at ``/media/``),
reports ``queued``/``cached``/``failed`` in health and removes copies no product references.
The shopper path never waits for it: pages only look for a local file and otherwise show a
placeholder, never the remote URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.client import HTTPMessage
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

if TYPE_CHECKING:
    from edge.services import Services

_LOGGER = logging.getLogger(__name__)

# Local copies of remote images start with this, so clean-up never touches the images the
# importer copied from the catalog file.
REMOTE_PREFIX: Final = "remote-"
# Hex digits of the URL's SHA-256 in the file name: 128 bits, collisions are not a concern.
HASH_CHARS: Final = 32
# A product photo for a 1080p screen is well under this; more is a wrong URL or an attack.
MAX_BYTES: Final = 5 * 1024 * 1024
# A server that does not answer within this is treated as down (the next try backs off).
TIMEOUT_S: Final = 10.0
# URLs longer than this are not product images (the catalog allows 500 characters anyway).
MAX_URL_CHARS: Final = 500
# Retries after a network failure: first after RETRY_MIN_S, doubling up to RETRY_MAX_S, so a
# store offline for hours does not hammer the uplink when it returns.
RETRY_MIN_S: Final = 5.0
RETRY_MAX_S: Final = 600.0
# A refused response (not an image, too big) is asked again only this rarely: central may
# fix the file behind the same URL, but retrying it often only wastes bandwidth.
REFUSED_RETRY_S: Final = 6 * 3600.0
# How often the catalog is read for image URLs: new products get their image within this.
SCAN_S: Final = 5.0
# Suffixes of temporary files being downloaded (removed if a crash left them behind).
PART_SUFFIX: Final = ".part"

# File extension by detected type; the order is the lookup order for a local copy.
EXTENSIONS: Final[tuple[str, ...]] = ("jpg", "png", "webp", "svg")
CONTENT_TYPES: Final[dict[str, str]] = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "svg": "image/svg+xml",
}
# SVG constructs that run code, load other resources or expand entities: such a file is
# refused (the /media/ route also serves SVG with a CSP that forbids scripts).
_SVG_DANGER: Final = re.compile(
    rb"<\s*script|<\s*foreignObject|<!ENTITY|<!DOCTYPE|\bon[a-z]+\s*=|javascript:"
    rb"|(?:xlink:)?href\s*=\s*[\"']\s*(?!#)[a-z]+:",
    re.IGNORECASE,
)
_SVG_ROOT: Final = re.compile(
    rb"^\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>\s*)*<svg[\s>/]",
    re.DOTALL | re.IGNORECASE,
)


class MediaRefused(ValueError):
    """A downloaded response is not an image the kiosk accepts; the message says why."""


def is_remote(image: str) -> bool:
    """True when a product's ``image`` is an http(s) URL the fetcher should download."""
    lowered = image[:8].lower()
    return (
        lowered.startswith(("http://", "https://"))
        and len(image.split("://", 1)[1]) > 0
        and len(image) <= MAX_URL_CHARS
        and not any(c.isspace() for c in image)
    )


def remote_stem(url: str) -> str:
    """The local file name of a URL's copy, without extension (from the URL's SHA-256)."""
    return REMOTE_PREFIX + hashlib.sha256(url.encode("utf-8")).hexdigest()[:HASH_CHARS]


def remote_name(url: str, ext: str) -> str:
    """The local file name of a URL's copy of type ``ext``."""
    return f"{remote_stem(url)}.{ext}"


def wanted_urls(images: Iterable[str]) -> set[str]:
    """The remote image URLs among products' ``image`` values."""
    return {image for image in images if image and is_remote(image)}


def local_image(image: str, folder: Path | None) -> str:
    """The media file name to show for a product's ``image``, or "" for the placeholder.

    Local names (imported files) are returned unchanged; a URL gives its downloaded copy when
    present, never the URL itself (the kiosk browser must not go to the network).
    """
    if not image:
        return ""
    if "://" not in image:
        return image
    if folder is None or not is_remote(image):
        return ""
    stem = remote_stem(image)
    for ext in EXTENSIONS:
        if (folder / f"{stem}.{ext}").is_file():
            return f"{stem}.{ext}"
    return ""


def sniff(data: bytes) -> str | None:
    """The image type of ``data`` by its magic bytes ("png", "jpg", "webp", "svg"), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    head = data[:1024].lstrip(b"\xef\xbb\xbf")
    if _SVG_ROOT.match(head):
        return "svg"
    return None


def check_image(data: bytes, content_type: str, max_bytes: int = MAX_BYTES) -> str:
    """The extension for an accepted response body; raises MediaRefused naming the problem."""
    if len(data) > max_bytes:
        raise MediaRefused(f"larger than {max_bytes} bytes")
    if not data:
        raise MediaRefused("empty response")
    declared = content_type.split(";", 1)[0].strip().lower()
    if declared and not declared.startswith("image/") and declared != "application/octet-stream":
        raise MediaRefused(f"content type {declared!r} is not an image")
    ext = sniff(data)
    if ext is None:
        raise MediaRefused(
            f"not a PNG, JPEG, WebP or SVG image (starts with {data[:8]!r}, type {declared!r})"
        )
    if ext == "svg" and _SVG_DANGER.search(data):
        raise MediaRefused("SVG with scripts, event handlers, entities or external links")
    return ext


def retry_delay(failures: int) -> float:
    """Wait before the next try after ``failures`` network failures in a row (1-based)."""
    return min(RETRY_MAX_S, RETRY_MIN_S * 2.0 ** max(0, failures - 1))


@dataclass
class Attempt:
    """Why and when a URL that could not be fetched is tried again."""

    failures: int = 0
    next_at: float = 0.0
    refused: str = ""


@dataclass
class MediaPlan:
    """What to download now and which local copies to remove (pure; no I/O)."""

    fetch: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    queued: int = 0
    cached: int = 0
    failed: int = 0


def plan(
    wanted: set[str], files: Iterable[str], attempts: dict[str, Attempt], now: float
) -> MediaPlan:
    """Compare the catalog's URLs with the media folder's files and the retry schedule.

    ``files`` are the names in the media folder; only ``remote-*`` copies are considered
    (imported images belong to the importer).
    """
    have: dict[str, str] = {}
    result = MediaPlan()
    for name in files:
        if not name.startswith(REMOTE_PREFIX):
            continue
        stem, _, ext = name.partition(".")
        if ext in EXTENSIONS:
            have[stem] = name
        else:  # a download a crash interrupted, or a type we no longer serve
            result.remove.append(name)
    stems = {remote_stem(url): url for url in wanted}
    result.remove.extend(name for stem, name in have.items() if stem not in stems)
    for stem, url in sorted(stems.items()):
        if stem in have:
            result.cached += 1
            continue
        attempt = attempts.get(url)
        if attempt is not None and attempt.refused:
            result.failed += 1
        else:
            result.queued += 1
        if attempt is None or attempt.next_at <= now:
            result.fetch.append(url)
    return result


class _LimitedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s), so a catalog URL cannot point at a local file."""

    def redirect_request(  # noqa: PLR0917 (the base class's signature)
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not is_remote(newurl):
            raise MediaRefused(f"redirect to {newurl[:80]!r} is not http(s)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def download(
    url: str, timeout_s: float = TIMEOUT_S, max_bytes: int = MAX_BYTES
) -> tuple[bytes, str]:
    """GET ``url`` (blocking): the body and its extension; MediaRefused or OSError on failure."""
    if not is_remote(url):
        raise MediaRefused("not an http(s) URL")
    opener = urllib.request.build_opener(_LimitedRedirects)
    request = urllib.request.Request(url, headers={"Accept": "image/*"})  # noqa: S310
    with opener.open(request, timeout=timeout_s) as response:
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise MediaRefused(f"larger than {max_bytes} bytes (Content-Length {length})")
        data = response.read(max_bytes + 1)
        content_type = response.headers.get("Content-Type", "")
    return data, check_image(data, content_type, max_bytes)


class MediaFetcher:
    """Supervised component: keeps local copies of the catalog's remote product images."""

    name = "media"

    def __init__(
        self,
        services: Services,
        *,
        scan_s: float = SCAN_S,
        timeout_s: float = TIMEOUT_S,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from edge.catalog.store import media_dir

        self.services = services
        self.folder = media_dir(services.config.device.data_dir)
        self.scan_s = scan_s
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.clock = clock  # monotonic seconds; tests turn it to skip a backoff
        self.attempts: dict[str, Attempt] = {}
        self.last_plan = MediaPlan()
        self._names: object = None  # the catalog's image list at the last full round
        self._unfinished = False  # the last round stopped before trying every URL

    async def run(self) -> None:
        """Keep the media folder in step with the catalog on one worker thread, until cancelled.

        One long-lived daemon thread (not ``asyncio.to_thread``): the catalog keeps one SQLite
        connection per thread, and a download in progress must never delay the daemon's exit.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        failed: asyncio.Future[None] = loop.create_future()
        stop = threading.Event()

        def work() -> None:
            try:
                while not stop.is_set():
                    self.step(stop)
                    stop.wait(self.scan_s)
            except BaseException as exc:  # handed to run(), which raises it to the supervisor
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(_settle, failed, exc)

        threading.Thread(target=work, name="media-fetch", daemon=True).start()
        self.services.health.set(self.name, "ok")
        try:
            await failed
        finally:
            stop.set()  # the thread ends before its next download

    def step(self, stop: threading.Event | None = None) -> MediaPlan:
        """One blocking round: fetch what is missing and due, remove what is unused."""
        catalog = self.services.catalog
        if catalog is None:  # the session component has not opened the catalog yet
            return self.last_plan
        names = catalog.image_names()  # the store keeps it cached until the catalog changes
        now = self.clock()
        due = any(a.next_at <= now for a in self.attempts.values())
        if names is self._names and not due and not self._unfinished:
            return self.last_plan  # nothing changed: skip hashing and listing the folder
        wanted = wanted_urls(names)
        for url in [u for u in self.attempts if u not in wanted]:
            del self.attempts[url]
        todo = plan(wanted, _listdir(self.folder), self.attempts, now)
        for name in todo.remove:
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()
                _LOGGER.info("removed product image %s: no product uses it any more", name)
        saved = tried = 0
        for url in todo.fetch:
            if (stop is not None and stop.is_set()) or self.services.stopping.is_set():
                break
            ok, got = self._fetch_one(url)
            saved += got
            tried += 1
            if not ok:
                break  # the network looks down: try the others in a later round
        self._unfinished = tried < len(todo.fetch)
        if saved or todo.remove:
            catalog.forget_cached()  # cached pages show the placeholder or a removed file
            names = catalog.image_names()
        self._names = names
        self.last_plan = plan(wanted, _listdir(self.folder), self.attempts, self.clock())
        self._report(self.last_plan)
        return self.last_plan

    def _fetch_one(self, url: str) -> tuple[bool, bool]:
        """Download one URL: (False when the network failed so the round stops, saved)."""
        attempt = self.attempts.setdefault(url, Attempt())
        shown = _shown(url)
        try:
            data, ext = download(url, self.timeout_s, self.max_bytes)
        except MediaRefused as exc:
            attempt.refused = str(exc)
            attempt.next_at = self.clock() + REFUSED_RETRY_S
            _LOGGER.warning("product image %s refused: %s", shown, exc)
            return True, False
        except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts, bad URLs
            attempt.failures += 1
            delay = retry_delay(attempt.failures)
            attempt.next_at = self.clock() + delay
            reason = getattr(exc, "reason", exc)
            _LOGGER.warning(
                "product image %s not fetched (%s); trying again in %.0f s", shown, reason, delay
            )
            return isinstance(exc, urllib.error.HTTPError), False  # answered: not down
        name = remote_name(url, ext)
        part = self.folder / (name + PART_SUFFIX)
        try:
            part.write_bytes(data)
            os.replace(part, self.folder / name)
        except OSError as exc:
            with contextlib.suppress(OSError):
                part.unlink()
            attempt.failures += 1
            attempt.next_at = self.clock() + retry_delay(attempt.failures)
            _LOGGER.warning("product image %s not saved: %s", shown, exc)
            return True, False
        del self.attempts[url]
        _LOGGER.info("product image %s saved as %s (%d bytes)", shown, name, len(data))
        return True, True

    def _report(self, current: MediaPlan) -> None:
        health = self.services.health
        health.metric(self.name, "queued", current.queued)
        health.metric(self.name, "cached", current.cached)
        health.metric(self.name, "failed", current.failed)


def _settle(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _listdir(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def _shown(url: str) -> str:
    """The URL for logs without its query string (it may carry a signed token)."""
    return url.split("?", 1)[0][:120]


def media_component(services: Services) -> MediaFetcher | None:
    """The image fetcher when the kiosk (which shows the images) is enabled."""
    if not services.config.kiosk.enabled:
        return None
    return MediaFetcher(services)
