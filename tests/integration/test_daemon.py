"""The daemon as store IT runs it: supervised components, healthz, systemd, signals."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from edge import daemon as daemon_module
from edge.config import load_config
from edge.daemon import build_services, fallback_config
from edge.services import Services
from edge.supervisor import Supervisor
from kiosk_ui.server import WebServer
from tests.conftest import KIOSK_EDGE, ConfigWriter, free_port
from tests.support.daemon import InProcessDaemon


def get_json(url: str, timeout: float = 2.0) -> tuple[int, dict[str, Any]]:
    """GET a JSON document, returning (status, body) for 2xx and error statuses alike."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_for_health(port: int, timeout: float = 15.0) -> tuple[int, dict[str, Any]]:
    """Poll /api/healthz until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get_json(f"http://127.0.0.1:{port}/api/healthz")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Exploding:
    """A component that fails at start-up, like a missing Bluetooth adapter."""

    name = "beacons"

    def __init__(self) -> None:
        self.starts = 0

    async def run(self) -> None:
        self.starts += 1
        raise OSError("No Bluetooth adapter found (hci0)")


def test_failing_component_is_reported_while_others_serve(write_config: ConfigWriter) -> None:
    """A component that raises is `failed` with its reason in healthz; the UI still serves."""
    config = load_config(write_config())

    async def scenario() -> tuple[int, dict[str, Any], int]:
        services = build_services(config)
        loop = asyncio.get_running_loop()
        services.loop = loop
        services.bus.bind(loop)
        supervisor = Supervisor(services.health)
        web = WebServer(services)
        exploding = Exploding()
        supervisor.start(web)
        supervisor.start(exploding)
        for _ in range(100):
            await asyncio.sleep(0.05)
            comp = services.health.get("beacons")
            if web.bound_port and comp and comp.state == "failed":
                break
        status, body = await loop.run_in_executor(
            None, get_json, f"http://127.0.0.1:{web.bound_port}/api/healthz"
        )
        # Restarted with backoff (the first retry comes within about a second).
        await asyncio.sleep(1.2)
        await supervisor.stop()
        return status, body, exploding.starts

    status, body, starts = asyncio.run(scenario())
    assert status == 503
    assert body["components"]["kiosk"]["state"] == "ok"
    assert body["components"]["beacons"]["state"] == "failed"
    assert "No Bluetooth adapter" in body["components"]["beacons"]["reason"]
    assert body["version"]
    assert starts >= 2


class Steady:
    """A component that works once built."""

    name = "flaky"

    def __init__(self, services: Services) -> None:
        self.services = services

    async def run(self) -> None:
        self.services.health.set(self.name, "ok")
        await asyncio.Event().wait()


def test_component_whose_factory_raises_is_retried_while_others_serve(
    write_config: ConfigWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A factory that raises (its database locked, say) is `failed` in healthz, the kiosk
    still serves, and the supervisor builds it again with backoff until it works."""
    calls: list[int] = []

    def flaky_factory(services: Services) -> Steady:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("database is locked")
        return Steady(services)

    monkeypatch.setattr(
        daemon_module,
        "COMPONENT_FACTORIES",
        [*daemon_module.COMPONENT_FACTORIES, ("flaky", flaky_factory)],
    )
    with InProcessDaemon(write_config()) as daemon:
        status, body = wait_for_health(daemon.config.kiosk.port)
        assert status == 503
        assert body["components"]["kiosk"]["state"] == "ok"
        assert body["components"]["flaky"]["state"] == "failed"
        assert "database is locked" in body["components"]["flaky"]["reason"]
        deadline = time.monotonic() + 5
        while daemon.services.health.get("flaky").state != "ok":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the component was not built again"
            time.sleep(0.05)
        status, _ = wait_for_health(daemon.config.kiosk.port)
        assert status == 200
    assert len(calls) == 2


def test_healthz_ok_when_all_components_ok(write_config: ConfigWriter) -> None:
    """With only the kiosk enabled and serving, healthz answers 200."""
    config = load_config(write_config())

    async def scenario() -> tuple[int, dict[str, Any]]:
        services = build_services(config)
        supervisor = Supervisor(services.health)
        web = WebServer(services)
        supervisor.start(web)
        while not web.bound_port:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        result = await asyncio.get_running_loop().run_in_executor(
            None, get_json, f"http://127.0.0.1:{web.bound_port}/api/healthz"
        )
        await supervisor.stop()
        return result

    status, body = asyncio.run(scenario())
    assert status == 200, body
    assert body["status"] == "ok"


