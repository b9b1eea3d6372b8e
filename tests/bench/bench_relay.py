"""Relay benchmarks against a local Mosquitto (started here on a free port).

- relay.durable_events_per_s: 50,000 events submitted to the outbox, committed (FULL) and
  acknowledged by the broker (rows deleted), beside plain paho publishing the same payloads
  to the same topics with QoS 1 and the same in-flight window, no outbox, in the same run.
  The peer sends no MQTT 5 properties while the relay sends content type, id, type, sequence
  and expiry: the same properties built with paho's ``Properties`` per message made the peer
  about 3x slower (8.5k against 26.8k events/s here), so it is left without them, the harder
  comparison.
- relay.backlog_drain_s: a 100,000-event backlog delivered after the broker comes back
  (timed from the broker's restart, reconnect backoff included).
- relay.catalog_sync_s: 50,000 retained product messages applied to the real catalog store
  (timed from the relay's start until the store holds them all).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.catalog.store import CatalogStore
from edge.catalog.sync import CatalogSync
from edge.config import MqttConfig
from edge.events import Event, new_event
from edge.relay.mqtt import MessageHandler, MqttRelay
from edge.relay.outbox import DB_NAME, Outbox
from edge.relay.topics import Topics
from tests.bench import Figure
from tests.support.mosquitto import Mosquitto

DURABLE_EVENTS: Final = 50_000
BACKLOG_EVENTS: Final = 100_000
CATALOG_PRODUCTS: Final = 50_000
TIMEOUT_S: Final = 120.0
TOPICS: Final = Topics("bench-store", "kiosk-b1")


def _events(n: int) -> list[Event]:
    """Presence events shaped like the beacon component's."""
    data = {
        "beacon_class": "store",
        "id": "f7826da6-4fa2-4e98-8024-bc5b71e0893e:100:7",
        "kind": "ibeacon",
        "zone": "near",
        "rssi": -63,
        "distance_m": 1.8,
    }
    return [new_event("kiosk.beacon.zone", dict(data)) for _ in range(n)]


