"""Live configuration reload: re-read the daemon's file and rebuild only what changed.

Store IT triggers it three ways (MQTT ``reload-config``, the /admin button, SIGHUP); all
three end in :func:`async_reload`. A broken file changes nothing and every problem is
reported. Keys that cannot change while running (the device's identity and data directory,
the kiosk's address that the browser points at) keep their running value and are reported
as "needs a restart"; every other change applies at once: ``services.config`` is replaced
and each component whose sections changed is stopped and built again from its factory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edge.config import Config, ConfigError, config_path_from, load_config
from edge.services import Services

_LOGGER = logging.getLogger(__name__)

# Keys that only take effect on a restart: the identity and data directory are baked into
# topics, the salt, databases and file paths; the kiosk browser points at host:port and
# waitress sizes its thread pool when it binds; the log format is chosen once by
# setup_logging. The running value is kept and the reply says "needs a restart".
RESTART_ONLY: Final = (
    "device.store_id",
    "device.device_id",
    "device.data_dir",
    "device.identity_salt",
    "kiosk.enabled",
    "kiosk.host",
    "kiosk.port",
    "kiosk.threads",
    "logging.format",
)

# Which configuration sections each component's factory (edge.daemon.COMPONENT_FACTORIES)
# reads: a change in any of them rebuilds the component. Keep in step with the factories;
# tests/unit/test_reload.py fails when a factory is missing here.
COMPONENT_SECTIONS: Final[dict[str, tuple[str, ...]]] = {
    # SessionManager(idle_timeout_s); open_catalog(kiosk.catalog_file, device.data_dir).
    "session": ("kiosk", "device"),
    # PrintQueue(printer, device.data_dir) and a test page from device, kiosk and printer.
    "printer": ("printer", "device", "kiosk"),
    # MailQueue(mail, device.data_dir, kiosk.compare_url_template, printer.store_name).
    "mail": ("mail", "device", "kiosk", "printer"),
    # The web server is never replaced: the kiosk must keep serving. Its pages read
    # services.config on every request; host, port and threads are RESTART_ONLY.
    "kiosk": (),
    # MqttRelay(mqtt), Outbox.for_config(outbox, device.data_dir), topics from device ids.
    "relay": ("mqtt", "outbox", "device"),
    # MediaFetcher: kiosk.enabled and media_dir(device.data_dir).
    "media": ("kiosk", "device"),
    "beacons": ("beacons",),
    "camera": ("barcodes",),
    "hid": ("barcodes",),
    # system_checks(config) reads device (data_dir) and beacons (adapter).
    "doctor": ("device", "beacons"),
}
# What a replaced component opened is released before its successor is built (one writer
# per outbox or queue), except for these: other threads (kiosk requests, catalog batches)
# read the session's catalog through services.catalog, so the old store is closed only this
# long after the new one is in place, letting work in flight on it finish.
CLOSE_LATER_S: Final[dict[str, float]] = {"session": 5.0}
# Bounded stop of a replaced component, as at shutdown.
REPLACE_TIMEOUT_S: Final = 4.0
# How long a remote or admin caller waits for a reload to finish on the loop.
RELOAD_WAIT_S: Final = 30.0


class ReloadError(Exception):
    """The new configuration is unusable; the message names every problem."""


@dataclass(frozen=True)
class ReloadPlan:
    """What a reload does: the configuration to apply and the components to rebuild."""

    config: Config
    changed_sections: list[str]
    needs_restart: list[str]
    components: list[str]


def _get(data: dict[str, Any], dotted: str) -> Any:
    section, key = dotted.split(".", 1)
    return data.get(section, {}).get(key)


def plan_reload(old: Config, new: Config, order: Sequence[str]) -> ReloadPlan:
    """Compare two configurations: keep restart-only keys, list changed sections and the
    components (in ``order``) that must be rebuilt."""
    old_data = old.model_dump(mode="json")
    new_data = new.model_dump(mode="json")
    needs_restart = [k for k in RESTART_ONLY if _get(old_data, k) != _get(new_data, k)]
    applied = new.model_copy(deep=True)
    for dotted in needs_restart:
        section, key = dotted.split(".", 1)
        setattr(getattr(applied, section), key, getattr(getattr(old, section), key))
    applied_data = applied.model_dump(mode="json")
    changed = sorted(k for k in applied_data if applied_data[k] != old_data.get(k))
    components = [
        name
        for name in order
        if any(section in changed for section in COMPONENT_SECTIONS.get(name, ()))
    ]
    return ReloadPlan(applied, changed, needs_restart, components)


def config_path_of(services: Services) -> Path:
    """The file the daemon was started with."""
    return Path(services.extras.get("config_path") or config_path_from(None))


def _factories() -> dict[str, Any]:
    from edge.daemon import COMPONENT_FACTORIES

    return dict(COMPONENT_FACTORIES)


def _run_hooks(hooks: Iterable[Callable[[], None]], name: str) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:
            _LOGGER.exception("closing the old %s failed", name)


# What each factory sets on the services: cleared when a reload disables the component, so
# the kiosk no longer offers a printer or mail that is gone.
COMPONENT_SETS: Final[dict[str, tuple[str, ...]]] = {
    "session": ("session",),
    "printer": ("printer",),
    "mail": ("mail",),
    "relay": ("outbox", "relay"),
}


def _release(
    hooks: list[Callable[[], None]], all_hooks: list[Callable[[], None]], name: str
) -> None:
    """Run a replaced component's hooks once (unless shutdown already ran them)."""
    pending = [hook for hook in hooks if hook in all_hooks]
    for hook in pending:
        all_hooks.remove(hook)
    _run_hooks(pending, name)


