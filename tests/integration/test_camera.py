"""The camera path end to end: frames written with cv2.VideoWriter, read back through the
capture source, decoded in the worker thread, published on the bus as contract events."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.barcodes.camera import (
    CameraComponent,
    CameraPipeline,
    CaptureError,
    LatestFrame,
    open_source,
    source_kind,
)
from edge.barcodes.decode import FrameDecoder, Reading
from edge.barcodes.service import camera_component, hid_component, scan_router
from edge.bus import Bus
from edge.config import Config, LoyaltyPattern
from edge.events import Event
from edge.health import Health
from edge.services import Services
from tests.conftest import DATA_DIR, KIOSK_EDGE, REPO_ROOT
from tests.support.scripts import load_script

CORPUS = DATA_DIR / "barcodes" / "corpus"
ALL = ["ean13", "ean8", "upca", "code128", "qrcode"]
DEMO_SALT = "demo-salt-not-secret"
DEMO_HASH = "49698d7f90c7344b7552e55142b73e35"


GEN = load_script("barcodes/generate.py")
DEMO = load_script("barcodes/demo_video.py")


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> None:
    """Frames into an MJPEG AVI, as a USB camera delivers them."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def test_corpus_through_video_writer_and_capture_source(tmp_path: Path) -> None:
    """Every corpus frame, through VideoWriter and the capture source, decodes correctly."""
    samples = GEN.load_manifest(CORPUS)
    video = tmp_path / "corpus.avi"
    write_video(video, [cv2.imread(str(CORPUS / s.file)) for s in samples])
    source = open_source(str(video))
    decoder = FrameDecoder(ALL)
    hits = total = false_reads = 0
    try:
        for sample in samples:
            frame = source.read()
            assert frame is not None
            assert frame.shape == (480, 640, 3)
            texts = [r.text for r in decoder.decode(frame)]
            assert set(texts) <= {sample.text}, f"{sample.file}: misread {texts}"
            if sample.text:
                total += 1
                hits += sample.text in texts
            else:
                false_reads += len(texts)
        assert source.read() is None
    finally:
        source.close()
    assert false_reads == 0
    assert hits / total >= 0.97, f"recall {hits}/{total}"


def test_source_kinds_and_errors(tmp_path: Path) -> None:
    """Settings name devices, URLs, files and folders; missing ones raise a clear error."""
    assert source_kind("0") == "device"
    assert source_kind("/dev/video2") == "device"
    assert source_kind("rtsp://cam.local/stream") == "url"
    assert source_kind(str(tmp_path)) == "folder"
    assert source_kind(str(tmp_path / "x.mp4")) == "file"
    with pytest.raises(CaptureError, match="does not exist"):
        open_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(CaptureError, match="holds no images"):
        open_source(str(tmp_path))
    (tmp_path / "junk.mp4").write_text("not a video")
    with pytest.raises(CaptureError, match="cannot open"):
        open_source(str(tmp_path / "junk.mp4"))


def test_folder_source_reads_images_in_order(tmp_path: Path) -> None:
    """An image folder is a camera: its images in name order, unreadable ones skipped."""
    for i, name in enumerate(["b.png", "a.png", "c.jpg"]):
        cv2.imwrite(str(tmp_path / name), np.full((48, 64, 3), i * 40, np.uint8))
    (tmp_path / "d.png").write_text("broken")
    source = open_source(str(tmp_path))
    values = []
    while (frame := source.read()) is not None:
        values.append(int(frame[0, 0, 0]))
    assert values[:2] == [40, 0]
    assert len(values) == 3


def test_latest_frame_drops_unread_frames() -> None:
    """The slot keeps only the newest frame and counts the ones dropped."""
    slot = LatestFrame()
    for i in range(5):
        slot.put(np.full((2, 2), i, np.uint8))
    frame = slot.get(timeout=0.1)
    assert frame is not None
    assert int(frame[0, 0]) == 4
    assert slot.dropped == 4
    assert slot.get(timeout=0.01) is None
    slot.close()
    assert slot.get(timeout=5) is None  # closed: returns at once