def _wait(predicate: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark timed out waiting for {what}")
        time.sleep(0.002)


def _relay(
    broker: Mosquitto,
    outbox: Outbox,
    *,
    client_id: str = "bench-relay",
    on_catalog: MessageHandler | None = None,
    **overrides: object,
) -> MqttRelay:
    """A relay for the bench device; it subscribes to the catalog only when given a handler."""
    config = MqttConfig.model_validate({"host": "127.0.0.1", "port": broker.port, **overrides})
    return MqttRelay(
        config,
        outbox,
        TOPICS,
        client_id=client_id,
        birth=lambda: b'{"state":"online"}',
        will=lambda: b'{"state":"offline"}',
        on_catalog=on_catalog,
        subscribe_catalog=on_catalog is not None,
    )


def plain_paho_per_s(broker: Mosquitto, payloads: list[tuple[str, bytes]], window: int) -> float:
    """Plain paho, QoS 1, pipelined within ``window`` in-flight messages, its own thread."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="bench-plain",
        protocol=paho.MQTTv5,
    )
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    done = threading.Event()
    acked = [0]

    def on_publish(*_args: object) -> None:
        acked[0] += 1
        if acked[0] == len(payloads):
            done.set()

    client.on_publish = on_publish
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise TimeoutError("plain paho did not connect")
        start = time.perf_counter()
        for topic, payload in payloads:
            client.publish(topic, payload, qos=1)
        if not done.wait(TIMEOUT_S):
            raise TimeoutError("plain paho did not get every PUBACK")
        return len(payloads) / (time.perf_counter() - start)
    finally:
        client.disconnect()
        client.loop_stop()


def durable_per_s(broker: Mosquitto, folder: Path) -> tuple[float, float]:
    """(relay events/s, plain paho events/s) over the same events."""
    events = _events(DURABLE_EVENTS)
    outbox = Outbox(folder / "durable" / DB_NAME, store_id=TOPICS.store, device_id=TOPICS.device)
    outbox.start()
    relay = _relay(broker, outbox)
    relay.start()
    try:
        _wait(lambda: relay.stats.connected, "the relay to connect")
        start = time.perf_counter()
        for event in events:
            outbox.submit(event)
        _wait(lambda: relay.stats.acked >= DURABLE_EVENTS, "every PUBACK")
        _wait(lambda: outbox.stats().depth == 0, "the acknowledged rows to be deleted")
        durable = DURABLE_EVENTS / (time.perf_counter() - start)
    finally:
        relay.stop()
        relay.close()
        outbox.close()
    # The peer publishes the same CloudEvents bytes, as the relay stored them.
    shadow = Outbox(folder / "shadow" / DB_NAME, store_id=TOPICS.store, device_id=TOPICS.device)
    shadow.accept(events)
    payloads = [(TOPICS.event(r.type), r.payload) for r in shadow.fetch(0, DURABLE_EVENTS)]
    shadow.close()
    plain = plain_paho_per_s(broker, payloads, MqttConfig().max_inflight)
    return durable, plain


def backlog_drain_s(broker: Mosquitto, folder: Path) -> float:
    """Seconds from the broker's return until a 100,000-event backlog is delivered."""
    outbox = Outbox(folder / "backlog" / DB_NAME, store_id=TOPICS.store, device_id=TOPICS.device)
    relay = _relay(broker, outbox, reconnect_min_s=0.2, reconnect_max_s=1.0)
    relay.start()
    try:
        _wait(lambda: relay.stats.connected, "the relay to connect")
        broker.stop()
        _wait(lambda: not relay.stats.connected, "the relay to notice the outage")
        events = _events(BACKLOG_EVENTS)
        for start in range(0, BACKLOG_EVENTS, 2000):
            outbox.accept(events[start : start + 2000])
        start = time.perf_counter()
        broker.start()
        _wait(lambda: outbox.stats().depth == 0, "the backlog to drain")
        return time.perf_counter() - start
    finally:
        relay.stop()
        relay.close()
        outbox.close()


def _product(i: int) -> bytes:
    return json.dumps(
        {
            "name": f"Téléviseur {i} 55 pouces",
            "price": 299.0 + i % 700,
            "brand": f"Marque {i % 40}",
            "category": f"tv-{i % 12}",
            "ean": str(3760000000000 + i).zfill(13),
            "description": "Un écran OLED lumineux, quatre ports HDMI 2.1 et un son Dolby Atmos.",
            "specs": [
                {"key": "diagonal", "label": "Diagonale", "value": 55, "unit": "in"},
                {
                    "key": "power",
                    "label": "Consommation",
                    "value": 90 + i % 50,
                    "unit": "W",
                    "better": "lower",
                },
                {"key": "hdmi", "label": "Ports HDMI", "value": 4, "better": "higher"},
            ],
        }
    ).encode()


def catalog_sync_s(broker: Mosquitto, folder: Path) -> float:
    """Seconds from the relay's start until 50,000 retained products are in the store."""
    publisher = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="bench-central",
        protocol=paho.MQTTv5,
    )
    publisher.max_inflight_messages_set(256)
    publisher.max_queued_messages_set(0)
    publisher.connect("127.0.0.1", broker.port)
    publisher.loop_start()
    try:
        infos = [
            publisher.publish(TOPICS.catalog_topic("product", f"SKU-{i:06d}"), _product(i), 1, True)
            for i in range(CATALOG_PRODUCTS)
        ]
        _wait(lambda: all(i.is_published() for i in infos[-100:]), "central's retained publish")
        _wait(lambda: all(i.is_published() for i in infos), "central's retained publish")
    finally:
        publisher.disconnect()
        publisher.loop_stop()
    store = CatalogStore(folder / "catalog.sqlite3")
    sync = CatalogSync(TOPICS, lambda: store)
    outbox = Outbox(folder / "catalog-outbox" / DB_NAME, store_id="s", device_id="d")
    relay = _relay(broker, outbox, client_id="bench-catalog", on_catalog=sync.offer)
    sync.start()
    start = time.perf_counter()
    relay.start()
    try:
        _wait(lambda: sync.stats.applied + sync.stats.rejected >= CATALOG_PRODUCTS, "the sync")
        _wait(lambda: sync.wait_idle(0.01), "the last batch")
        elapsed = time.perf_counter() - start
        if store.count_products() != CATALOG_PRODUCTS or sync.stats.rejected:
            raise RuntimeError(
                f"catalog sync incomplete: {store.count_products()} products, "
                f"{sync.stats.rejected} rejected ({sync.errors[:3]})"
            )
        return elapsed
    finally:
        relay.stop()
        relay.close()
        sync.stop()
        outbox.close()
        store.close()


def run() -> Iterator[Figure]:
    """The three relay figures."""
    # Reconnect warnings during the staged outage are expected: keep the output to figures.
    logging.getLogger("edge.relay").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        folder = Path(tmp)
        broker = Mosquitto(folder).start()
        try:
            durable, plain = durable_per_s(broker, folder)
            yield Figure(
                "relay.durable_events_per_s",
                durable,
                "events/s",
                "plain_paho_qos1",
                plain,
                ">=5000,ratio>=0.5",
            )
            yield Figure(
                "relay.backlog_drain_s", backlog_drain_s(broker, folder), "s", target="< 20"
            )
            yield Figure("relay.catalog_sync_s", catalog_sync_s(broker, folder), "s", target="< 20")
        finally:
            broker.kill()
