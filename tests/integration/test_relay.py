"""The relay against a real Mosquitto: outages, kill -9, Last Will, eviction, commands, catalog.

Every broker is started by the test on 127.0.0.1 with its own config (see
tests/support/mosquitto.py); the relay connects over mutual TLS with certificates the test
made. Subscribers use persistent MQTT 5 sessions on a broker with persistence, so what the
broker accepted while a subscriber was away still reaches it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import MqttConfig
from edge.events import new_event
from edge.relay.mqtt import MqttRelay
from edge.relay.outbox import DB_NAME, Outbox, read_stats
from edge.relay.topics import Topics
from tests.conftest import REPO_ROOT, ConfigWriter
from tests.support.daemon import InProcessDaemon
from tests.support.mosquitto import Mosquitto

STORE = "test-store"
DEVICE = "kiosk-t1"
TOPICS = Topics(STORE, DEVICE)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until true, failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Subscriber:
    """A central-side MQTT 5 client with a persistent session that records what arrives."""

    def __init__(self, broker: Mosquitto, topic: str, client_id: str = "central") -> None:
        self.messages: list[paho.MQTTMessage] = []
        self.lock = threading.Lock()
        self.topic = topic
        self.subscribed = threading.Event()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
        )
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_connect(self, client: paho.Client, *_args: Any) -> None:
        client.subscribe(self.topic, qos=1)
        self.subscribed.set()

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(msg)

    def events(self) -> list[dict[str, Any]]:
        """Decoded CloudEvents received on events/ topics, in arrival order."""
        with self.lock:
            msgs = list(self.messages)
        return [json.loads(m.payload) for m in msgs if "/events/" in m.topic]

    def on(self, topic_suffix: str) -> list[paho.MQTTMessage]:
        """Messages whose topic ends with ``topic_suffix``."""
        with self.lock:
            return [m for m in self.messages if m.topic.endswith(topic_suffix)]

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def assert_no_gaps(events: list[dict[str, Any]], expected_last: int) -> None:
    """Every sequence 1..expected_last arrived; per device no sequence ever jumped ahead."""
    highest = 0
    for body in events:
        seq = int(body["sequence"])
        assert seq <= highest + 1, f"gap: sequence {seq} arrived after only {highest}"
        highest = max(highest, seq)
    assert {int(b["sequence"]) for b in events} == set(range(1, expected_last + 1))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker with a plain and a mutual-TLS listener and persistence."""
    b = Mosquitto(tmp_path, tls=True, persistence=True).start()
    try:
        yield b
    finally:
        b.kill()


