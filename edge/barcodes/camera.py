"""The camera: an OpenCV capture source, a latest-frame slot and a decode worker thread.

Capture and decoding run in two threads of their own so the event loop never waits on a
camera or a decoder. The capture thread keeps only the newest frame: when decoding falls
behind, older frames are dropped (and counted), never queued, so a scan is always about what
is in front of the camera now. A V4L2 device or stream that disappears (USB camera unplugged,
RTSP camera rebooting) is reopened with exponential backoff; a video file or image folder
(the demo, the tests) is paced at the configured frame rate and optionally looped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Protocol

import cv2

from edge.barcodes.decode import Frame, FrameDecoder, Reading
from edge.barcodes.scans import ScanRouter
from edge.services import Services

_LOGGER = logging.getLogger(__name__)

SourceKind = Literal["device", "url", "file", "folder"]

IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
# Reopen delays after a camera vanishes: quick for a blip, at most 30 s against a camera that
# is really gone (each attempt probes the USB bus, cheap but not free on a Pi Zero).
REOPEN_MIN_S: Final = 0.5
REOPEN_MAX_S: Final = 30.0
# A device that returns this many failed reads in a row is treated as gone and reopened.
MAX_FAILED_READS: Final = 10
# Health metrics are refreshed this often by the component's loop.
METRICS_INTERVAL_S: Final = 1.0
# Threads get this long each to finish on shutdown (a blocked V4L2 read returns within ~1 s);
# two of them stay within the daemon's 4 s component shutdown budget.
JOIN_TIMEOUT_S: Final = 1.5


class CaptureError(Exception):
    """A capture source cannot be opened or read; the message names it and the reason."""


def source_kind(spec: str) -> SourceKind:
    """What a camera setting names: a V4L2 device, a stream URL, a video file or a folder."""
    if spec.isdigit() or spec.startswith("/dev/"):
        return "device"
    if "://" in spec:
        return "url"
    if Path(spec).is_dir():
        return "folder"
    return "file"


class FrameSource(Protocol):
    """Something that yields frames until it ends (None) or fails (CaptureError)."""

    def read(self) -> Frame | None:
        """The next frame, or None at the end of a file or folder."""
        ...

    def close(self) -> None:
        """Release the device or file."""
        ...


class VideoSource:
    """A cv2.VideoCapture on a device, stream URL or video file."""

    def __init__(self, spec: str, kind: SourceKind, width: int, height: int, fps: float) -> None:
        self.spec = spec
        self.kind = kind
        if kind == "file" and not Path(spec).is_file():
            raise CaptureError(f"video file {spec} does not exist")
        if kind == "device":
            index: int | str = int(spec) if spec.isdigit() else spec
            self._cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
        else:
            self._cap = cv2.VideoCapture(spec)
        if not self._cap.isOpened():
            self._cap.release()
            raise CaptureError(f"cannot open {kind} {spec} (missing, busy or unsupported)")
        if kind == "device":
            # Ask the camera for the configured mode; it may pick the nearest it supports.
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            self._cap.set(cv2.CAP_PROP_FPS, fps)
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver from queueing old frames

    def read(self) -> Frame | None:
        """The next frame; None at the end of a file; CaptureError when a device stops."""
        for _ in range(MAX_FAILED_READS):
            ok, frame = self._cap.read()
            if ok and frame is not None:
                return frame
            if self.kind == "file":
                return None
        raise CaptureError(f"{self.kind} {self.spec} stopped delivering frames")

    def close(self) -> None:
        """Release the capture."""
        self._cap.release()


class FolderSource:
    """The images of a folder in name order, as frames."""

    def __init__(self, spec: str) -> None:
        folder = Path(spec)
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise CaptureError(
                f"folder {spec} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        self._next = 0

    def read(self) -> Frame | None:
        """The next readable image; None after the last."""
        while self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is not None:
                return frame
            _LOGGER.warning("skipping unreadable image %s", path.name)
        return None

    def close(self) -> None:
        """Nothing to release."""


def open_source(spec: str, width: int = 640, height: int = 480, fps: float = 15.0) -> FrameSource:
    """Open a capture source by its setting; raises CaptureError naming the problem."""
    kind = source_kind(spec)
    if kind == "folder":
        return FolderSource(spec)
    return VideoSource(spec, kind, width, height, fps)


def iter_file_frames(path: Path) -> Iterator[tuple[int, Frame]]:
    """(index, frame) of an image file, a video file or an image folder, as fast as they read."""
    if path.is_dir():
        source: FrameSource = FolderSource(str(path))
    else:
        if not path.exists():
            raise CaptureError(f"{path} does not exist")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise CaptureError(f"{path} is not an image OpenCV can read")
            yield 0, image
            return
        try:
            source = VideoSource(str(path), "file", 0, 0, 0)
        except CaptureError:
            raise CaptureError(f"{path} is not an image or video OpenCV can read") from None
    try:
        index = 0
        while (frame := source.read()) is not None:
            yield index, frame
            index += 1
        if index == 0:
            raise CaptureError(f"{path} holds no readable frames")
    finally:
        source.close()


class LatestFrame:
    """A one-frame slot between capture and decoding: a new frame replaces an unread one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        """Offer the newest frame; an unread older frame is dropped."""
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Frame | None:
        """Take the newest frame, waiting up to ``timeout``; None on timeout or when closed."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        """Wake and release any waiting reader."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class CameraStats:
    """Counters shared by the two threads (ints only: safe to read without a lock)."""

    captured: int = 0
    decoded: int = 0
    readings: int = 0
    opens: int = 0
    decode_errors: int = 0
    decode_ms_total: float = 0.0
    state: str = "starting"
    reason: str = ""
    finished: bool = False
    errors: list[str] = field(default_factory=list)