def _start_daemon(config: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*KIOSK_EDGE, "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_systemd_notify_and_clean_sigterm(
    write_config: ConfigWriter, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Under systemd: READY=1 once serving, WATCHDOG=1 pings, and SIGTERM exits 0 within 5 s."""
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(15)
    config = write_config()
    port = load_config(config).kiosk.port
    env = {**cli_env, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000"}
    proc = _start_daemon(config, env)
    try:
        messages: list[str] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
            any("READY=1" in m for m in messages) and any("WATCHDOG=1" in m for m in messages)
        ):
            messages.append(sock.recv(4096).decode())
        assert any("READY=1" in m for m in messages), messages
        assert any("WATCHDOG=1" in m for m in messages), messages
        assert any("STATUS=all components ok" in m for m in messages), messages
        # READY=1 means serving: healthz answers right away.
        status, _ = wait_for_health(port, timeout=1)
        assert status == 200
        # Watchdog pings keep coming while the loop turns.
        watchdogs_before = sum("WATCHDOG=1" in m for m in messages)
        end = time.monotonic() + 0.9
        while time.monotonic() < end:
            messages.append(sock.recv(4096).decode())
        assert sum("WATCHDOG=1" in m for m in messages) >= watchdogs_before + 2

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    assert code == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert elapsed < 5.0


def test_sigterm_during_start_up_stops_within_5_s(
    write_config: ConfigWriter, cli_env: dict[str, str]
) -> None:
    """SIGTERM while the kiosk cannot bind its port (start-up still waiting for it) exits 0
    within 5 s, not after the 10 s READY timeout."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(kiosk={"port": port})
        proc = _start_daemon(config, cli_env)
        try:
            assert proc.stderr is not None
            seen = b""
            while b"restarting in" not in seen:  # the kiosk failed: start-up is waiting
                line = proc.stderr.readline()
                assert line, seen.decode()
                seen += line
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=15)
            elapsed = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == 0
    assert elapsed < 5.0


def test_sigint_also_stops_cleanly(write_config: ConfigWriter, cli_env: dict[str, str]) -> None:
    """Ctrl-C on a terminal stops the daemon with status 0."""
    config = write_config()
    port = load_config(config).kiosk.port
    proc = _start_daemon(config, cli_env)
    try:
        wait_for_health(port)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=6) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_config_serves_attention_screen(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """A kiosk with an unusable config still serves: an attention page and a 503 healthz."""
    config = tmp_path / "bad.toml"
    port = free_port()
    config.write_text(f"[mqtt]\nport = 70000\n\n[kiosk]\nport = {port}\n")
    proc = _start_daemon(config, cli_env)
    try:
        status, body = wait_for_health(port)
        assert status == 503
        assert any("mqtt.port" in p for p in body["config_problems"])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            assert "needs attention" in resp.read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_unusable_data_dir_serves_attention_screen(
    write_config: ConfigWriter, tmp_path: Path
) -> None:
    """A data directory that cannot be created is named on the attention screen (the daemon
    used to die with a traceback, leaving the kiosk blank in a restart loop)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    config = write_config(device={"data_dir": str(blocker / "data")})
    with InProcessDaemon(config) as daemon:
        status, body = wait_for_health(daemon.config.kiosk.port)
    assert status == 503
    assert any(p.startswith("device.data_dir: cannot use") for p in body["config_problems"])


@pytest.mark.parametrize(
    ("text", "port"),
    [
        ("kiosk = 5\n", 8080),
        ('[kiosk]\nport = "x"\nhost = 7\n', 8080),
        ("[kiosk]\nport = 18099\n[mqtt]\nport = 0\n", 18099),
        ("[kiosk\n", 8080),
    ],
)
def test_attention_config_survives_any_broken_file(tmp_path: Path, text: str, port: int) -> None:
    """The fallback keeps the kiosk's port when it is valid on its own and never raises,
    whatever shape the broken file has (`kiosk = 5` used to crash the daemon)."""
    path = tmp_path / "broken.toml"
    path.write_text(text)
    config = fallback_config(["broken"], path)
    assert config.kiosk.port == port
    assert config.kiosk.host == "127.0.0.1"
    assert not config.mqtt.enabled


@pytest.mark.parametrize("args", [["run", "--bogus"], ["nope"]])
def test_bad_usage_exits_2(args: list[str], cli_env: dict[str, str]) -> None:
    """Unknown options and commands are usage errors (exit 2)."""
    result = subprocess.run([*KIOSK_EDGE, *args], env=cli_env, capture_output=True, check=False)
    assert result.returncode == 2


def test_component_failure_is_an_event_for_central(
    write_config: ConfigWriter, tmp_path: Path
) -> None:
    """A component that fails produces one kiosk.component.state event naming it and why."""
    from edge.events import Event
    from tests.support.daemon import InProcessDaemon

    config = write_config(beacons={"enabled": True, "replay_file": str(tmp_path / "none.jsonl")})
    seen: list[Event] = []
    with InProcessDaemon(
        config, on_services=lambda s: s.bus.subscribe(seen.append, "kiosk.component.state")
    ):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            e.data["component"] == "beacons" for e in seen
        ):
            time.sleep(0.1)
        time.sleep(2.5)  # restarts with backoff must not repeat the event
    beacons = [e for e in seen if e.data["component"] == "beacons"]
    assert len(beacons) == 1, [e.data for e in seen]
    assert beacons[0].data["state"] == "failed"
    assert "none.jsonl" in beacons[0].data["reason"]
    assert not [e for e in seen if e.data["state"] == "disabled"]
