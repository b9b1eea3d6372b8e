"""The camera inside the running daemon: a scanned card starts the shopper session, a
scanned product opens its page, and healthz reports the camera's frame and decode rates."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from edge.events import Event
from tests.conftest import ConfigWriter
from tests.integration.test_camera import DEMO, DEMO_HASH, DEMO_SALT
from tests.support.daemon import InProcessDaemon


def test_demo_video_drives_the_session(tmp_path: Path, write_config: ConfigWriter) -> None:
    """Loyalty scan -> session identified by the hash; product scan -> local.product.open."""
    video = tmp_path / "camera.mp4"
    staged = tmp_path / "staged.mp4"
    DEMO.write_demo_video(staged)
    config = write_config(
        device={"identity_salt": DEMO_SALT},
        barcodes={"enabled": True, "camera": str(video), "fps": 40.0, "loop": False},
    )
    with InProcessDaemon(config) as daemon:
        sub = daemon.services.bus.subscribe_thread("kiosk.loyalty.", "kiosk.product.", "local.")
        # The camera was started before the subscription: plug it in now (it is reopened).
        staged.rename(video)
        events: list[Event] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            event = sub.get(timeout=0.2)
            if event is not None:
                events.append(event)
            opens = sum(e.type == "local.product.open" for e in events)
            if opens >= 2 and sum(e.type.startswith("kiosk.") for e in events) >= 3:
                break
        session = daemon.services.session.snapshot()
        time.sleep(1.2)  # one health round after the last frames
        with urllib.request.urlopen(daemon.base_url + "/api/healthz", timeout=5) as resp:
            body = resp.read()
    scans = [(e.type, e.data.get("id_hash") or e.data.get("ean")) for e in events]
    assert [s for s in scans if s[0].startswith("kiosk.")] == [
        ("kiosk.loyalty.scan", DEMO_HASH),
        ("kiosk.product.scan", "3760000000017"),
        ("kiosk.product.scan", "3760000000024"),
    ]
    opened = [e.data["ean"] for e in events if e.type == "local.product.open"]
    assert opened == ["3760000000017", "3760000000024"]
    assert session.id_hash == DEMO_HASH
    assert session.source == "loyalty"
    camera = json.loads(body)["components"]["camera"]
    assert camera["state"] == "ok"
    assert camera["metrics"]["frames"] > 100
    assert "2900001234566" not in body.decode()
