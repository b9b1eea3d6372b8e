"""/admin: password (hashed or plain), lockout, its own session, CSRF, actions, support bundle."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from edge.config import Config
from edge.daemon import build_services
from edge.services import Services
from kiosk_ui import create_app
from kiosk_ui.admin_auth import AdminSessions, Lockout, verify_password

PASSWORD = "correct horse 42"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_services(tmp_path: Path, password: str) -> Services:
    config = Config()
    config.device.data_dir = tmp_path / "data"
    config.device.identity_salt = "test-salt-secret"
    config.kiosk.admin_password = password
    for section in (config.beacons, config.barcodes, config.mqtt, config.printer, config.mail):
        section.enabled = False
    return build_services(config)


AppFactory = Callable[..., tuple[Flask, Services]]


@pytest.fixture
def make_app(tmp_path: Path) -> AppFactory:
    def make(password: str = generate_password_hash(PASSWORD, "pbkdf2")) -> tuple[Flask, Services]:
        services = make_services(tmp_path, password)
        app = create_app(services)
        app.config["TESTING"] = True
        return app, services

    return make


@pytest.fixture
def client(make_app: AppFactory) -> FlaskClient:
    app, _ = make_app()
    return app.test_client()


def sign_in(client: FlaskClient, password: str = PASSWORD) -> int:
    return client.post("/admin/login", data={"password": password}).status_code


def csrf_of(client: FlaskClient) -> str:
    html = client.get("/admin/").get_data(as_text=True)
    return html.split('name="csrf_token" value="')[1].split('"')[0]


def test_verify_password_forms() -> None:
    """pbkdf2 and scrypt hashes and plain text all verify; wrong or empty never does."""
    for configured in (
        generate_password_hash(PASSWORD, "pbkdf2"),
        generate_password_hash(PASSWORD, "scrypt"),
        PASSWORD,
    ):
        assert verify_password(configured, PASSWORD)
        assert not verify_password(configured, PASSWORD + "x")
        assert not verify_password(configured, "")
    assert not verify_password("", "")
    assert not verify_password("", PASSWORD)
    assert not verify_password("pbkdf2:sha256:1$broken$zz", PASSWORD)


def test_lockout_counts_within_window() -> None:
    """Five failures within the window lock; the lock ends after its time; success resets."""
    clock = FakeClock()
    lock = Lockout(max_failures=5, window_s=300, lockout_s=300, clock=clock)
    for _ in range(4):
        assert not lock.failure()
    assert lock.locked_for() == 0
    assert lock.failure()
    assert lock.locked_for() == 300
    clock.now += 301
    assert lock.locked_for() == 0
    for _ in range(4):
        lock.failure()
    lock.success()
    assert not lock.failure()
    clock.now += 400  # old failures fall out of the window
    for _ in range(3):
        assert not lock.failure()


def test_sessions_expire_when_idle() -> None:
    """A session unused for longer than the idle time is gone; use keeps it alive."""
    clock = FakeClock()
    sessions = AdminSessions(idle_s=900, clock=clock)
    token, _ = sessions.create()
    clock.now += 800
    assert sessions.get(token) is not None
    clock.now += 800
    assert sessions.get(token) is not None
    clock.now += 901
    assert sessions.get(token) is None
    assert sessions.get("forged") is None
    assert sessions.get(None) is None


def test_no_password_configured_disables_admin(make_app: AppFactory) -> None:
    """Without kiosk.admin_password, /admin is off (403) and no password opens it."""
    app, _ = make_app(password="")
    client = app.test_client()
    resp = client.get("/admin/")
    assert resp.status_code == 403
    assert "kiosk.admin_password" in resp.get_data(as_text=True)
    assert client.post("/admin/login", data={"password": ""}).status_code == 403


def test_signed_out_gets_the_form_and_no_data(client: FlaskClient) -> None:
    """Signed out: the sign-in form (401); actions and the bundle are refused."""
    resp = client.get("/admin/")
    assert resp.status_code == 401
    html = resp.get_data(as_text=True)
    assert 'type="password"' in html
    assert "Checks" not in html
    assert client.get("/admin/bundle").status_code == 401
    assert client.post("/admin/locate").status_code == 401
    assert client.post("/admin/restart", data={"component": "kiosk"}).status_code == 401


def test_wrong_password(client: FlaskClient) -> None:
    """A wrong password: 401, a message, no cookie."""
    resp = client.post("/admin/login", data={"password": "guess"})
    assert resp.status_code == 401
    assert "Wrong password" in resp.get_data(as_text=True)
    assert "kiosk_admin" not in resp.headers.get("Set-Cookie", "")
    assert client.get("/admin/").status_code == 401


def test_lockout_after_repeated_failures(make_app: AppFactory) -> None:
    """After 5 wrong passwords even the right one is refused (429) until the lock ends."""
    app, _ = make_app()
    clock = FakeClock()
    app.extensions["admin_lockout"] = Lockout(clock=clock)
    client = app.test_client()
    codes = [sign_in(client, "wrong") for _ in range(5)]
    assert codes == [401, 401, 401, 401, 429]
    resp = client.post("/admin/login", data={"password": PASSWORD})
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) > 0
    assert client.get("/admin/").status_code == 401
    clock.now += 301
    assert sign_in(client) == 303
    assert client.get("/admin/").status_code == 200


def test_right_password_opens_the_page(client: FlaskClient) -> None:
    """The right password: a /admin-scoped HttpOnly cookie and the status page."""
    resp = client.post("/admin/login", data={"password": PASSWORD})
    assert resp.status_code == 303
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("kiosk_admin=")
    assert "Path=/admin" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    page = client.get("/admin/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-check="config"' in html
    assert 'data-check="disk"' in html
    assert "The MQTT relay is disabled" in html
    assert page.headers["Cache-Control"] == "no-store"


def test_plaintext_password_works(make_app: AppFactory) -> None:
    """A plain-text admin_password (e.g. the demo's) is accepted too."""
    app, _ = make_app(password="demo-admin")
    client = app.test_client()
    assert sign_in(client, "demo-admin") == 303
    assert client.get("/admin/").status_code == 200


def test_shopper_session_cannot_reach_admin(client: FlaskClient) -> None:
    """Whatever the shopper's Flask session holds, /admin stays closed; shopper pages never
    link to it, and the admin cookie is not sent to shopper pages."""
    home = client.get("/")
    assert "/admin" not in home.get_data(as_text=True)
    with client.session_transaction() as session:
        session["admin"] = True
        session["kiosk_admin"] = "x"
        session["csrf_token"] = "forged"
    assert client.get("/admin/").status_code == 401
    assert client.post("/admin/locate", data={"csrf_token": "forged"}).status_code == 401
    client.set_cookie("kiosk_admin", "guessed-token", path="/admin")
    assert client.get("/admin/").status_code == 401
    # Signed in, the cookie stays under /admin: the shopper pages never receive it.
    other = client.application.test_client()
    other.post("/admin/login", data={"password": PASSWORD})
    assert other.get_cookie("kiosk_admin", path="/admin") is not None
    assert other.get_cookie("kiosk_admin", path="/") is None


def test_actions_need_the_csrf_token(client: FlaskClient, make_app: AppFactory) -> None:
    """Signed in, a POST without the page's token is refused."""
    sign_in(client)
    assert client.post("/admin/locate").status_code == 400
    assert client.post("/admin/locate", data={"csrf_token": "nope"}).status_code == 400


def test_locate_publishes_identify(make_app: AppFactory) -> None:
    """Locate puts local.kiosk.identify on the bus (the screen flashes)."""
    app, services = make_app()
    client = app.test_client()
    sign_in(client)
    sub = services.bus.subscribe_thread("local.kiosk.identify")
    resp = client.post("/admin/locate", data={"csrf_token": csrf_of(client)})
    assert resp.status_code == 303
    event = sub.get(timeout=2)
    assert event is not None
    assert event.type == "local.kiosk.identify"
    assert event.data["seconds"] > 0
    follow = client.get(resp.headers["Location"])
    assert "flashes" in follow.get_data(as_text=True)


def test_test_print_without_printer_says_so(client: FlaskClient) -> None:
    """No printer configured: the page says so instead of failing."""
    sign_in(client)
    resp = client.post("/admin/test-print", data={"csrf_token": csrf_of(client)})
    assert "No printer" in client.get(resp.headers["Location"]).get_data(as_text=True)


def test_support_bundle_has_no_secrets(make_app: AppFactory) -> None:
    """The bundle: redacted config, health, doctor, versions, recent logs; no secret, no PII."""
    from edge.logs import RING

    app, services = make_app()
    RING.clear()
    logger = logging.getLogger("edge.test.bundle")
    logger.addHandler(RING)
    logger.setLevel(logging.INFO)
    try:
        logger.info("scan from card %s by %s", "2900001234566", "aa:bb:cc:dd:ee:ff")
    finally:
        logger.removeHandler(RING)
    client = app.test_client()
    sign_in(client)
    resp = client.get("/admin/bundle")
    assert resp.status_code == 200
    assert resp.mimetype == "application/zip"
    assert "attachment" in resp.headers["Content-Disposition"]
    raw = resp.get_data()
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        names = set(zf.namelist())
        assert {"config.json", "health.json", "doctor.json", "versions.json", "logs.jsonl"} <= names
        config = json.loads(zf.read("config.json"))
        logs = zf.read("logs.jsonl").decode()
        versions = json.loads(zf.read("versions.json"))
        doctor = json.loads(zf.read("doctor.json"))
        everything = b"".join(zf.read(n) for n in names)
    assert config["kiosk"]["admin_password"] == "<redacted>"
    assert config["device"]["identity_salt"] == "<redacted>"
    assert b"test-salt-secret" not in everything
    assert PASSWORD.encode() not in everything
    assert b"2900001234566" not in everything
    assert "scan from card <card> by <mac>" in logs
    assert versions["kiosk_edge"]
    assert {c["name"] for c in doctor} >= {"config", "disk", "clock"}
    assert services.config.kiosk.admin_password.encode() not in everything


def test_sign_out(client: FlaskClient) -> None:
    """Signing out ends the server-side session: the old cookie no longer works."""
    sign_in(client)
    token = client.get_cookie("kiosk_admin", path="/admin")
    assert token is not None
    client.post("/admin/logout", data={"csrf_token": csrf_of(client)})
    client.set_cookie("kiosk_admin", token.value, path="/admin")
    assert client.get("/admin/").status_code == 401