def tls_mqtt(broker: Mosquitto, **overrides: Any) -> MqttConfig:
    """Relay settings for the broker's mutual-TLS listener with quick reconnects."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": broker.tls_port,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "tls": {
            "enabled": True,
            "ca_file": broker.ca_file,
            "cert_file": broker.client_cert,
            "key_file": broker.client_key,
        },
    }
    values.update(overrides)
    return MqttConfig.model_validate(values)


def make_relay(
    outbox: Outbox, config: MqttConfig, states: list[tuple[bool, str]] | None = None
) -> MqttRelay:
    """A relay for the test device with simple presence payloads."""
    return MqttRelay(
        config,
        outbox,
        TOPICS,
        client_id=f"kiosk-edge-{STORE}-{DEVICE}",
        birth=lambda: b'{"state": "online"}',
        will=lambda: b'{"state": "offline"}',
        on_state=(lambda c, r: states.append((c, r))) if states is not None else None,
    )


def first_state(outbox: Outbox, config: MqttConfig) -> tuple[bool, str]:
    """Run a relay until it reports its first state (a refusal, in the tests), then stop it."""
    states: list[tuple[bool, str]] = []
    relay = make_relay(outbox, config, states)
    relay.start()
    try:
        wait_until(lambda: bool(states), 10, "the relay's first state")
    finally:
        relay.stop()
        relay.close()
    return states[0]


def test_10000_events_through_two_broker_restarts(tmp_path: Path, broker: Mosquitto) -> None:
    """10,000 events published while the broker is stopped and restarted twice all arrive,
    in sequence order with no gaps (duplicates allowed), over mutual TLS."""
    central = Subscriber(broker, f"kiosk-edge/v1/{STORE}/{DEVICE}/events/#")
    assert central.subscribed.wait(5)
    outbox = Outbox(tmp_path / DB_NAME, store_id=STORE, device_id=DEVICE, commit_interval_ms=2)
    outbox.start()
    states: list[tuple[bool, str]] = []
    relay = make_relay(outbox, tls_mqtt(broker), states)
    relay.start()
    ids: list[str] = []
    try:
        for chunk in range(10):
            if chunk in (3, 7):
                broker.stop()  # SIGTERM: the broker saves the subscriber's session
            for i in range(1000):
                event = new_event("kiosk.search", {"q": f"{chunk}-{i}"})
                ids.append(event.id)
                assert outbox.submit(event)
            time.sleep(0.1)
            if chunk in (4, 8):  # two chunks accepted while the broker was away
                connects = relay.stats.connects
                broker.start()
                wait_until(lambda c=connects: relay.stats.connects > c, 10, "a reconnect")
        assert outbox.flush(10)
        wait_until(lambda: outbox.stats().depth == 0, 25, "the outbox to drain")
        wait_until(lambda: len({e["id"] for e in central.events()}) >= 10_000, 15, "delivery")
    finally:
        relay.stop()
        relay.close()
        outbox.close()
        central.close()
    events = central.events()
    assert {e["id"] for e in events} == set(ids)
    assert_no_gaps(events, 10_000)
    assert relay.stats.connects >= 3
    assert any(not connected for connected, _ in states), "outages must be reported"
    assert states[-1] == (True, "")


def test_full_outbox_evicts_by_policy_and_reports(tmp_path: Path, broker: Mosquitto) -> None:
    """With the broker away, a full outbox drops telemetry first and central is told."""
    central = Subscriber(broker, f"kiosk-edge/v1/{STORE}/{DEVICE}/events/#")
    assert central.subscribed.wait(5)
    outbox = Outbox(tmp_path / DB_NAME, store_id=STORE, device_id=DEVICE, max_rows=100)
    outbox.start()
    shopper = [new_event("kiosk.product.scan", {"ean": "3760000000017"}) for _ in range(60)]
    telemetry = [new_event("kiosk.beacon.telemetry", {"id": f"b{i}"}) for i in range(60)]
    outbox.accept(shopper[:30])
    outbox.accept(telemetry)
    outbox.accept(shopper[30:])  # 120 events for 100 places: 20 telemetry go (+1 report)
    assert outbox.flush(5)
    relay = make_relay(outbox, tls_mqtt(broker))
    relay.start()
    try:

        def reports() -> list[dict[str, Any]]:
            return [e for e in central.events() if e["type"] == "kiosk.relay.dropped"]

        def lost() -> list[str]:
            received = {e["id"] for e in central.events()}
            return [e.id for e in telemetry if e.id not in received]

        # Each report is itself queued (system priority) and may push out one more
        # telemetry event, reported a second later; counts add up once the queue drains.
        wait_until(lambda: outbox.stats().depth == 0, 10, "the outbox to drain")
        wait_until(
            lambda: sum(r["data"]["count"] for r in reports()) == len(lost()),
            10,
            "the reports to account for every evicted event",
        )
    finally:
        relay.stop()
        relay.close()
        outbox.close()
        central.close()
    assert reports()
    for report in reports():
        assert report["data"]["reason"] == "full"
        assert set(report["data"]["by_type"]) == {"kiosk.beacon.telemetry"}
    received = {e["id"] for e in central.events()}
    assert {e.id for e in shopper} <= received  # no shopper event was evicted
    assert 20 <= len(lost()) <= 25
    lost_ids = lost()
    assert lost_ids == [e.id for e in telemetry[: len(lost_ids)]]
    # MQTT 5 extras: content type, routing user properties, expiry for types with a TTL.
    kept = central.on("/events/kiosk.beacon.telemetry")
    assert kept
    props = kept[0].properties
    assert props is not None
    assert props.ContentType == "application/cloudevents+json"
    user = dict(props.UserProperty)
    body = json.loads(kept[0].payload)
    assert user == {"id": body["id"], "type": body["type"], "sequence": body["sequence"]}
    assert 0 < props.MessageExpiryInterval <= 24 * 3600
    scan = central.on("/events/kiosk.product.scan")[0].properties
    assert not hasattr(
        scan, "MessageExpiryInterval"
    )  # no TTL: never expires  # the oldest telemetry went


def test_mqtt_311_and_refused_client_without_certificate(tmp_path: Path, broker: Mosquitto) -> None:
    """MQTT 3.1.1 is selectable; a TLS client without a certificate is refused and says so."""
    central = Subscriber(broker, f"kiosk-edge/v1/{STORE}/{DEVICE}/events/#")
    assert central.subscribed.wait(5)
    outbox = Outbox(tmp_path / DB_NAME, store_id=STORE, device_id=DEVICE)
    outbox.accept([new_event("kiosk.search", {"q": str(i)}) for i in range(200)])
    no_cert = tls_mqtt(
        broker,
        tls={"enabled": True, "ca_file": broker.ca_file},
        reconnect_min_s=5.0,
        reconnect_max_s=5.0,
    )
    connected, _ = first_state(outbox, no_cert)
    assert connected is False
    assert outbox.stats().depth == 200
    relay = make_relay(outbox, tls_mqtt(broker, protocol="3.1.1"))
    relay.start()
    try:
        wait_until(lambda: outbox.stats().depth == 0, 10, "the outbox to drain over 3.1.1")
        wait_until(lambda: len(central.events()) >= 200, 5, "delivery")
    finally:
        relay.stop()
        relay.close()
        outbox.close()
        central.close()
    assert_no_gaps(central.events(), 200)


def spawn_daemon(config: Path, burst: int, log: Path) -> subprocess.Popen[bytes]:
    """The real daemon plus a burst of events, as a child process."""
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.relay_daemon", str(config), str(burst)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
            env=env,
        )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Kill a child by PID and reap it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_kill_9_mid_burst_loses_nothing_and_last_will_tells(
    tmp_path: Path, broker: Mosquitto, write_config: ConfigWriter
) -> None:
    """kill -9 in the middle of a burst: every accepted event arrives after the restart, the
    sequence continues without a gap, `offline` (Last Will) then `online` are retained."""
    mqtt = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": broker.tls_port,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
    }
    tls = {
        "enabled": True,
        "ca_file": str(broker.ca_file),
        "cert_file": str(broker.client_cert),
        "key_file": str(broker.client_key),
    }
    config = write_config(mqtt=mqtt, **{"mqtt.tls": tls}, kiosk={"enabled": False})
    central = Subscriber(broker, f"kiosk-edge/v1/{STORE}/{DEVICE}/#")
    assert central.subscribed.wait(5)
    log = tmp_path / "daemon.log"
    proc = spawn_daemon(config, 40_000, log)
    try:
        wait_until(lambda: len(central.events()) >= 1000, 20, "the burst to start arriving")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_until(
            lambda: any(json.loads(m.payload)["state"] == "offline" for m in central.on("/status")),
            10,
            "the Last Will",
        )
        first_run = read_stats(tmp_path / "data" / DB_NAME)
        assert first_run is not None
        accepted = first_run.next_sequence - 1
        assert 1000 <= accepted < 40_000, "the kill must land mid-burst"
        proc = spawn_daemon(config, 500, log)
        wait_until(
            lambda: json.loads(central.on("/status")[-1].payload)["state"] == "online",
            20,
            "the birth message after the restart",
        )
        # The daemon also relays its own events (kiosk.component.state) in the same sequence:
        # wait for the burst, then take the last sequence the outbox handed out.
        wait_until(
            lambda: len({e["sequence"] for e in central.events()}) >= accepted + 500,
            25,
            "the second burst",
        )
        second_run = read_stats(tmp_path / "data" / DB_NAME)
        assert second_run is not None
        total = second_run.next_sequence - 1
        assert total >= accepted + 500
        wait_until(
            lambda: {int(e["sequence"]) for e in central.events()} >= set(range(1, total + 1)),
            25,
            f"all {total} sequences",
        )
        states = [json.loads(m.payload)["state"] for m in central.on("/status")]
    finally:
        stop_process(proc)
        central.close()
    events = central.events()
    # The daemon may relay one more of its own events between read_stats and the stop: every
    # sequence up to the highest received must be there, and that is at least `total`.
    assert_no_gaps(events, max(total, *(int(e["sequence"]) for e in events)))
    assert len({e["outboxepoch"] for e in events}) == 1
    assert states == ["online", "offline", "online"], log.read_text()[-3000:]


def publish_retained(broker: Mosquitto, messages: list[tuple[str, bytes]]) -> None:
    """Publish retained messages as central does, waiting for each PUBACK."""
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        infos = [client.publish(t, p, qos=1, retain=True) for t, p in messages]
        for info in infos:
            info.wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def test_commands_and_catalog_through_the_daemon(
    tmp_path: Path, broker: Mosquitto, write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands are answered (errors for bad payloads, correlation data echoed); retained
    catalog state, deletes included, lands in the catalog store; health is published."""
    import edge.relay.status as status

    thermal = tmp_path / "thermal_temp"
    thermal.write_text("48123\n")
    monkeypatch.setattr(status, "THERMAL_ZONE_PATH", thermal)
    base = f"kiosk-edge/v1/{STORE}/catalog"
    product = {"name": "Téléviseur 55", "price": 499.0, "ean": "3760000000017"}
    publish_retained(
        broker,
        [
            (f"{base}/products/TV-001", json.dumps(product).encode()),
            (f"{base}/products/TV-002", json.dumps({**product, "name": "Old"}).encode()),
            (f"{base}/products/TV-002", b""),  # central deleted it
            (f"{base}/products/BAD", b"{not json"),
            (f"{base}/offers/o1", json.dumps({"title": "-10 %", "skus": ["TV-001"]}).encode()),
            (
                f"{base}/reviews/TV-001",
                json.dumps(
                    [{"id": "r1", "rating": 5, "title": "Top", "text": "Bien", "author": "A."}]
                ).encode(),
            ),
            (
                f"{base}/shoppers/49698d7f90c7344b7552e55142b73e35",
                json.dumps(
                    {"first_name": "Camille", "segments": ["gold"], "locale": "fr"}
                ).encode(),
            ),
        ],
    )
    mqtt = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": broker.tls_port,
        "reconnect_min_s": 0.1,
        "health_interval_s": 5,
    }
    tls = {
        "enabled": True,
        "ca_file": str(broker.ca_file),
        "cert_file": str(broker.client_cert),
        "key_file": str(broker.client_key),
    }
    config = write_config(mqtt=mqtt, **{"mqtt.tls": tls}, kiosk={"enabled": False})
    central = Subscriber(broker, f"kiosk-edge/v1/{STORE}/#", client_id="central-cmd")
    assert central.subscribed.wait(5)
    with InProcessDaemon(config) as daemon:
        services = daemon.services
        catalog = services.catalog
        wait_until(lambda: catalog.get_product("TV-001") is not None, 10, "the retained catalog")
        wait_until(lambda: catalog.shopper("49698d7f90c7344b7552e55142b73e35") is not None, 5, "")
        assert catalog.get_product("TV-001").name == "Téléviseur 55"
        assert catalog.get_product("TV-002") is None
        assert catalog.get_product("BAD") is None
        assert [r.id for r in catalog.reviews_for("TV-001")] == ["r1"]
        assert [o.id for o in catalog.offers()] == ["o1"]
        wait_until(lambda: services.health.get("relay").state == "ok", 10, "relay ok")
        assert services.outbox is not None
        assert services.relay is not None

        # Central deletes the offer later: the empty retained message removes it.
        publish_retained(broker, [(f"{base}/offers/o1", b"")])
        wait_until(lambda: catalog.offers() == [], 5, "the offer delete")

        identified: list[Any] = []
        services.bus.subscribe(identified.append, "local.kiosk.identify")
        cmd = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        cmd.connect("127.0.0.1", broker.port)
        cmd.loop_start()
        try:
            requests = [
                ("ping", b'{"id": "p1"}', b"corr-1"),
                ("ping", b"{broken", b"corr-2"),
                ("self-destruct", b"{}", b"corr-3"),
                ("print-test", b"", b"corr-4"),
                ("identify", b'{"args": {"seconds": 2}}', b"corr-5"),
                ("sync-catalog", b"", b"corr-6"),
                ("reload-config", b"", b"corr-7"),
            ]
            for name, payload, corr in requests:
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.CorrelationData = corr
                topic = f"kiosk-edge/v1/{STORE}/{DEVICE}/cmd/{name}"
                if name == "identify":
                    topic = f"kiosk-edge/v1/{STORE}/all/cmd/{name}"
                cmd.publish(topic, payload, qos=1, properties=props).wait_for_publish(5)
            wait_until(lambda: len(central.on("/reply")) >= len(requests), 10, "the replies")
            wait_until(lambda: bool(central.on("/health")), 10, "a health report")
        finally:
            cmd.disconnect()
            cmd.loop_stop()
        replies = {
            m.properties.CorrelationData: (m.topic, json.loads(m.payload))  # type: ignore[union-attr]
            for m in central.on("/reply")
        }
        assert replies[b"corr-1"][1]["ok"] is True
        assert replies[b"corr-1"][1]["id"] == "p1"
        assert replies[b"corr-1"][0] == f"kiosk-edge/v1/{STORE}/{DEVICE}/cmd/ping/reply"
        assert replies[b"corr-2"][1]["ok"] is False
        assert "not JSON" in replies[b"corr-2"][1]["error"]
        assert replies[b"corr-3"][1]["error"].startswith("unknown command 'self-destruct'")
        assert replies[b"corr-4"][1]["ok"] is False  # printer disabled in this config
        assert replies[b"corr-5"][1]["ok"] is True
        assert replies[b"corr-6"][1]["result"] == {"resubscribed": True}
        assert replies[b"corr-7"][1]["result"]["applied_sections"] == []
        assert len(identified) == 1
        health = json.loads(central.on("/health")[-1].payload)
        assert health["cpu_temperature_c"] == 48.1
        assert health["outbox"]["depth"] >= 0
        assert health["components"]["relay"]["state"] == "ok"
        for key in ("uptime_s", "load", "memory", "disk"):
            assert health[key] is not None
        birth = json.loads(central.on("/status")[-1].payload)
        assert birth["state"] == "online"
        assert birth["config_hash"] == services.config.fingerprint()
        assert birth["boot_id"]
    # A clean stop says offline itself (a clean DISCONNECT suppresses the Last Will).
    wait_until(
        lambda: json.loads(central.on("/status")[-1].payload)["state"] == "offline",
        5,
        "offline on a clean stop",
    )
    central.close()


