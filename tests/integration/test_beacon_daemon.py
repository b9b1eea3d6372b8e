"""The beacons component inside the whole daemon: the demo recording drives the bus."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import REPO_ROOT, ConfigWriter
from tests.support.daemon import InProcessDaemon

DEMO = REPO_ROOT / "firmware_config" / "demo" / "beacons.jsonl"


def test_daemon_replays_demo_recording_onto_the_bus(write_config: ConfigWriter) -> None:
    """`kiosk-edge run` with a replay file: beacons is healthy and enter events flow."""
    path: Path = write_config(
        kiosk={"enabled": False},
        beacons={
            "enabled": True,
            "replay_file": str(DEMO),
            "ibeacon_uuids": ["f7826da6-4fa2-4e98-8024-bc5b71e0893e"],
            "app_uuids": ["e2c56db5-dffb-48d2-b060-d0f5a71096e0"],
            "eddystone_namespaces": ["edd1ebeac04e5defa017"],
        },
    )
    with InProcessDaemon(path) as daemon:
        sub = daemon.services.bus.subscribe_thread("kiosk.beacon.")
        enters = []
        deadline = time.monotonic() + 15
        while len(enters) < 3 and time.monotonic() < deadline:
            event = sub.get(timeout=0.5)
            if event is not None and event.type == "kiosk.beacon.enter":
                enters.append(event)
        health = daemon.services.health.get("beacons")
        assert health is not None
        assert health.state == "ok", health
        assert health.metrics["scanning_mode"] == "replay"
    assert len(enters) == 3  # the three store beacons come first
    assert {e.data["beacon_class"] for e in enters} == {"store"}
    assert all(abs(e.time.timestamp() - time.time()) < 60 for e in enters)
