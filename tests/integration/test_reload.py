"""Live `reload-config` through the whole daemon and a real Mosquitto: changes apply without a
restart, a broken file changes nothing, identity changes wait for a restart, and the kiosk
answers /api/healthz throughout."""

from __future__ import annotations

import http.cookiejar
import json
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge import reload as reload_module
from tests.conftest import KIOSK_EDGE, REPO_ROOT, ConfigWriter, free_port
from tests.support.daemon import InProcessDaemon
from tests.support.mosquitto import Mosquitto

STORE = "test-store"
DEVICE = "kiosk-t1"
DEMO_BEACONS = REPO_ROOT / "firmware_config" / "demo" / "beacons.jsonl"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until true or fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Central:
    """Store IT's side: sends commands with correlation data and collects the replies."""

    def __init__(self, broker: Mosquitto) -> None:
        self.replies: dict[bytes, dict[str, Any]] = {}
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5
        )
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(f"kiosk-edge/v1/{STORE}/{DEVICE}/cmd/+/reply", qos=1)
        self.client.loop_start()
        assert subscribed.wait(5)
        self._n = 0

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        corr = getattr(msg.properties, "CorrelationData", None)
        if corr is not None:
            self.replies[corr] = json.loads(msg.payload)

    def command(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        """Send one command and wait for its reply."""
        self._n += 1
        corr = f"c{self._n}".encode()
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.CorrelationData = corr
        topic = f"kiosk-edge/v1/{STORE}/{DEVICE}/cmd/{name}"
        self.client.publish(topic, b'{"id": "r"}', qos=1, properties=props).wait_for_publish(5)
        wait_until(lambda: corr in self.replies, timeout, f"the {name} reply")
        return self.replies[corr]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class HealthzProbe:
    """Asks /api/healthz every 50 ms in a thread; counts requests that got no HTTP answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    resp.read()
                self.answered += 1
            except urllib.error.HTTPError:
                self.answered += 1  # 503 "degraded" is still the kiosk answering
            except OSError as exc:
                self.failures.append(str(exc))
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A plain Mosquitto on a free port."""
    with Mosquitto(tmp_path / "broker") as mosquitto:
        yield mosquitto


def test_reload_config_applies_live(
    tmp_path: Path, broker: Mosquitto, write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changed sections apply at once; a broken file or a new store id changes nothing."""
    monkeypatch.setitem(reload_module.CLOSE_LATER_S, "session", 0.5)
    kiosk_port = free_port()
    printer_port = free_port()  # nobody listens: the printer is degraded, still rebuilt

    def write(**changes: dict[str, Any]) -> Path:
        sections: dict[str, dict[str, Any]] = {
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker.port},
            "kiosk": {"port": kiosk_port, "idle_timeout_s": 60},
            "printer": {"enabled": True, "url": f"tcp://127.0.0.1:{printer_port}"},
            "beacons": {
                "enabled": True,
                "replay_file": str(DEMO_BEACONS),
                "ibeacon_uuids": ["f7826da6-4fa2-4e98-8024-bc5b71e0893e"],
                "exit_after_s": 10,
            },
        }
        for section, values in changes.items():
            sections.setdefault(section, {}).update(values)
        return write_config(**sections)

    path = write()
    with InProcessDaemon(path) as daemon:
        services = daemon.services
        wait_until(lambda: services.health.get("relay").state == "ok", 10, "relay ok")
        central = Central(broker)
        probe = HealthzProbe(f"{daemon.base_url}/api/healthz")
        try:
            old_printer, old_session = services.printer, services.session
            old_catalog = services.catalog
            supervisor = services.supervisor
            old_beacons = supervisor.component("beacons")
            old_kiosk = supervisor.component("kiosk")
            assert old_beacons.engine.settings.exit_after_s == 10

            # 1. Three sections change: each applies without a restart.
            write(
                kiosk={"idle_timeout_s": 33}, printer={"columns": 32}, beacons={"exit_after_s": 4}
            )
            answer = central.command("reload-config")
            assert answer["ok"] is True, answer
            result = answer["result"]
            assert result["applied_sections"] == ["beacons", "kiosk", "printer"]
            assert result["needs_restart"] == []
            assert "relay" not in result["rebuilt_components"]
            assert services.config.kiosk.idle_timeout_s == 33
            assert services.session is not old_session
            assert services.session.idle_timeout_s == 33
            assert services.printer is not old_printer
            assert services.printer.config.columns == 32
            beacons = supervisor.component("beacons")
            assert beacons is not old_beacons
            assert beacons.engine.settings.exit_after_s == 4
            assert supervisor.component("kiosk") is old_kiosk  # the web server never stopped
            # The old catalog serves requests in flight a little longer, then it is closed.
            assert services.catalog is not old_catalog
            assert old_catalog.count_products() == services.catalog.count_products()
            wait_until(lambda: old_catalog._closed, 5, "the old catalog closed")
            wait_until(lambda: services.health.get("beacons").state == "ok", 10, "beacons ok")
            fingerprint = services.config.fingerprint()

            # 2. A broken file: an error naming the key, nothing changes.
            write(
                kiosk={"idle_timeout_s": 33}, printer={"columns": 40}, beacons={"exit_after_s": 4}
            )
            answer = central.command("reload-config")
            assert answer["ok"] is False
            assert "printer.columns" in answer["error"]
            assert services.config.fingerprint() == fingerprint
            assert services.printer.config.columns == 32
            assert supervisor.component("beacons") is beacons

            # 3. A new store id needs a restart: reported, not applied.
            write(
                device={"store_id": "other-store"},
                kiosk={"idle_timeout_s": 33},
                printer={"columns": 32},
                beacons={"exit_after_s": 4},
            )
            answer = central.command("reload-config")
            assert answer["ok"] is True, answer
            assert answer["result"]["needs_restart"] == ["device.store_id"]
            assert answer["result"]["applied_sections"] == []
            assert services.config.device.store_id == STORE

            # 4. The mqtt section: the reply comes first, then the relay is replaced.
            old_relay = services.relay
            write(
                device={"store_id": "other-store"},
                mqtt={"health_interval_s": 30},
                kiosk={"idle_timeout_s": 33},
                printer={"columns": 32},
                beacons={"exit_after_s": 4},
            )
            answer = central.command("reload-config")
            assert answer["ok"] is True, answer
            assert answer["result"]["applied_sections"] == ["mqtt"]
            assert "relay" in answer["result"]["rebuilt_components"]
            wait_until(lambda: services.relay is not old_relay, 10, "the relay replaced")
            wait_until(lambda: services.health.get("relay").state == "ok", 10, "new relay ok")
            assert services.config.mqtt.health_interval_s == 30
            assert central.command("ping")["ok"] is True  # the new relay answers
        finally:
            probe.stop()
            central.close()
        assert probe.failures == []
        assert probe.answered >= 5  # it asked (every 50 ms) throughout the reloads


def test_sighup_reloads(
    tmp_path: Path, write_config: ConfigWriter, cli_env: dict[str, str]
) -> None:
    """`systemctl reload` (SIGHUP to `kiosk-edge run`) applies the file like the command."""
    kiosk_port = free_port()
    path = write_config(kiosk={"port": kiosk_port, "idle_timeout_s": 60})
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*KIOSK_EDGE, "run", "--config", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=cli_env,
        )
    try:
        url = f"http://127.0.0.1:{kiosk_port}/api/healthz"
        wait_until(lambda: _answers(url), 20, "the kiosk to serve")
        write_config(kiosk={"port": kiosk_port, "idle_timeout_s": 21})
        proc.send_signal(signal.SIGHUP)
        wait_until(
            lambda: "configuration reloaded: changed kiosk, rebuilt session" in log.read_text(),
            10,
            "the reload log line",
        )
        assert proc.poll() is None  # SIGHUP no longer ends the process
        assert _answers(url)
        write_config(kiosk={"port": kiosk_port, "idle_timeout_s": -1})
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload refused, nothing changed" in log.read_text(), 10, "refusal")
        assert "kiosk.idle_timeout_s" in log.read_text()
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def test_admin_reload_button(write_config: ConfigWriter) -> None:
    """Store IT's "Reload configuration" on /admin applies the file; it needs the CSRF token."""
    kiosk = {"port": free_port(), "admin_password": "demo-admin", "idle_timeout_s": 60}
    path = write_config(kiosk=kiosk)
    with InProcessDaemon(path) as daemon:
        services = daemon.services
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        admin = f"{daemon.base_url}/admin"

        def post(url: str, form: dict[str, str]) -> str:
            data = urllib.parse.urlencode(form).encode()
            with opener.open(url, data=data, timeout=30) as resp:
                return str(resp.read().decode())

        page = post(f"{admin}/login", {"password": "demo-admin"})
        assert 'data-testid="admin-reload-config"' in page
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        write_config(kiosk={**kiosk, "idle_timeout_s": 45, "port": kiosk["port"]})
        with pytest.raises(urllib.error.HTTPError) as refused:
            post(f"{admin}/reload-config", {"csrf_token": "forged"})
        assert refused.value.code == 400
        assert services.config.kiosk.idle_timeout_s == 60
        page = post(f"{admin}/reload-config", {"csrf_token": csrf})
        assert "Configuration reloaded: kiosk." in page
        assert services.config.kiosk.idle_timeout_s == 45
        assert services.session.idle_timeout_s == 45
        write_config(kiosk={**kiosk, "idle_timeout_s": "soon"})
        page = post(f"{admin}/reload-config", {"csrf_token": csrf})
        assert "nothing changed" in page
        assert "kiosk.idle_timeout_s" in page
        assert services.config.kiosk.idle_timeout_s == 45


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            resp.read()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True
