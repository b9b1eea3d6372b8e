"""Store IT's /admin sign-in: password check, lockout and a session of its own.

The password comes from ``kiosk.admin_password`` (a werkzeug pbkdf2/scrypt hash, as
`kiosk-edge provision` writes it, or plain text) and is compared in constant time. Repeated
failures lock the sign-in for a while: there is one kiosk and one screen, so the lock is
global rather than per address. The admin session is a random token in its own cookie,
scoped to /admin and kept server-side, so nothing in the shopper's session (which the shopper
screens clear and rewrite freely) can ever grant access.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from werkzeug.security import check_password_hash

# Five wrong passwords within 5 minutes lock the sign-in for 5 minutes: enough for typos,
# far too slow for guessing (at most 60 tries an hour).
MAX_FAILURES: Final = 5
FAILURE_WINDOW_S: Final = 300.0
LOCKOUT_S: Final = 300.0
# An admin session ends after 15 minutes without a request: store IT walks away from kiosks.
SESSION_IDLE_S: Final = 900.0
# The cookie holding the admin token; Path=/admin keeps it away from the shopper pages.
COOKIE_NAME: Final = "kiosk_admin"
COOKIE_PATH: Final = "/admin"
# werkzeug's hash formats ("method$salt$hash").
HASH_PREFIXES: Final = ("pbkdf2:", "scrypt:")


def is_hashed(configured: str) -> bool:
    """True when the configured value is a werkzeug password hash rather than plain text."""
    return configured.startswith(HASH_PREFIXES) and configured.count("$") == 2


def verify_password(configured: str, given: str) -> bool:
    """Check a password against the configured hash or plain text, in constant time."""
    if not configured or not given:
        return False
    if is_hashed(configured):
        try:
            return check_password_hash(configured, given)  # hmac.compare_digest inside
        except (ValueError, TypeError):
            return False
    # Digests first: compare_digest on equal-length values leaks nothing about the length.
    return hmac.compare_digest(
        hashlib.sha256(configured.encode()).digest(), hashlib.sha256(given.encode()).digest()
    )


class Lockout:
    """Counts failed sign-ins and locks after too many (thread-safe, injectable clock)."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = FAILURE_WINDOW_S,
        lockout_s: float = LOCKOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self._clock = clock
        self._failures: list[float] = []
        self._locked_until = 0.0
        self._lock = threading.Lock()

    def locked_for(self) -> float:
        """Seconds until sign-in is allowed again (0 when it is)."""
        with self._lock:
            return max(0.0, self._locked_until - self._clock())

    def failure(self) -> bool:
        """Record a failed attempt; True when it locked the sign-in."""
        with self._lock:
            now = self._clock()
            self._failures = [t for t in self._failures if now - t < self.window_s]
            self._failures.append(now)
            if len(self._failures) >= self.max_failures:
                self._locked_until = now + self.lockout_s
                self._failures.clear()
                return True
            return False

    def success(self) -> None:
        """A good password clears the failure count."""
        with self._lock:
            self._failures.clear()


@dataclass
class AdminSession:
    """One signed-in browser: its CSRF token and when it was last used."""

    csrf: str
    last_seen: float


class AdminSessions:
    """Server-side admin sessions keyed by a random token."""

    def __init__(
        self, idle_s: float = SESSION_IDLE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle_s = idle_s
        self._clock = clock
        self._sessions: dict[str, AdminSession] = {}
        self._lock = threading.Lock()

    def create(self) -> tuple[str, AdminSession]:
        """Start a session; returns its token (for the cookie) and the session."""
        token = secrets.token_urlsafe(32)
        session = AdminSession(secrets.token_urlsafe(24), self._clock())
        with self._lock:
            self._expire()
            self._sessions[token] = session
        return token, session

    def get(self, token: str | None) -> AdminSession | None:
        """The live session for a token (refreshing it), or None."""
        if not token:
            return None
        with self._lock:
            self._expire()
            session = self._sessions.get(token)
            if session is not None:
                session.last_seen = self._clock()
            return session

    def drop(self, token: str | None) -> None:
        """End a session (sign out)."""
        if token:
            with self._lock:
                self._sessions.pop(token, None)

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._sessions.items() if now - s.last_seen > self.idle_s]:
            del self._sessions[token]