def test_username_password_login(tmp_path: Path) -> None:
    """User name and password work; a wrong password is reported and nothing is lost."""
    with Mosquitto(tmp_path, users={"kiosk-t1": "s3cret"}, name="auth") as broker:
        outbox = Outbox(tmp_path / DB_NAME, store_id=STORE, device_id=DEVICE)
        outbox.accept([new_event("kiosk.search", {"q": str(i)}) for i in range(50)])
        base = {"host": "127.0.0.1", "port": broker.port, "username": "kiosk-t1"}
        wrong = MqttConfig.model_validate({**base, "password": "nope", "reconnect_min_s": 5})
        connected, reason = first_state(outbox, wrong)
        assert connected is False
        assert "refused the connection" in reason
        assert outbox.stats().depth == 50
        relay = make_relay(outbox, MqttConfig.model_validate({**base, "password": "s3cret"}))
        relay.start()
        try:
            wait_until(lambda: outbox.stats().depth == 0, 10, "the outbox to drain")
        finally:
            relay.stop()
            relay.close()
            outbox.close()


def test_broker_refusal_keeps_the_event(tmp_path: Path) -> None:
    """A PUBACK with a failure reason (MQTT 5 "not authorized") never deletes the row."""
    acl = tmp_path / "acl.conf"
    acl.write_text(
        f"topic readwrite kiosk-edge/v1/{STORE}/{DEVICE}/status\n"
        f"topic readwrite kiosk-edge/v1/{STORE}/{DEVICE}/events/kiosk.product.scan\n"
    )
    with Mosquitto(tmp_path, extra_config=f"acl_file {acl}", name="acl") as broker:
        outbox = Outbox(tmp_path / DB_NAME, store_id=STORE, device_id=DEVICE)
        scan = {"ean": "3760000000017", "source": "hid"}
        outbox.accept([new_event("kiosk.product.scan", scan) for _ in range(2)])
        outbox.accept([new_event("kiosk.search", {"q": "denied"})])  # sequence 3
        states: list[tuple[bool, str]] = []
        relay = make_relay(outbox, MqttConfig(host="127.0.0.1", port=broker.port), states)
        relay.start()
        try:
            wait_until(lambda: relay.stats.refused >= 1, 10, "the refusal")
            wait_until(lambda: outbox.stats().depth == 1, 5, "the accepted rows to go")
        finally:
            relay.stop()
            relay.close()
        assert [r.seq for r in outbox.fetch(0, 10)] == [3]
        assert any(connected and "refused" in reason for connected, reason in states)
        outbox.close()


