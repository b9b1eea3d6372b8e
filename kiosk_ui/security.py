"""CSRF tokens, the per-shopper browser state, rate limits and security headers.

The kiosk has one screen but its pages are still a web app: forms carry a per-session CSRF
token, JSON posts carry it in a header (or come from the same origin), review submission is
rate limited, and every response forbids framing, sniffing and third-party content. When the
shopper session ends (idle or "end session"), the browser's cookie state is dropped too.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import wraps
from typing import Any, Final, TypeVar, cast

from flask import Flask, Response, abort, current_app, g, request, session

_LOGGER = logging.getLogger(__name__)

CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
# Scripts only from our own static files; inline styles are allowed (other teams' partials
# use them) but carry no script. No third-party origin at all: the kiosk works offline.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)

F = TypeVar("F", bound=Callable[..., Any])


# Stands for the token in a page rendered once for many browsers (see render_shared); random
# per process so no catalog text can ever contain it.
CSRF_PLACEHOLDER: Final = "csrf-" + secrets.token_hex(16)


def csrf_token() -> str:
    """This browser session's CSRF token (created on first use)."""
    if g.get("kiosk_csrf_placeholder"):
        return CSRF_PLACEHOLDER
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(24)
        session[CSRF_FIELD] = token
    return token


def same_origin() -> bool:
    """True when the request's Origin header names this site (absent: False)."""
    origin = request.headers.get("Origin") or ""
    return bool(origin) and origin.rstrip("/") == request.host_url.rstrip("/")


def csrf_ok() -> bool:
    """True when the request carries this session's token (form field or header)."""
    expected = session.get(CSRF_FIELD)
    if not isinstance(expected, str) or not expected:
        return False
    given = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    return hmac.compare_digest(given.encode(), expected.encode())


def render_shared(render: Callable[[], str]) -> str:
    """Call ``render`` with the CSRF token left as a placeholder (for a cached page)."""
    g.kiosk_csrf_placeholder = True
    try:
        return render()
    finally:
        g.kiosk_csrf_placeholder = False


def personalise(html: str) -> str:
    """A shared page with this browser's CSRF token put in."""
    return html.replace(CSRF_PLACEHOLDER, csrf_token())


def require_csrf(view: F) -> F:
    """Decorator for state-changing views: 400 without a valid token.

    JSON requests may instead prove they come from the kiosk's own pages by their Origin.
    """

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        """Refuse the request without a valid token, else run the view."""
        if not (csrf_ok() or (request.is_json and same_origin())):
            _LOGGER.info("refused %s %s: missing or wrong CSRF token", request.method, request.path)
            abort(400, description="csrf")
        return view(*args, **kwargs)

    return cast(F, wrapped)


class RateLimiter:
    """At most ``limit`` events per sliding ``window_s`` seconds (thread-safe)."""

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Count one event if under the limit; False (and not counted) otherwise."""
        with self._lock:
            now = self._clock()
            while self._times and now - self._times[0] >= self.window_s:
                self._times.popleft()
            if len(self._times) >= self.limit:
                return False
            self._times.append(now)
            return True

    def retry_after(self) -> int:
        """Seconds until the next event would be allowed."""
        with self._lock:
            if len(self._times) < self.limit:
                return 0
            return max(1, int(self.window_s - (self._clock() - self._times[0])) + 1)


def safe_next(target: str) -> str | None:
    """``target`` if it is a path on this site, else None (no open redirects).

    Browsers read a backslash as a slash, so "/\\evil.example" would leave the site too.
    """
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 for c in target)
    ):
        return None
    return target


def sync_with_shopper_session(generation: int) -> None:
    """Drop this browser's state (language, text size, token) when a new shopper session began."""
    if session.get("gen") != generation:
        session.clear()
        session["gen"] = generation


def add_security_headers(response: Response) -> Response:
    """Headers every kiosk response carries."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/api/") or response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_security(app: Flask) -> None:
    """Cookie settings, the token in templates and the headers on every response."""
    app.config.update(
        SECRET_KEY=app.config.get("SECRET_KEY") or secrets.token_bytes(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.after_request(add_security_headers)


def client_limiter(name: str, limit: int, window_s: float) -> RateLimiter:
    """The app's shared limiter called ``name`` (created on first use)."""
    limiters: dict[str, RateLimiter] = current_app.extensions.setdefault("kiosk_limiters", {})
    limiter = limiters.get(name)
    if limiter is None:
        limiter = limiters.setdefault(name, RateLimiter(limit, window_s))
    return limiter