def test_pipeline_drops_old_frames_when_decoding_falls_behind(tmp_path: Path) -> None:
    """Frames arriving faster than they decode are dropped, not queued: the decoder always
    gets the newest one, and nothing piles up."""
    samples = GEN.load_manifest(CORPUS)
    frames = [cv2.imread(str(CORPUS / s.file)) for s in samples] * 3
    readings: list[Reading] = []
    # Frames come from memory at up to 5000 a second: far faster than any decoder.
    pipeline = CameraPipeline(
        "burst.mp4",
        FrameDecoder(ALL),
        readings.append,
        fps=5000.0,
        opener=lambda *_: _ListSource(frames),
    )
    pipeline.start()
    deadline = time.monotonic() + 20
    while not pipeline.stats.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    pipeline.stop()
    s = pipeline.stats
    assert s.finished
    assert s.captured == len(frames)
    assert pipeline.slot.dropped > len(frames) // 2
    assert s.decoded + pipeline.slot.dropped == s.captured  # each frame decoded or dropped
    assert readings  # still reading codes from the frames it kept


def _services(config: Config) -> Services:
    return Services(config=config, bus=Bus(), health=Health(), salt=DEMO_SALT)


async def _run_camera(services: Services, seconds: float, frames: int) -> list[Event]:
    """Run the camera component until it reported ``frames`` captured (or time is up)."""
    loop = asyncio.get_running_loop()
    services.loop = loop
    services.bus.bind(loop)
    got: list[Event] = []
    services.bus.subscribe(got.append, "kiosk.loyalty.", "kiosk.product.")
    component = camera_component(services)
    assert isinstance(component, CameraComponent)
    task = asyncio.create_task(component.run())
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        health = services.health.get("camera")
        if health is not None and health.metrics.get("frames") == frames:
            break
        await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return got


def test_demo_video_publishes_contract_events_once_each(tmp_path: Path) -> None:
    """The demo video yields one loyalty scan (hash only) and one scan per demo product."""
    video = tmp_path / "camera.mp4"
    DEMO.write_demo_video(video)
    config = Config()
    config.barcodes.camera = str(video)
    config.barcodes.fps = 60.0  # play the 18 s recording in 3 s
    services = _services(config)
    expected = sum(
        round((DEMO.SHOW_S if text else DEMO.EMPTY_S) * DEMO.FPS) for _, text in DEMO.scenes()
    )
    got = asyncio.run(_run_camera(services, 30.0, expected))
    assert [(e.type, e.data) for e in got] == [
        ("kiosk.loyalty.scan", {"id_hash": DEMO_HASH, "source": "camera", "symbology": "ean13"}),
        (
            "kiosk.product.scan",
            {"ean": "3760000000017", "source": "camera", "symbology": "ean13"},
        ),
        (
            "kiosk.product.scan",
            {"ean": "3760000000024", "source": "camera", "symbology": "ean13"},
        ),
    ]
    assert "2900001234566" not in json.dumps([e.data for e in got])
    health = services.health.get("camera")
    assert health is not None
    assert health.state == "ok"
    assert health.metrics["frames"] == expected
    assert health.metrics["readings"] >= 3
    router = scan_router(services)
    assert router.counters.duplicates > 0  # the card stayed in view for many frames


def test_camera_that_appears_later_is_opened_with_backoff(tmp_path: Path) -> None:
    """A missing source makes the camera degraded with the reason; once it exists, it reads."""
    video = tmp_path / "late.avi"
    config = Config()
    config.barcodes.camera = str(video)
    config.barcodes.fps = 30.0
    services = _services(config)

    async def scenario() -> list[Event]:
        loop = asyncio.get_running_loop()
        services.loop = loop
        services.bus.bind(loop)
        got: list[Event] = []
        services.bus.subscribe(got.append, "kiosk.")
        component = camera_component(services)
        assert component is not None
        task = asyncio.create_task(component.run())
        await asyncio.sleep(1.6)
        health = services.health.get("camera")
        assert health is not None
        assert health.state == "degraded"
        assert "does not exist" in health.reason
        frame = cv2.imread(str(CORPUS / "frame_001.jpg"))
        await asyncio.to_thread(write_video, video, [frame] * 10)
        deadline = loop.time() + 10
        while not got and loop.time() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return got

    got = asyncio.run(scenario())
    assert [e.data.get("ean") for e in got] == ["3760000000017"]
    health = services.health.get("camera")
    assert health is not None
    assert health.state == "ok"


