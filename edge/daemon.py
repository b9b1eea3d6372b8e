"""Wiring, start-up and shutdown of `kiosk-edge run`.

Builds the shared services from the configuration, starts every enabled component under
the supervisor, tells systemd when it is ready and keeps its watchdog fed while the event
loop turns, and shuts everything down within a few seconds of SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Final

from edge import __version__
from edge.bus import Bus
from edge.config import Config, ConfigError, load_config
from edge.events import new_event
from edge.health import Health, state_changes
from edge.logs import setup_logging
from edge.privacy import load_or_create_salt
from edge.sdnotify import Notifier, watchdog_interval_s
from edge.services import Services
from edge.supervisor import Component, Supervisor

_LOGGER = logging.getLogger(__name__)

# systemd gives a service 90 s by default, the issue 5 s: stop components within 4 s so the
# process still has time to close databases and exit 0.
SHUTDOWN_TIMEOUT_S: Final = 4.0
# READY=1 is sent once the kiosk UI serves, or after this long if it never comes up (a
# broken UI must not make systemd kill the whole appliance in a restart loop).
READY_TIMEOUT_S: Final = 10.0

# How often component states are compared for kiosk.component.state events: quick enough for
# central's alarms, cheap (a dictionary walk).
STATE_POLL_S: Final = 1.0
# After the kiosk serves, READY waits at most this long for other components to settle.
SETTLE_S: Final = 3.0

ComponentFactory = Callable[[Services], Component | None]


def _session_component(services: Services) -> Component | None:
    from edge.session import session_component

    return session_component(services)


def _relay_component(services: Services) -> Component | None:
    from edge.relay.component import relay_component

    return relay_component(services)


def _doctor_component(services: Services) -> Component | None:
    from edge.doctor_probes import doctor_component

    return doctor_component(services)


def _beacons_component(services: Services) -> Component | None:
    from edge.beacons.component import create_component

    return create_component(services)


def _printer_component(services: Services) -> Component | None:
    from edge.takeaway.printer import build_print_queue

    return build_print_queue(services)


def _mail_component(services: Services) -> Component | None:
    from edge.takeaway.mail import build_mail_queue

    return build_mail_queue(services)


def _camera_component(services: Services) -> Component | None:
    from edge.barcodes.service import camera_component

    return camera_component(services)


def _hid_component(services: Services) -> Component | None:
    from edge.barcodes.service import hid_component

    return hid_component(services)


def _media_component(services: Services) -> Component | None:
    from edge.catalog.media import media_component

    return media_component(services)


def _kiosk_component(services: Services) -> Component | None:
    if not services.config.kiosk.enabled:
        return None
    from kiosk_ui.server import WebServer

    return WebServer(services)


# Each enabled feature contributes one factory; a factory returns None when its part of the
# configuration is disabled. Order matters only for start-up logs.
COMPONENT_FACTORIES: list[tuple[str, ComponentFactory]] = [
    ("session", _session_component),  # first: opens services.catalog for the others
    ("printer", _printer_component),  # sets services.printer before the kiosk serves
    ("mail", _mail_component),  # sets services.mail
    ("kiosk", _kiosk_component),
    ("media", _media_component),  # remote product images kept for offline (kiosk.enabled)
    ("relay", _relay_component),  # also sets services.outbox and services.relay
    ("beacons", _beacons_component),
    ("camera", _camera_component),  # barcodes.enabled
    ("hid", _hid_component),  # barcodes.hid_enabled
    ("doctor", _doctor_component),  # clock, disk, temperature, throttling into health
]


def build_services(config: Config, problems: list[str] | None = None) -> Services:
    """Create the shared services (bus, health, salt) for a configuration."""
    data_dir = config.device.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    salt = load_or_create_salt(config.device.identity_salt, data_dir)
    return Services(
        config=config, bus=Bus(), health=Health(), salt=salt, config_problems=problems or []
    )


def fallback_config(problems: list[str], path: Path | None = None) -> Config:
    """A configuration that only serves the "needs attention" screen.

    The kiosk's own host and port are kept from the broken file when they are valid on their
    own, so the attention screen appears where the kiosk browser looks for it.
    """
    config = Config()
    if path is not None:
        with contextlib.suppress(OSError, ValueError, tomllib.TOMLDecodeError):
            kiosk = tomllib.loads(path.read_text(encoding="utf-8")).get("kiosk", {})
            if not isinstance(kiosk, dict):  # `kiosk = 5`: nothing usable to keep
                kiosk = {}
            with contextlib.suppress(ValueError):
                config.kiosk.port = kiosk.get("port", config.kiosk.port)
            with contextlib.suppress(ValueError):
                config.kiosk.host = kiosk.get("host", config.kiosk.host)
    config.device.data_dir = Path(tempfile.gettempdir()) / "kiosk-edge-fallback"
    for section in (config.beacons, config.barcodes, config.mqtt, config.printer, config.mail):
        section.enabled = False
    _LOGGER.error("configuration unusable, serving the attention screen: %s", "; ".join(problems))
    return config


class _RetryFactory:
    """A component whose factory raised (database locked, device busy): reported failed with
    the reason and built again on each supervised restart, so it never takes the others down."""

    def __init__(
        self, name: str, factory: ComponentFactory, services: Services, error: Exception
    ) -> None:
        self.name = name
        self._factory = factory
        self._services = services
        self._error: Exception | None = error

    async def run(self) -> None:
        """Report the start-up failure once, then build the component and run it."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        component = self._factory(self._services)
        if component is None:
            self._services.health.set(self.name, "disabled")
            await asyncio.Event().wait()  # until cancelled
            return
        await component.run()