def test_two_kiosks_with_one_client_id_back_off(tmp_path: Path) -> None:
    """Two devices configured with the same client id take the session from each other at
    every connect; each flap counts as a failure, so the reconnects slow down instead of
    hammering the broker several times a second."""
    with Mosquitto(tmp_path, name="takeover") as broker:
        config = MqttConfig(
            host="127.0.0.1", port=broker.port, reconnect_min_s=0.1, reconnect_max_s=2.0
        )
        outboxes = [
            Outbox(tmp_path / name / DB_NAME, store_id=STORE, device_id=DEVICE)
            for name in ("a", "b")
        ]
        relays = [make_relay(outbox, config) for outbox in outboxes]
        for relay in relays:
            relay.start()
        try:
            wait_until(lambda: sum(r.stats.connects for r in relays) >= 4, 10, "a few takeovers")
            time.sleep(3)
            connects = sum(r.stats.connects for r in relays)
        finally:
            for relay in relays:
                relay.stop()
                relay.close()
            for outbox in outboxes:
                outbox.close()
    # Backoff 0.1, 0.2, 0.4, ... 2 s (jittered to 50-100 %) allows about a dozen connects
    # in these ~4 s; resetting it after every short-lived connection allowed over fifty.
    assert connects <= 20, connects


def test_command_flood_is_answered_busy_without_queueing(
    broker: Mosquitto, write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the command worker is stuck, at most MAX_QUEUED_COMMANDS wait; the rest get a
    "busy" reply with their id straight away, and the waiting ones all run once it is free."""
    from edge.relay import commands
    from edge.relay.component import MAX_QUEUED_COMMANDS

    release = threading.Event()

    def slow(_ctx: commands.CommandContext, _args: dict[str, Any]) -> dict[str, Any]:
        release.wait(20)
        return {"done": True}

    monkeypatch.setitem(commands.COMMANDS, "slow", slow)
    mqtt = {"enabled": True, "host": "127.0.0.1", "port": broker.port, "reconnect_min_s": 0.1}
    config = write_config(mqtt=mqtt, kiosk={"enabled": False})
    central = Subscriber(broker, f"kiosk-edge/v1/{STORE}/{DEVICE}/cmd/+/reply", "central-flood")
    assert central.subscribed.wait(5)
    extra = 10
    total = MAX_QUEUED_COMMANDS + extra
    cmd = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    try:
        with InProcessDaemon(config) as daemon:
            wait_until(lambda: daemon.services.health.get("relay").state == "ok", 10, "relay ok")
            cmd.connect("127.0.0.1", broker.port)
            cmd.loop_start()
            topic = f"kiosk-edge/v1/{STORE}/{DEVICE}/cmd/slow"
            for info in [
                cmd.publish(topic, f'{{"id": "r{i}"}}'.encode(), qos=1) for i in range(total)
            ]:
                info.wait_for_publish(5)
            wait_until(lambda: len(central.on("/reply")) >= extra, 10, "the busy replies")
            time.sleep(0.3)  # nothing that waits may have run while the worker is stuck
            busy = [json.loads(m.payload) for m in central.on("/reply")]
            assert len(busy) == extra
            assert all(b["ok"] is False and "busy" in b["error"] for b in busy)
            assert busy[0]["id"] == f"r{MAX_QUEUED_COMMANDS}"
            release.set()
            wait_until(lambda: len(central.on("/reply")) >= total, 15, "the waiting commands")
            done = [json.loads(m.payload) for m in central.on("/reply")][extra:]
            assert sorted(int(d["id"][1:]) for d in done) == list(range(MAX_QUEUED_COMMANDS))
            assert all(d["ok"] is True for d in done)
    finally:
        release.set()
        cmd.loop_stop()
        cmd.disconnect()
        central.close()
