"""/admin: store IT's status page behind the password, separate from the shopper screens.

Shows the doctor's checks, component health (with a restart button each), the outbox depth
and recent events, the printer queue, and offers a test print, "locate" (the kiosk flashes
its screen), a live configuration reload and a support bundle (configuration with secrets
removed, recent logs, versions).
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import platform
import sys
import time
import zipfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from edge import __version__
from edge.config import redacted
from edge.doctor import CheckResult, worst
from edge.doctor_probes import run_checks
from edge.events import new_event
from edge.logs import recent_logs
from kiosk_ui import services_of
from kiosk_ui.admin_auth import (
    COOKIE_NAME,
    COOKIE_PATH,
    AdminSession,
    AdminSessions,
    Lockout,
    verify_password,
)

_LOGGER = logging.getLogger(__name__)

bp = Blueprint("admin", __name__)

# Doctor results are reused for this long: the network checks take seconds.
DOCTOR_CACHE_S: Final = 60.0
# Recent events listed on the page.
RECENT_EVENTS: Final = 25
# The screen flashes this long when store IT looks for the kiosk.
LOCATE_SECONDS: Final = 10
# Packages whose versions go into the support bundle.
BUNDLE_PACKAGES: Final = (
    "kiosk-edge", "bleak", "paho-mqtt", "flask", "waitress", "pydantic",
    "opencv-python-headless", "pyzbar", "python-escpos", "dbus-fast",
)  # fmt: skip


def _state() -> tuple[AdminSessions, Lockout]:
    ext = current_app.extensions
    sessions: AdminSessions = ext.setdefault("admin_sessions", AdminSessions())
    lockout: Lockout = ext.setdefault("admin_lockout", Lockout())
    return sessions, lockout


def _configured_password() -> str:
    return services_of(current_app).config.kiosk.admin_password


def _current() -> AdminSession | None:
    sessions, _ = _state()
    return sessions.get(request.cookies.get(COOKIE_NAME))


def _no_store(resp: WerkzeugResponse) -> WerkzeugResponse:
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _require() -> AdminSession:
    """The signed-in admin session; for POSTs also a matching CSRF token. Else 401/400."""
    session = _current()
    if session is None:
        abort(_no_store(make_response(_login_page("", 401))))
    if request.method == "POST":
        given = request.form.get("csrf_token", "")
        if not hmac.compare_digest(given.encode(), session.csrf.encode()):
            abort(400, description="csrf")
    return session


def _login_page(error: str, status: int, retry_after: float = 0) -> tuple[str, int]:
    return (
        render_template("admin/login.html", error=error, retry_after=int(retry_after + 0.999)),
        status,
    )


def _locked_out(lockout: Lockout) -> WerkzeugResponse:
    """429 with the sign-in form and Retry-After while the lockout lasts."""
    wait = lockout.locked_for()
    resp = make_response(*_login_page("Too many wrong passwords.", 429, wait))
    resp.headers["Retry-After"] = str(int(wait + 0.999))
    return _no_store(resp)


@bp.before_request
def _disabled_without_password() -> Any:
    if not _configured_password():
        return _no_store(make_response(render_template("admin/disabled.html"), 403))
    return None


@bp.get("/")
def index() -> Any:
    """The status page (or the sign-in form)."""
    session = _current()
    if session is None:
        return _no_store(make_response(*_login_page("", 401)))
    return _no_store(make_response(render_template("admin/index.html", **_page(session))))


@bp.post("/login")
def login() -> Any:
    """Check the password; lock after repeated failures."""
    sessions, lockout = _state()
    if lockout.locked_for() > 0:
        return _locked_out(lockout)
    if not verify_password(_configured_password(), request.form.get("password", "")):
        locked = lockout.failure()
        _LOGGER.warning("admin sign-in failed%s", " (locked)" if locked else "")
        if locked:
            return _locked_out(lockout)
        return _no_store(make_response(*_login_page("Wrong password.", 401)))
    lockout.success()
    token, _session = sessions.create()
    _LOGGER.info("admin signed in")
    signed_in = redirect(url_for("admin.index"), code=303)
    signed_in.set_cookie(
        COOKIE_NAME, token, path=COOKIE_PATH, httponly=True, samesite="Strict", secure=False
    )
    return _no_store(signed_in)


@bp.post("/logout")
def logout() -> Any:
    """End the admin session."""
    _require()
    sessions, _ = _state()
    sessions.drop(request.cookies.get(COOKIE_NAME))
    resp = redirect(url_for("admin.index"), code=303)
    resp.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)
    return _no_store(resp)


def _doctor(force: bool = False) -> tuple[list[CheckResult], float]:
    cache: dict[str, Any] = current_app.extensions.setdefault("admin_doctor", {})
    now = time.time()
    if force or not cache or now - cache["at"] > DOCTOR_CACHE_S:
        services = services_of(current_app)
        path = str(services.extras.get("config_path", "edge.toml"))
        cache["results"] = run_checks(
            services.config, services.config_problems, path, services.health.snapshot()
        )
        cache["at"] = now
    return cache["results"], cache["at"]


def _page(session: AdminSession) -> dict[str, Any]:
    services = services_of(current_app)
    results, checked_at = _doctor()
    supervisor = services.supervisor
    restartable = set(supervisor.names) if supervisor is not None else set()
    outbox: dict[str, Any] | None = None
    events: list[dict[str, Any]] = []
    if services.outbox is not None:
        outbox = services.outbox.stats().as_dict()
        events = [
            {**e, "recorded_text": _when(e.get("recorded"))}
            for e in services.outbox.recent(RECENT_EVENTS)
        ]
    printer: dict[str, Any] | None = None
    if services.printer is not None:
        queue = services.printer
        printer = {
            "url": services.config.printer.url,
            "depth": queue.depth(),
            "problem": getattr(queue, "problem", None),
            "printed": getattr(queue, "printed", None),
        }
    return {
        "csrf": session.csrf,
        "checks": results,
        "overall": worst(results),
        "checked_at": _when(checked_at),
        "components": services.health.snapshot(),
        "restartable": restartable,
        "outbox": outbox,
        "events": events,
        "printer": printer,
        "message": request.args.get("done", ""),
        "store": services.config.device.store_id,
        "device": services.config.device.device_id,
        "version": __version__,
    }


def _when(stamp: Any) -> str:
    if not isinstance(stamp, int | float):
        return ""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _done(message: str) -> WerkzeugResponse:
    return _no_store(redirect(url_for("admin.index", done=message), code=303))


@bp.post("/doctor")
def doctor() -> Any:
    """Run every check again now."""
    _require()
    _doctor(force=True)
    return _done("Checks run again.")


@bp.post("/locate")
def locate() -> Any:
    """Flash the kiosk's screen so store IT finds it among many."""
    _require()
    services_of(current_app).publish(
        new_event("local.kiosk.identify", {"seconds": LOCATE_SECONDS, "source": "admin"})
    )
    return _done("The kiosk screen flashes now.")  # kiosk.js flashes for a few seconds