def build_component(services: Services, name: str, factory: ComponentFactory) -> Component | None:
    """Run one factory, remembering the shutdown hooks it adds (a live reload runs them when
    it replaces the component) and wrapping a factory that raised in a retrying stand-in."""
    hooks: list[Callable[[], None]] = services.extras.setdefault("on_shutdown", [])
    before = len(hooks)
    try:
        component = factory(services)
    except Exception as exc:
        _LOGGER.exception("component %s could not be created; retrying with backoff", name)
        component = _RetryFactory(name, factory, services, exc)
    services.extras.setdefault("component_hooks", {})[name] = hooks[before:]
    return component


def build_components(services: Services) -> list[Component]:
    """Instantiate the enabled components; disabled ones are reported as such in health."""
    components: list[Component] = []
    for name, factory in COMPONENT_FACTORIES:
        component = build_component(services, name, factory)
        if component is None:
            services.health.register(name, "disabled")
        else:
            components.append(component)
    return components


async def _wait_ready(services: Services, timeout: float, stop: asyncio.Event) -> None:
    """Wait for the kiosk UI to serve, then briefly for the others to leave "starting".

    Returns at once when ``stop`` is set: a SIGTERM during start-up must still end the
    process within seconds, even while the kiosk cannot bind its port.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and not stop.is_set():
        kiosk = services.health.get("kiosk")
        if kiosk is None or kiosk.state in ("ok", "disabled"):
            break
        await asyncio.sleep(0.05)
    # A component still opening its device must not hold READY back for long: systemd and
    # the browser unit wait on it. Healthz tells the rest.
    settle = min(deadline, loop.time() + SETTLE_S)
    while loop.time() < settle and not stop.is_set():
        if all(c["state"] != "starting" for c in services.health.snapshot().values()):
            return
        await asyncio.sleep(0.05)


def _status_line(services: Services) -> str:
    snap = services.health.snapshot()
    bad = [f"{n} {c['state']}" for n, c in snap.items() if c["state"] not in ("ok", "disabled")]
    return "all components ok" if not bad else ", ".join(bad)


async def _feed_watchdog(notifier: Notifier, services: Services) -> None:
    interval = watchdog_interval_s()
    last_status = ""
    while True:
        # Running at all proves the loop turns; a blocked loop stops the pings and systemd
        # restarts us, which is exactly the point.
        notifier.watchdog()
        status = _status_line(services)
        if status != last_status:
            notifier.status(status)
            last_status = status
        await asyncio.sleep(interval)


async def _report_state_changes(services: Services) -> None:
    """Publish kiosk.component.state when a component's settled state changes."""
    settled: dict[str, str] = {}
    while True:
        for change in state_changes(settled, services.health.snapshot()):
            if change["state"] == "disabled" and not change["previous"]:
                continue  # a component the config turns off is not news
            services.bus.publish(new_event("kiosk.component.state", change))
        await asyncio.sleep(STATE_POLL_S)