def test_factories_follow_the_config() -> None:
    """camera follows barcodes.enabled, hid follows barcodes.hid_enabled; one shared router."""
    config = Config()
    config.barcodes.enabled = False
    config.barcodes.hid_enabled = False
    services = _services(config)
    assert camera_component(services) is None
    assert hid_component(services) is None
    config.barcodes.enabled = True
    config.barcodes.hid_enabled = True
    cam, hid = camera_component(services), hid_component(services)
    assert cam is not None
    assert hid is not None
    assert cam.router is hid.router  # type: ignore[attr-defined]


def test_daemon_lists_the_components() -> None:
    """The daemon's factory list has camera and hid."""
    from edge.daemon import COMPONENT_FACTORIES

    names = [name for name, _ in COMPONENT_FACTORIES]
    assert "camera" in names
    assert "hid" in names


def _scan(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KIOSK_EDGE, "scan", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
        env={"PATH": "/usr/bin:/bin", "KIOSK_EDGE_CONFIG": "/nonexistent/edge.toml"},
    )


def test_cli_scan_images_and_videos(tmp_path: Path) -> None:
    """`kiosk-edge scan` prints one JSON line per distinct code and exits 0."""
    video = tmp_path / "demo.mp4"
    DEMO.write_demo_video(video)
    image = CORPUS / "frame_000.jpg"
    result = _scan(str(image), str(video))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {
        "file": str(image),
        "frame": 0,
        "symbology": "code128",
        "text": "2900001234566",
        "class": "loyalty",
        "valid": True,
    }
    assert [(x["text"], x["class"]) for x in lines[1:]] == [
        ("2900001234566", "loyalty"),
        ("3760000000017", "product"),
        ("3760000000024", "product"),
    ]
    assert all(x["file"] == str(video) and x["frame"] > 0 for x in lines[1:])


def test_cli_scan_nothing_and_unreadable(tmp_path: Path) -> None:
    """Exit 1 when no code is found; exit 2 naming the file when it cannot be read."""
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 200, np.uint8))
    result = _scan(str(blank))
    assert (result.returncode, result.stdout) == (1, "")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = _scan(str(text), str(CORPUS / "frame_000.jpg"))
    assert result.returncode == 2
    assert "notes.txt is not an image or video OpenCV can read" in result.stderr
    assert "2900001234566" in result.stdout  # the readable file is still reported
    result = _scan(str(tmp_path / "missing.jpg"))
    assert result.returncode == 2
    assert "missing.jpg does not exist" in result.stderr


