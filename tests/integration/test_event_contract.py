"""Every event central receives keeps its typed contract and carries no personal data.

The producers (beacons, barcodes, session, kiosk pages, take-away, relay, daemon) are run for
real — the demo recording through `beacons replay`, the demo video through the camera, a
shopper's visit through the kiosk app — and every relayed event is checked field by field.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from edge.event_data import DATA_MODELS, check_event_data
from edge.events import EVENT_TYPES, Event
from edge.relay.outbox import DB_NAME
from kiosk_ui import create_app
from tests.conftest import KIOSK_EDGE, REPO_ROOT, ConfigWriter, free_port
from tests.support.daemon import InProcessDaemon

DEMO = REPO_ROOT / "firmware_config" / "demo"
LOYALTY_NUMBER = "2900001234566"
ADDRESS = "camille.dupont@example.com"
MAC = re.compile(r"(?i)\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b")


def test_every_relayed_type_has_a_data_model() -> None:
    """A new relayed event type cannot be added without its contract."""
    relayed = {name for name, t in EVENT_TYPES.items() if t.relayed}
    assert relayed == set(DATA_MODELS)


def test_unknown_fields_and_bad_values_are_named() -> None:
    """A field central was not promised (here the card number) is an error, as is a bad hash."""
    problems = check_event_data(
        "kiosk.loyalty.scan",
        {"id_hash": "xyz", "source": "camera", "symbology": "ean13", "number": LOYALTY_NUMBER},
    )
    assert any("id_hash" in p for p in problems)
    assert any("number" in p and "Extra inputs" in p for p in problems)
    assert check_event_data("kiosk.nope", {}) == ["unknown event type 'kiosk.nope'"]
    assert check_event_data("local.session.welcome", {"first_name": "Camille"}) == []


def test_beacon_replay_keeps_the_contract(cli_env: dict[str, str]) -> None:
    """The demo recording's proximity events all conform, and no address leaves."""
    result = subprocess.run(
        [
            *KIOSK_EDGE,
            "beacons",
            "replay",
            str(DEMO / "beacons.jsonl"),
            "--config",
            str(REPO_ROOT / "firmware_config" / "demo.toml"),
        ],
        env=cli_env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    types = {e["type"] for e in events}
    assert {"kiosk.beacon.enter", "kiosk.beacon.exit", "kiosk.beacon.telemetry"} <= types
    assert any(e["data"]["beacon_class"] == "phone" for e in events)
    for event in events:
        assert check_event_data(event["type"], event["data"]) == [], event
    assert not MAC.search(result.stdout.decode())


def test_a_shopper_visit_keeps_the_contract_and_privacy(
    write_config: ConfigWriter, tmp_path: Path
) -> None:
    """Camera scans, session, search, views, compare, review and take-away: every relayed
    event conforms, and neither the card number nor the e-mail address reaches the outbox."""
    config = write_config(
        device={"identity_salt": "demo-salt-not-secret"},
        barcodes={"enabled": True, "camera": str(DEMO / "camera.mp4"), "loop": True},
        mqtt={"enabled": True, "port": free_port()},  # no broker: events wait in the outbox
        kiosk={"catalog_file": str(DEMO / "catalog.json")},
        printer={"enabled": True, "url": f"file://{tmp_path / 'receipts.bin'}"},
        mail={"enabled": True, "outbox_dir": str(tmp_path / "mail")},
    )
    seen: list[Event] = []
    with InProcessDaemon(config, on_services=lambda s: s.bus.subscribe(seen.append)) as daemon:
        client = create_app(daemon.services).test_client()
        token = client.get("/api/session").get_json()["csrf_token"]
        headers = {"X-CSRF-Token": token}
        assert client.get("/search?q=televiseur").status_code == 200
        assert client.get("/products/TV-001").status_code == 200
        assert client.get("/compare?sku=TV-001&sku=TV-002").status_code == 200
        review = {
            "sku": "TV-001",
            "rating": 5,
            "title": "Superbe",
            "text": "Une image magnifique.",
            "author": "Camille D.",
            "consent": True,
        }
        assert client.post("/api/reviews", json=review, headers=headers).status_code == 201
        mail = {"skus": ["TV-001", "TV-002"], "email": ADDRESS, "consent": True}
        assert client.post("/api/takeaway/email", json=mail, headers=headers).status_code == 202
        skus = {"skus": ["TV-001", "TV-002"]}
        assert client.post("/api/takeaway/print", json=skus, headers=headers).status_code == 202
        qr = skus
        assert client.post("/api/takeaway/qr", json=qr, headers=headers).status_code == 200
        deadline = time.monotonic() + 30
        wanted = {"kiosk.loyalty.scan", "kiosk.product.scan", "kiosk.session.start"}
        while time.monotonic() < deadline and not wanted <= {e.type for e in seen}:
            time.sleep(0.2)
        outbox = daemon.config.device.data_dir / DB_NAME
    relayed = [e for e in seen if EVENT_TYPES[e.type].relayed]
    types = {e.type for e in relayed}
    assert (
        wanted
        | {
            "kiosk.search",
            "kiosk.product.view",
            "kiosk.compare",
            "kiosk.review.submitted",
            "kiosk.takeaway.print",
            "kiosk.takeaway.email",
            "kiosk.takeaway.qr",
            "kiosk.component.state",
        }
        <= types
    ), types
    for event in relayed:
        assert check_event_data(event.type, event.data) == [], (event.type, event.data)
    text = json.dumps([e.data for e in seen])
    assert LOYALTY_NUMBER not in text
    assert ADDRESS not in text
    stored = b"".join(p.read_bytes() for p in outbox.parent.glob(DB_NAME + "*"))
    assert b"kiosk.loyalty.scan" in stored
    assert LOYALTY_NUMBER.encode() not in stored
    assert ADDRESS.encode() not in stored