ReadingSink = Callable[[Reading], None]


class CameraPipeline:
    """Two threads: capture (open, read, pace, reopen) and decode (newest frame only)."""

    def __init__(
        self,
        spec: str,
        decoder: FrameDecoder,
        on_reading: ReadingSink,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 15.0,
        loop: bool = False,
        opener: Callable[[str, int, int, float], FrameSource] = open_source,
    ) -> None:
        self.spec = spec
        self.kind = source_kind(spec)
        self.decoder = decoder
        self.on_reading = on_reading
        self.width, self.height, self.fps, self.loop = width, height, fps, loop
        self._opener = opener
        self.slot = LatestFrame()
        self.stats = CameraStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the capture and decode threads."""
        self._threads = [
            threading.Thread(target=self._guard, args=(self._capture,), name="camera-capture"),
            threading.Thread(target=self._guard, args=(self._decode,), name="camera-decode"),
        ]
        for t in self._threads:
            t.daemon = True
            t.start()

    def stop(self) -> None:
        """Stop both threads and wait for them (bounded)."""
        self._stop.set()
        self.slot.close()
        for t in self._threads:
            t.join(JOIN_TIMEOUT_S)
            if t.is_alive():
                _LOGGER.warning("thread %s did not stop in time", t.name)
        self.decoder.close()

    def alive(self) -> bool:
        """True while both threads run."""
        return all(t.is_alive() for t in self._threads)

    def _guard(self, target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as exc:  # reported to the component, which fails and is restarted
            _LOGGER.exception("camera thread failed")
            self.stats.errors.append(f"{type(exc).__name__}: {exc}")

    # -- capture ---------------------------------------------------------------------------
    def _capture(self) -> None:
        delay = REOPEN_MIN_S
        while not self._stop.is_set():
            try:
                source = self._opener(self.spec, self.width, self.height, self.fps)
            except CaptureError as exc:
                self.stats.state, self.stats.reason = (
                    "degraded",
                    f"{exc}; retrying in {delay:.1f} s",
                )
                _LOGGER.warning("camera: %s; retrying in %.1f s", exc, delay)
                if self._stop.wait(delay):
                    return
                delay = min(REOPEN_MAX_S, delay * 2)
                continue
            self.stats.opens += 1
            self.stats.state, self.stats.reason = "ok", ""
            before = self.stats.captured
            try:
                ended = self._read_all(source)
            except CaptureError as exc:
                self.stats.state, self.stats.reason = "degraded", str(exc)
                _LOGGER.warning("camera: %s; reopening", exc)
                ended = False
            finally:
                source.close()
            if self.stats.captured > before:
                delay = REOPEN_MIN_S  # it worked for a while: the next outage starts afresh
            elif ended:  # opened but not a single frame: retry with backoff, never spin
                self.stats.state, self.stats.reason = "degraded", f"{self.spec} holds no frames"
                ended = False
            if ended:
                if self.loop and self.kind in ("file", "folder"):
                    delay = REOPEN_MIN_S
                    continue
                if self.kind in ("file", "folder"):
                    self.stats.finished = True
                    self.stats.reason = "end of the recording"
                    _LOGGER.info("camera: %s ended", self.spec)
                    return
            if self._stop.wait(delay):
                return
            delay = min(REOPEN_MAX_S, delay * 2)

    def _read_all(self, source: FrameSource) -> bool:
        """Read until the source ends (True) or stop is asked (False)."""
        paced = self.kind in ("file", "folder")
        period = 1.0 / self.fps
        next_at = time.monotonic()
        while not self._stop.is_set():
            frame = source.read()
            if frame is None:
                return True
            self.stats.captured += 1
            self.slot.put(frame)
            if paced:
                next_at += period
                pause = next_at - time.monotonic()
                if pause > 0:
                    if self._stop.wait(pause):
                        return False
                else:
                    next_at = time.monotonic()
        return False

    # -- decode ----------------------------------------------------------------------------
    def _decode(self) -> None:
        while not self._stop.is_set():
            frame = self.slot.get(timeout=0.5)
            if frame is None:
                continue
            started = time.perf_counter()
            try:
                readings = self.decoder.decode(frame)
            except Exception:  # one odd frame must not stop the camera
                self.stats.decode_errors += 1
                if self.stats.decode_errors == 1:
                    _LOGGER.exception("decoding a frame failed (logged once; counted in health)")
                continue
            self.stats.decode_ms_total += (time.perf_counter() - started) * 1000
            self.stats.decoded += 1
            for reading in readings:
                self.stats.readings += 1
                try:
                    self.on_reading(reading)
                except Exception:
                    _LOGGER.exception("handling a camera reading failed")


class CameraComponent:
    """The supervised camera: runs the pipeline, reports fps and decode rate in health."""

    name = "camera"

    def __init__(self, services: Services, router: ScanRouter) -> None:
        self.services = services
        self.router = router

    def _pipeline(self) -> CameraPipeline:
        cfg = self.services.config.barcodes
        decoder = FrameDecoder(cfg.symbologies, roi=cfg.roi, use_zxing=cfg.use_zxing)
        router = self.router

        def on_reading(reading: Reading) -> None:
            router.handle(reading.text, reading.symbology, "camera")

        return CameraPipeline(
            cfg.camera,
            decoder,
            on_reading,
            width=cfg.width,
            height=cfg.height,
            fps=cfg.fps,
            loop=cfg.loop,
        )

    async def run(self) -> None:
        """Capture and decode until cancelled; raise if a thread dies."""
        pipeline = self._pipeline()
        health = self.services.health
        pipeline.start()
        last = (time.monotonic(), 0, 0, 0.0)
        try:
            while True:
                await asyncio.sleep(METRICS_INTERVAL_S)
                if pipeline.stats.errors:
                    raise CaptureError(pipeline.stats.errors[0])
                if not pipeline.alive() and not pipeline.stats.finished:
                    raise CaptureError("the camera threads stopped")
                now = time.monotonic()
                s = pipeline.stats
                t0, cap0, dec0, ms0 = last
                span = max(now - t0, 1e-6)
                decoded = s.decoded - dec0
                health.metric(self.name, "fps", round((s.captured - cap0) / span, 2))
                health.metric(self.name, "decode_fps", round(decoded / span, 2))
                health.metric(
                    self.name,
                    "decode_ms",
                    round((s.decode_ms_total - ms0) / decoded, 2) if decoded else None,
                )
                health.metric(self.name, "dropped_frames", pipeline.slot.dropped)
                health.metric(self.name, "frames", s.captured)
                health.metric(self.name, "readings", s.readings)
                health.metric(self.name, "decode_errors", s.decode_errors)
                c = self.router.counters
                health.metric(self.name, "scans", {"loyalty": c.loyalty, "product": c.product})
                last = (now, s.captured, s.decoded, s.decode_ms_total)
                if s.state == "ok" or s.finished:
                    health.set(self.name, "ok", s.reason)
                else:
                    health.set(self.name, "degraded", s.reason)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(pipeline.stop)