class Daemon:
    """One running appliance: start it, let it serve, stop it (from a signal or a test)."""

    def __init__(
        self,
        config_path: Path,
        *,
        handle_signals: bool = True,
        on_services: Callable[[Services], None] | None = None,
    ) -> None:
        self.config_path = config_path
        self.handle_signals = handle_signals
        # Called on the loop once the services exist, before any component starts (tests
        # subscribe to the bus here so they miss nothing).
        self.on_services = on_services
        self.services: Services | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._notifier = Notifier()
        self._watchdog: asyncio.Task[None] | None = None
        self._state_reporter: asyncio.Task[None] | None = None
        self._reloads: set[asyncio.Task[None]] = set()  # SIGHUP reloads under way

    async def async_start(self) -> Services:
        """Load the config, build services, start components; return once serving."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        try:
            config = load_config(self.config_path)
            problems: list[str] = []
        except ConfigError as exc:
            problems = [str(p) for p in exc.problems]
            config = fallback_config(problems, self.config_path)
        if self.handle_signals:
            setup_logging(config.logging.level, config.logging.format)

        try:
            services = build_services(config, problems)
        except (OSError, UnicodeDecodeError) as exc:
            # The data directory (or the salt in it) is unusable: say so on the attention
            # screen rather than dying in a systemd restart loop with a blank kiosk.
            problems = [
                f"device.data_dir: cannot use {config.device.data_dir} ({exc}); create it "
                "writable by the service user or point data_dir elsewhere",
                *problems,
            ]
            config = fallback_config(problems, self.config_path)
            services = build_services(config, problems)
        self.services = services
        services.extras["config_path"] = self.config_path  # reload-config re-reads it
        services.loop = loop
        services.bus.bind(loop)
        if problems:
            services.health.register("config", "failed")
            services.health.set("config", "failed", problems[0])

        supervisor = Supervisor(services.health)
        services.supervisor = supervisor
        if self.handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stop.set)
            # systemctl reload (ExecReload sends SIGHUP): apply the configuration live.
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)

        _LOGGER.info(
            "kiosk-edge %s starting (store %s, device %s)",
            __version__,
            config.device.store_id,
            config.device.device_id,
        )
        if self.on_services is not None:
            self.on_services(services)
        for component in build_components(services):
            supervisor.start(component)

        await _wait_ready(services, READY_TIMEOUT_S, self._stop)
        self._notifier.ready(_status_line(services))
        self._watchdog = asyncio.create_task(
            _feed_watchdog(self._notifier, services), name="watchdog"
        )
        self._state_reporter = asyncio.create_task(
            _report_state_changes(services), name="component-states"
        )
        return services

    def request_reload(self) -> None:
        """Re-read the configuration file and apply it live (SIGHUP); safe from any thread."""
        if self._loop is None or self.services is None:
            return
        services = self.services

        def start() -> None:
            self._reloads.add(task := asyncio.create_task(self._async_reload(services)))
            task.add_done_callback(self._reloads.discard)

        self._loop.call_soon_threadsafe(start)

    @staticmethod
    async def _async_reload(services: Services) -> None:
        from edge.reload import ReloadError, async_reload

        try:
            await async_reload(services)
        except ReloadError as exc:
            _LOGGER.error("reload refused, nothing changed: %s", exc)

    def request_stop(self) -> None:
        """Ask the daemon to shut down; safe from any thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def async_wait(self) -> int:
        """Serve until asked to stop, then shut everything down; the exit status."""
        assert self._stop is not None
        assert self.services is not None
        services = self.services
        await self._stop.wait()
        _LOGGER.info("shutting down")
        self._notifier.stopping()
        services.stopping.set()
        for task in (self._watchdog, self._state_reporter):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await services.supervisor.stop(SHUTDOWN_TIMEOUT_S)
        for hook in services.extras.get("on_shutdown", []):
            try:
                hook()
            except Exception:
                _LOGGER.exception("shutdown hook failed")
        self._notifier.close()
        if self.handle_signals and self._loop is not None:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                self._loop.remove_signal_handler(sig)
        _LOGGER.info("stopped")
        return 0


async def async_run(config_path: Path) -> int:
    """Run the appliance until SIGTERM/SIGINT; returns the process exit status."""
    daemon = Daemon(config_path)
    await daemon.async_start()
    return await daemon.async_wait()


def run(config_path: Path) -> int:
    """Blocking entry point for `kiosk-edge run`."""
    return asyncio.run(async_run(config_path))
