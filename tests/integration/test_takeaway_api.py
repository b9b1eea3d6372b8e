"""The take-away API end to end: the real daemon, its kiosk server, printer and mail queues."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.bus import ThreadSubscription
from tests.conftest import ConfigWriter, free_port
from tests.support.daemon import InProcessDaemon
from tests.support.escpos_text import decode
from tests.support.printer_listener import PrinterListener

CATALOG = Path(__file__).resolve().parent.parent / "data" / "receipts" / "comparison.json"
ADDRESS = "camille.durand@exemple-boutique.fr"


def call(
    base: str, method: str, path: str, body: Any = None, ctype: str = "application/json"
) -> tuple[int, Any, dict[str, str]]:
    data = (
        None
        if body is None
        else (json.dumps(body).encode() if ctype == "application/json" else body)
    )
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            headers = dict(resp.headers)
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, headers, status = err.read(), dict(err.headers), err.code
    if headers.get("Content-Type", "").startswith("application/json"):
        return status, json.loads(raw), headers
    return status, raw, headers


def wait_job(base: str, job_id: str, states: set[str], timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, body, _ = call(base, "GET", f"/api/takeaway/jobs/{job_id}")
        assert status == 200
        if body["state"] in states:
            return body  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"job stayed {body}")
        time.sleep(0.05)


def drain(sub: ThreadSubscription) -> list[Any]:
    events = []
    while (event := sub.get(timeout=0.5)) is not None:
        events.append(event)
    return events


@pytest.fixture
def printer_port() -> int:
    return free_port()


@pytest.fixture
def listener(printer_port: int) -> Iterator[PrinterListener]:
    lst = PrinterListener(printer_port).start()
    yield lst
    lst.stop()


@pytest.fixture
def daemon(
    write_config: ConfigWriter, tmp_path: Path, printer_port: int, listener: PrinterListener
) -> Iterator[InProcessDaemon]:
    path = write_config(
        kiosk={"catalog_file": str(CATALOG)},
        printer={
            "enabled": True,
            "url": f"tcp://127.0.0.1:{printer_port}",
            "retry_interval_s": 0.2,
            "columns": 42,
            "store_name": "Magasin Démo",
        },
        mail={"enabled": True, "outbox_dir": str(tmp_path / "mail"), "retry_interval_s": 0.2},
    )
    with InProcessDaemon(path) as d:
        yield d


def test_print_returns_202_and_the_receipt_reaches_the_printer(
    daemon: InProcessDaemon, listener: PrinterListener
) -> None:
    """POST print: 202 + job id; the job prints; kiosk.takeaway.print is published."""
    sub = daemon.services.bus.subscribe_thread("kiosk.takeaway")
    status, body, headers = call(
        daemon.base_url, "POST", "/api/takeaway/print", {"skus": ["TV-001", "TV-002"], "lang": "fr"}
    )
    assert status == 202
    assert body["job_id"].startswith("p-")
    assert headers["Location"] == f"/api/takeaway/jobs/{body['job_id']}"
    done = wait_job(daemon.base_url, body["job_id"], {"printed"})
    assert done["type"] == "print"
    lines = decode(listener.received).lines
    assert "Votre comparatif" in lines
    assert any("Éclat" in line for line in lines)
    assert all(len(line) <= 42 for line in lines)
    [event] = drain(sub)
    assert event.type == "kiosk.takeaway.print"
    assert event.data["job_id"] == body["job_id"]
    assert event.data["skus"] == ["TV-001", "TV-002"]


def test_paper_out_shows_attention_then_prints(
    daemon: InProcessDaemon, listener: PrinterListener
) -> None:
    """Paper out: job queued with attention, health says so; refilled: printed."""
    listener.mode = "paper_out"
    _, body, _ = call(daemon.base_url, "POST", "/api/takeaway/print", {"skus": ["TV-003"]})
    deadline = time.monotonic() + 10
    while True:
        _, job, _ = call(daemon.base_url, "GET", f"/api/takeaway/jobs/{body['job_id']}")
        if job["attention"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job["state"] == "queued"
    status, health, _ = call(daemon.base_url, "GET", "/api/healthz")
    assert status == 503
    assert health["components"]["printer"]["reason"] == "printer needs attention: paper out"
    listener.mode = "ok"
    wait_job(daemon.base_url, body["job_id"], {"printed"})
    assert any("Crème brûlée" in line for line in decode(listener.received).lines)


def test_email_needs_consent_and_a_valid_address(daemon: InProcessDaemon, tmp_path: Path) -> None:
    """No consent: 400; bad address: 422 without echo; then 202, sent, no address anywhere."""
    sub = daemon.services.bus.subscribe_thread("kiosk.takeaway")
    base = daemon.base_url
    status, body, _ = call(
        base, "POST", "/api/takeaway/email", {"skus": ["TV-001"], "email": ADDRESS}
    )
    assert status == 400
    assert "consent" in body["error"]
    status, body, _ = call(
        base,
        "POST",
        "/api/takeaway/email",
        {"skus": ["TV-001"], "email": "camille@localhost", "consent": True},
    )
    assert status == 422
    assert "camille@localhost" not in body["error"]
    status, body, _ = call(
        base,
        "POST",
        "/api/takeaway/email",
        {"skus": ["TV-001", "TV-002"], "email": ADDRESS, "consent": True, "lang": "en"},
    )
    assert status == 202
    job = wait_job(base, body["job_id"], {"sent"})
    assert ADDRESS not in json.dumps(job)
    eml = (tmp_path / "mail" / f"{body['job_id']}.eml").read_bytes()
    assert b"Your comparison" in eml
    events = drain(sub)
    assert [e.type for e in events] == ["kiosk.takeaway.email"]
    assert ADDRESS not in json.dumps(events[0].data)


def test_qr_link_and_image(daemon: InProcessDaemon) -> None:
    """POST qr: the link and an SVG image for it; kiosk.takeaway.qr published."""
    sub = daemon.services.bus.subscribe_thread("kiosk.takeaway")
    status, body, _ = call(
        daemon.base_url, "POST", "/api/takeaway/qr", {"skus": ["TV-001", "TV-004"]}
    )
    assert status == 200
    assert body["url"] == "https://shop.example/compare?skus=TV-001,TV-004"
    status, svg, headers = call(daemon.base_url, "GET", body["image"])
    assert status == 200
    assert headers["Content-Type"].startswith("image/svg+xml")
    assert svg.startswith(b"<svg")
    assert [e.type for e in drain(sub)] == ["kiosk.takeaway.qr"]


@pytest.mark.parametrize(
    ("path", "body", "ctype", "status"),
    [
        ("/api/takeaway/print", {"skus": ["NOPE-1"]}, "application/json", 404),
        ("/api/takeaway/print", {"skus": []}, "application/json", 400),
        ("/api/takeaway/print", {"skus": ["A", "B", "C", "D", "E"]}, "application/json", 400),
        ("/api/takeaway/print", b"skus=TV-001", "application/x-www-form-urlencoded", 415),
        (
            "/api/takeaway/email",
            {"skus": ["TV-001"], "email": 5, "consent": True},
            "application/json",
            400,
        ),
        ("/api/takeaway/qr", {"skus": ["bad sku!"]}, "application/json", 404),
    ],
)
def test_bad_requests_are_refused_clearly(
    daemon: InProcessDaemon, path: str, body: Any, ctype: str, status: int
) -> None:
    """Unknown products, wrong counts and non-JSON posts get a status and an error sentence."""
    got, answer, _ = call(daemon.base_url, "POST", path, body, ctype)
    assert got == status
    assert isinstance(answer, dict)
    assert answer["error"]


def test_unknown_job_and_test_page(daemon: InProcessDaemon, listener: PrinterListener) -> None:
    """Unknown job: 404. services.printer.submit_test_page() prints the test page."""
    status, _, _ = call(daemon.base_url, "GET", "/api/takeaway/jobs/p-nothing")
    assert status == 404
    job_id = daemon.services.printer.submit_test_page()
    wait_job(daemon.base_url, job_id, {"printed"})
    assert any("Page de test" in line for line in decode(listener.received).lines)


def test_actions_partial_renders_buttons_for_the_skus(daemon: InProcessDaemon) -> None:
    """The partial the product and compare pages include: three buttons, consent, the script."""
    from flask import render_template_string

    from kiosk_ui import create_app

    app = create_app(daemon.services)
    with app.test_request_context("/compare"):
        html = render_template_string(
            '{% include "takeaway/_actions.html" %}', skus=["TV-001", "TV-002"], lang="en"
        )
        empty = render_template_string('{% include "takeaway/_actions.html" %}', skus=[])
    assert 'data-skus="[&#34;TV-001&#34;, &#34;TV-002&#34;]"' in html
    for label in ("Print", "E-mail me", "Scan to take it with you", "I agree"):
        assert label in html
    assert 'type="email" inputmode="email"' in html
    assert 'type="checkbox" name="consent" required' in html
    assert "/static/takeaway.js" in html
    assert 'data-api="/api/takeaway"' in html
    assert empty.strip() == ""


def test_long_printer_backlog_refuses_more_receipts(
    daemon: InProcessDaemon, listener: PrinterListener
) -> None:
    """Paper out and 5 receipts waiting: the next is refused (503, in the shopper's language,
    pointing to e-mail and QR); once the printer is back, the waiting ones print and printing
    is offered again."""
    from kiosk_ui.blueprints.takeaway import MAX_WAITING_PRINTS

    listener.mode = "paper_out"
    jobs = []
    for _ in range(MAX_WAITING_PRINTS):
        status, body, _ = call(daemon.base_url, "POST", "/api/takeaway/print", {"skus": ["TV-003"]})
        assert status == 202
        jobs.append(body["job_id"])
    status, body, _ = call(
        daemon.base_url, "POST", "/api/takeaway/print", {"skus": ["TV-003"], "lang": "fr"}
    )
    assert status == 503
    assert "e-mail" in body["error"]
    assert "QR" in body["error"]
    assert "imprimante" in body["error"]
    listener.mode = "ok"
    for job in jobs:
        wait_job(daemon.base_url, job, {"printed"})
    status, body, _ = call(daemon.base_url, "POST", "/api/takeaway/print", {"skus": ["TV-003"]})
    assert status == 202
    wait_job(daemon.base_url, body["job_id"], {"printed"})


def test_mail_backlog_is_bounded(
    daemon: InProcessDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mails that cannot leave pile up only to a bound; then the kiosk offers the QR code."""
    from kiosk_ui.blueprints import takeaway

    monkeypatch.setattr(takeaway, "MAX_WAITING_MAILS", 3)
    (tmp_path / "mail").write_text("a file where the mail folder should be")  # cannot write
    body = {"skus": ["TV-001"], "email": ADDRESS, "consent": True, "lang": "en"}
    for _ in range(3):
        status, answer, _ = call(daemon.base_url, "POST", "/api/takeaway/email", body)
        assert status == 202, answer
    status, answer, _ = call(daemon.base_url, "POST", "/api/takeaway/email", body)
    assert status == 503
    assert "scan the QR code" in answer["error"]
    assert ADDRESS not in json.dumps(answer)