def test_cli_scan_stops_quietly_when_its_reader_goes_away() -> None:
    """`kiosk-edge scan FOLDER | head -1`: exit 141 like a SIGPIPE'd tool, no traceback."""
    proc = subprocess.Popen(
        [*KIOSK_EDGE, "scan", str(CORPUS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "KIOSK_EDGE_CONFIG": "/nonexistent/edge.toml"},
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert json.loads(proc.stdout.readline())["text"] == "2900001234566"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_cli_scan_folder_and_other_class(tmp_path: Path) -> None:
    """A folder is scanned image by image; a QR with a URL is class "other", not valid."""
    import segno

    qr = tmp_path / "qr.png"
    segno.make("https://shop.example/", error="m").save(str(qr), scale=6, border=4)
    result = _scan(str(tmp_path))
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert (line["symbology"], line["class"], line["valid"]) == ("qrcode", "other", False)


class _ListSource:
    """A FrameSource over in-memory frames (for frames no camera driver would produce)."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = list(frames)

    def read(self) -> np.ndarray | None:
        return self.frames.pop(0) if self.frames else None

    def close(self) -> None:
        self.frames.clear()


def test_a_frame_the_decoder_rejects_does_not_stop_the_camera() -> None:
    """A malformed frame is counted and skipped; the next frame is still decoded."""
    good = cv2.imread(str(CORPUS / "frame_001.jpg"))
    bad = np.zeros((480, 640, 2), np.uint8)  # two channels: OpenCV cannot convert it
    readings: list[Reading] = []
    pipeline = CameraPipeline(
        "frames.mp4",
        FrameDecoder(ALL),
        readings.append,
        fps=5.0,
        opener=lambda *_: _ListSource([bad, good]),
    )
    pipeline.start()
    deadline = time.monotonic() + 10
    while not readings and time.monotonic() < deadline:
        time.sleep(0.05)
    pipeline.stop()
    assert pipeline.stats.decode_errors == 1
    assert [r.text for r in readings] == ["3760000000017"]
    assert not pipeline.stats.errors


def test_http_stream_is_read_and_reopened_when_it_ends(tmp_path: Path) -> None:
    """An HTTP source is read through FFmpeg; when the stream stops it is reopened."""
    import functools
    import http.server
    import threading

    from tests.conftest import free_port

    frame = cv2.imread(str(CORPUS / "frame_002.jpg"))
    write_video(tmp_path / "clip.avi", [frame] * 5)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    readings: list[Reading] = []
    url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
    pipeline = CameraPipeline(url, FrameDecoder(ALL), readings.append, fps=30.0)
    try:
        assert pipeline.kind == "url"
        pipeline.start()
        deadline = time.monotonic() + 15
        while pipeline.stats.opens < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pipeline.stop()
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert pipeline.stats.opens >= 2
    assert pipeline.stats.captured >= 5
    assert {r.text for r in readings} == {"3760000000024"}


def test_looped_source_without_frames_backs_off() -> None:
    """A looped recording that opens but yields nothing is retried with backoff, not spun."""
    opened: list[float] = []

    def opener(*_: object) -> _ListSource:
        opened.append(time.monotonic())
        return _ListSource([])

    pipeline = CameraPipeline(
        "empty.mp4", FrameDecoder(ALL), lambda _: None, loop=True, opener=opener
    )
    pipeline.start()
    time.sleep(1.2)
    pipeline.stop()
    assert 2 <= len(opened) <= 3  # 0 s, 0.5 s, 1.5 s: not thousands
    assert pipeline.stats.state == "degraded"
    assert "holds no frames" in pipeline.stats.reason


def test_scan_router_follows_a_reload_of_the_barcodes_settings() -> None:
    """Camera and scanner share one router; when a reload changes the loyalty patterns, the
    rebuilt readers share a new router that applies them (the old one kept the old ones)."""
    from edge.barcodes.hid import HidComponent

    config = Config()
    config.barcodes.enabled = True
    config.barcodes.hid_enabled = True
    services = _services(config)
    camera = camera_component(services)
    hid = hid_component(services)
    assert isinstance(camera, CameraComponent)
    assert isinstance(hid, HidComponent)
    assert hid.router is camera.router
    first = camera.router.handle("2900001234566", "ean13", "camera")
    assert first is not None
    assert first.type == "kiosk.loyalty.scan"

    fresh = Config()
    fresh.barcodes.enabled = True
    fresh.barcodes.hid_enabled = True
    fresh.barcodes.loyalty_patterns = [LoyaltyPattern(prefix="27", length=13, check="gs1")]
    services.config = fresh
    camera2 = camera_component(services)
    hid2 = hid_component(services)
    assert isinstance(camera2, CameraComponent)
    assert isinstance(hid2, HidComponent)
    assert camera2.router is not camera.router
    assert hid2.router is camera2.router
    again = camera2.router.handle("2900001234566", "ean13", "camera")
    assert again is None or again.type != "kiosk.loyalty.scan"
    assert scan_router(services) is camera2.router  # unchanged settings: kept
