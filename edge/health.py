"""The health state of every component, shared by the daemon, /api/healthz and MQTT.

Components report ``ok``, ``degraded`` (working with a handicap, e.g. active scanning
instead of passive) or ``failed`` (with the reason); the supervisor reports ``starting``
and ``failed`` around restarts. Thread-safe: Flask threads read it while the loop writes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

State = Literal["starting", "ok", "degraded", "failed", "disabled"]


@dataclass
class ComponentHealth:
    """One component's state, reason and free-form metrics (rates, counts)."""

    name: str
    state: State = "starting"
    reason: str = ""
    since: float = field(default_factory=time.time)
    restarts: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view."""
        out: dict[str, Any] = {"state": self.state, "since": round(self.since, 3)}
        if self.reason:
            out["reason"] = self.reason
        if self.restarts:
            out["restarts"] = self.restarts
        if self.metrics:
            out["metrics"] = dict(self.metrics)
        return out


class Health:
    """Registry of component states."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._components: dict[str, ComponentHealth] = {}
        self.started = time.time()

    def register(self, name: str, state: State = "starting") -> None:
        """Add a component (idempotent)."""
        with self._lock:
            self._components.setdefault(name, ComponentHealth(name, state))

    def set(self, name: str, state: State, reason: str = "") -> None:
        """Record a component's state; the time changes only when the state does."""
        with self._lock:
            comp = self._components.setdefault(name, ComponentHealth(name))
            if comp.state != state:
                comp.since = time.time()
            comp.state = state
            comp.reason = reason

    def restarted(self, name: str) -> None:
        """Count a restart by the supervisor."""
        with self._lock:
            self._components.setdefault(name, ComponentHealth(name)).restarts += 1

    def metric(self, name: str, key: str, value: Any) -> None:
        """Record a metric (a rate, a queue depth) for a component."""
        with self._lock:
            self._components.setdefault(name, ComponentHealth(name)).metrics[key] = value

    def get(self, name: str) -> ComponentHealth | None:
        """A copy of one component's health."""
        with self._lock:
            comp = self._components.get(name)
            if comp is None:
                return None
            return ComponentHealth(
                comp.name, comp.state, comp.reason, comp.since, comp.restarts, dict(comp.metrics)
            )

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every component's state as JSON-able data."""
        with self._lock:
            return {name: comp.as_dict() for name, comp in sorted(self._components.items())}

    def all_ok(self) -> bool:
        """True when every enabled component is ok."""
        with self._lock:
            return all(c.state in ("ok", "disabled") for c in self._components.values())


def state_changes(
    settled: dict[str, str], snapshot: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Components whose settled state changed since ``settled`` (updated in place).

    "starting" is not a settled state: a component that fails, restarts and fails again
    is one change (ok -> failed), not a stream of them, so central is not flooded.
    The first state seen for a component counts as a change from "" (so central learns of a
    component that is failed from the start).
    """
    changes: list[dict[str, Any]] = []
    for name, comp in snapshot.items():
        state = comp["state"]
        if state == "starting":
            continue
        before = settled.get(name, "")
        if state != before:
            settled[name] = state
            change: dict[str, Any] = {"component": name, "state": state, "previous": before}
            if comp.get("reason"):
                change["reason"] = comp["reason"]
            changes.append(change)
    return changes
