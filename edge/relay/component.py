"""The relay as a supervised daemon component: bus -> outbox -> MQTT, and downlink back.

The factory opens the outbox and subscribes it to the bus straight away, so accepting
events never depends on the broker or on the relay thread being up; the component's
``run`` owns the MQTT thread, the command worker, the catalog sync and the health timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from edge.catalog.sync import CatalogSync
from edge.events import EVENT_TYPES, Event, to_json
from edge.relay import commands, status
from edge.relay.mqtt import MqttRelay, json_publish_properties
from edge.relay.outbox import Outbox
from edge.relay.topics import Topics
from edge.services import Services

_LOGGER = logging.getLogger(__name__)

NAME: Final = "relay"
# How often run() checks that its threads are alive (and refreshes metrics).
CHECK_INTERVAL_S: Final = 1.0
# Commands run one at a time, off the MQTT thread (a printer test page may take a while).
COMMAND_WORKERS: Final = 1
# Commands waiting (or running) beyond this are answered "busy" at once: a flood from central
# or a looping script must not grow the daemon's memory without bound.
MAX_QUEUED_COMMANDS: Final = 64
# A reply that must leave before the relay is replaced (reload-config) waits at most this
# long to be written; without a connection it is dropped anyway.
REPLY_FLUSH_S: Final = 2.0


def client_id_for(services: Services) -> str:
    """The configured client id, else kiosk-edge-{store}-{device}."""
    cfg = services.config
    return cfg.mqtt.client_id or f"kiosk-edge-{cfg.device.store_id}-{cfg.device.device_id}"


class RelayComponent:
    """Runs the MQTT relay for the daemon's lifetime."""

    name = NAME

    def __init__(self, services: Services, outbox: Outbox) -> None:
        self.services = services
        self.outbox = outbox
        cfg = services.config
        self.topics = Topics(cfg.device.store_id, cfg.device.device_id)
        self.started = time.time()
        self.config_hash = cfg.fingerprint()
        self.sync = CatalogSync(self.topics, lambda: services.catalog)
        self.relay = MqttRelay(
            cfg.mqtt,
            outbox,
            self.topics,
            client_id=client_id_for(services),
            birth=lambda: to_json(status.birth(self.started, self.config_hash)),
            will=lambda: to_json(status.will(self.started)),
            on_command=self._on_command,
            on_catalog=self.sync.offer,
            on_state=self._on_state,
        )
        self.context = commands.CommandContext(
            services,
            resync_catalog=self.relay.resync_catalog,
            started=self.started,
            flush_replies=lambda: self.relay.flush(REPLY_FLUSH_S),
        )
        self._executor: ThreadPoolExecutor | None = None
        self._outbox_was_failing = False
        self._queued = 0  # commands submitted to the executor and not finished
        self._queued_lock = threading.Lock()

    # ------------------------------------------------------------ MQTT thread
    def _on_state(self, connected: bool, reason: str) -> None:
        health = self.services.health
        if connected and not reason:
            health.set(NAME, "ok")
        elif connected:
            health.set(NAME, "degraded", reason)
        else:
            health.set(NAME, "degraded", f"{reason}; events are kept in the outbox")

    def _on_command(self, topic: str, payload: bytes, properties: Any, retained: bool) -> None:
        name = self.topics.command_name(topic) or "?"
        if retained:
            # A retained command would run again on every connect: refuse to act on it.
            _LOGGER.warning("ignored retained %s command", name)
            return
        correlation = getattr(properties, "CorrelationData", None) if properties else None
        executor = self._executor
        if executor is None:
            return
        with self._queued_lock:
            busy = self._queued >= MAX_QUEUED_COMMANDS
            if not busy:
                self._queued += 1
        if busy:
            _LOGGER.warning("%s command refused: %d commands waiting", name, MAX_QUEUED_COMMANDS)
            req_id = (
                commands.request_id_of(payload)
                if len(payload) <= commands.MAX_PAYLOAD_BYTES
                else None
            )
            error = f"busy: {MAX_QUEUED_COMMANDS} commands are waiting; send it again later"
            self._reply(name, commands.reply(name, req_id, error=error), correlation)
            return
        executor.submit(self._run_command, name, payload, correlation)

    def _run_command(self, name: str, payload: bytes, correlation: bytes | None) -> None:
        try:
            answer = commands.execute(name, payload, self.context)
        finally:
            with self._queued_lock:
                self._queued = max(0, self._queued - 1)
        self._reply(name, answer, correlation)
        while self.context.after_reply:
            action = self.context.after_reply.pop(0)
            try:
                action()
            except Exception:
                _LOGGER.exception("after the %s reply: action failed", name)

    def _reply(self, name: str, answer: dict[str, Any], correlation: bytes | None) -> None:
        """Publish a command's answer on its reply topic, with the request's correlation data."""
        answer["device"] = self.topics.device
        props = None
        if self.relay.v5:
            props = json_publish_properties(correlation)
        try:
            reply_topic = self.topics.reply(name)
        except ValueError:
            _LOGGER.warning("no reply possible for command %r", name)
            return
        self.relay.publish_direct(reply_topic, to_json(answer), qos=1, properties=props)

    # -------------------------------------------------------------- the loop
    def health_payload(self) -> dict[str, Any]:
        """The periodic health message."""
        return status.health_report(
            started=self.started,
            data_dir=self.services.config.device.data_dir,
            outbox=self.outbox.stats().as_dict(),
            components=self.services.health.snapshot(),
            relay=self.relay.stats.as_dict(),
        )

    async def run(self) -> None:
        """Start the threads, publish health periodically, stop everything when cancelled."""
        services = self.services
        self._executor = ThreadPoolExecutor(COMMAND_WORKERS, thread_name_prefix="relay-cmd")
        with self._queued_lock:
            self._queued = 0  # commands cancelled with the last executor never finished
        self.sync.start()
        # Before start(): a quick connect reports "ok" from the MQTT thread, which this line
        # used to overwrite, leaving a connected relay "degraded" until its next reconnect.
        services.health.set(NAME, "degraded", "connecting to the broker")
        self.relay.start()
        loop = asyncio.get_running_loop()
        next_health = loop.time() + 2.0
        try:
            while True:
                await asyncio.sleep(CHECK_INTERVAL_S)
                if not self.relay.alive:
                    raise RuntimeError("the MQTT relay thread ended unexpectedly")
                if not self.outbox.writer_alive:
                    _LOGGER.error("the outbox writer thread ended; starting it again")
                    self.outbox.start()
                if self.outbox.last_error:
                    services.health.set(NAME, "degraded", self.outbox.last_error)
                elif self.relay.stats.connected and self._outbox_was_failing:
                    services.health.set(NAME, "ok")
                self._outbox_was_failing = bool(self.outbox.last_error)
                stats = self.outbox.stats()
                services.health.metric(NAME, "outbox_depth", stats.depth)
                services.health.metric(NAME, "outbox_bytes", stats.bytes)
                services.health.metric(NAME, "published", self.relay.stats.published)
                services.health.metric(NAME, "acked", self.relay.stats.acked)
                services.health.metric(NAME, "catalog", self.sync.stats.as_dict())
                if loop.time() >= next_health:
                    next_health = loop.time() + services.config.mqtt.health_interval_s
                    payload = await loop.run_in_executor(None, self.health_payload)
                    self.relay.publish_direct(
                        self.topics.health, json.dumps(payload).encode(), qos=0
                    )
        finally:
            await loop.run_in_executor(None, self._stop_threads)

    def _stop_threads(self) -> None:
        self.relay.stop()
        self.sync.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def relay_component(services: Services) -> RelayComponent | None:
    """The relay, or None when MQTT is disabled; sets ``services.outbox`` and ``.relay``."""
    config = services.config
    if not config.mqtt.enabled:
        return None
    outbox = Outbox.for_config(config, emit=services.publish)
    outbox.start()

    def accept(event: Event) -> None:
        kind = EVENT_TYPES.get(event.type)
        if kind is not None and kind.relayed:
            outbox.submit(event)

    subscription = services.bus.subscribe(accept)
    component = RelayComponent(services, outbox)
    services.outbox = outbox
    services.relay = component.relay

    def shutdown() -> None:
        subscription.close()
        outbox.close()
        with contextlib.suppress(OSError):
            component.relay.close()

    services.extras.setdefault("on_shutdown", []).append(shutdown)
    return component