async def async_replace(services: Services, name: str) -> None:
    """Stop one component, release what its factory opened, build it again and start it."""
    from edge.daemon import build_component

    factory = _factories()[name]
    all_hooks: list[Callable[[], None]] = services.extras.setdefault("on_shutdown", [])
    per_component: dict[str, list[Callable[[], None]]] = services.extras.setdefault(
        "component_hooks", {}
    )

    loop = asyncio.get_running_loop()
    delay = CLOSE_LATER_S.get(name)

    def build() -> Any:
        old_hooks = per_component.pop(name, [])
        if delay is None:
            _release(old_hooks, all_hooks, name)
        component = build_component(services, name, factory)
        if component is None:
            for attribute in COMPONENT_SETS.get(name, ()):
                setattr(services, attribute, None)
        if delay is not None:
            # Stays in on_shutdown until then: a shutdown before the delay still closes it.
            loop.call_later(delay, _release, old_hooks, all_hooks, name)
        return component

    await services.supervisor.replace(name, build, REPLACE_TIMEOUT_S)


async def async_reload(services: Services, *, defer: Sequence[str] = ()) -> dict[str, Any]:
    """Re-read the configuration file and apply it; raise ReloadError naming every problem.

    Components named in ``defer`` are listed as applied but not replaced here: the caller
    replaces them later with :func:`async_replace` (the relay, after it sent its reply).
    """
    lock: asyncio.Lock = services.extras.setdefault("reload_lock", asyncio.Lock())
    async with lock:
        path = config_path_of(services)
        try:
            fresh = load_config(path)
        except ConfigError as exc:
            problems = [str(p) for p in exc.problems]
            _LOGGER.warning("configuration not reloaded: %s", "; ".join(problems))
            raise ReloadError(f"{path} has problems: {'; '.join(problems)}") from None
        plan = plan_reload(services.config, fresh, list(_factories()))
        services.config = plan.config
        if "logging" in plan.changed_sections:
            logging.getLogger().setLevel(plan.config.logging.level)
        for name in plan.components:
            if name not in defer:
                await async_replace(services, name)
        _LOGGER.info(
            "configuration reloaded: changed %s, rebuilt %s, needs a restart for %s",
            ", ".join(plan.changed_sections) or "nothing",
            ", ".join(plan.components) or "nothing",
            ", ".join(plan.needs_restart) or "nothing",
        )
        return {
            "path": str(path),
            "valid": True,
            "applied_sections": plan.changed_sections,
            "rebuilt_components": plan.components,
            "needs_restart": plan.needs_restart,
            "restart_needed": bool(plan.needs_restart),
            "config_hash": plan.config.fingerprint(),
        }


def reload_from_thread(services: Services, *, defer: Sequence[str] = ()) -> dict[str, Any]:
    """Run :func:`async_reload` on the daemon's loop from another thread (admin, commands)."""
    loop = services.loop
    if loop is None:
        raise ReloadError("the daemon is not running")
    future = asyncio.run_coroutine_threadsafe(async_reload(services, defer=defer), loop)
    return future.result(RELOAD_WAIT_S)


def replace_later(services: Services, name: str) -> None:
    """Schedule a component's replacement on the loop without waiting (from any thread)."""
    loop = services.loop
    if loop is not None:
        asyncio.run_coroutine_threadsafe(async_replace(services, name), loop)