@bp.post("/test-print")
def test_print() -> Any:
    """Queue the printer's test page."""
    _require()
    printer = services_of(current_app).printer
    if printer is None:
        return _done("No printer is configured.")
    try:
        job = printer.submit_test_page()
    except Exception as exc:  # a printer fault must show, not crash the page
        _LOGGER.warning("test print failed: %s", exc)
        return _done(f"Test print failed: {exc}")
    return _done(f"Test page queued ({job}).")


@bp.post("/restart")
def restart() -> Any:
    """Restart one supervised component."""
    _require()
    services = services_of(current_app)
    name = request.form.get("component", "")
    supervisor = services.supervisor
    if supervisor is None or name not in supervisor.names:
        return _done(f"No component called {name!r}.")
    if services.loop is not None:  # the supervisor lives on the event loop
        services.loop.call_soon_threadsafe(supervisor.restart, name)
    else:
        supervisor.restart(name)
    _LOGGER.info("admin restarted component %s", name)
    return _done(f"Restarting {name}.")


@bp.post("/reload-config")
def reload_config() -> Any:
    """Re-read the configuration file and apply it live (as `systemctl reload` does)."""
    from edge.reload import ReloadError, reload_from_thread

    _require()
    services = services_of(current_app)
    try:
        result = reload_from_thread(services)
    except ReloadError as exc:
        return _done(f"Configuration not reloaded, nothing changed: {exc}")
    except Exception as exc:  # a timeout or a failed rebuild must show, not crash the page
        _LOGGER.exception("admin reload failed")
        return _done(f"Configuration reload failed: {type(exc).__name__}: {exc}")
    _LOGGER.info("admin reloaded the configuration")
    applied = ", ".join(result["applied_sections"]) or "nothing changed"
    message = f"Configuration reloaded: {applied}."
    if result["needs_restart"]:
        message += f" Needs a restart: {', '.join(result['needs_restart'])}."
    return _done(message)


def _versions() -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in BUNDLE_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    os_release = ""
    try:
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                os_release = line.partition("=")[2].strip('"')
    except OSError:
        pass
    return {
        "kiosk_edge": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "os": os_release,
        "packages": packages,
    }


def support_bundle() -> bytes:
    """A zip for support: redacted config, health, doctor, outbox, recent logs, versions."""
    services = services_of(current_app)
    results, _ = _doctor()
    parts: dict[str, Any] = {
        "config.json": redacted(services.config),
        "config_problems.json": services.config_problems,
        "health.json": services.health.snapshot(),
        "doctor.json": [r.as_dict() for r in results],
        "versions.json": _versions(),
    }
    if services.outbox is not None:
        parts["outbox.json"] = services.outbox.stats().as_dict()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, json.dumps(data, indent=2, ensure_ascii=False, default=str))
        zf.writestr(
            "logs.jsonl",
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recent_logs()),
        )
    return buf.getvalue()


@bp.get("/bundle")
def bundle() -> Any:
    """Download the support bundle."""
    _require()
    services = services_of(current_app)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    device = services.config.device
    name = f"kiosk-edge-{device.store_id}-{device.device_id}-{stamp}.zip"
    resp = Response(support_bundle(), mimetype="application/zip")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return _no_store(resp)
