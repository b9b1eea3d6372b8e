"""The doctor against real parts on loopback: Mosquitto with TLS (valid, expiring, expired
certificates; right and wrong passwords), BlueZ faked on a private D-Bus, a printer listener
and a closed port, a generated video as the camera, and the CLI's table, JSON and exit code."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.config import Config
from edge.doctor import CheckResult, evaluate_adapter, evaluate_camera, evaluate_printer
from edge.doctor_probes import probe_adapter, probe_camera, probe_printer, run_checks
from tests.conftest import KIOSK_EDGE, ConfigWriter, free_port
from tests.support.mosquitto import Mosquitto
from tests.support.printer_listener import PrinterListener

USER, PASSWORD = "kiosk-3", "broker-pass-9"


def make_server_pki(folder: Path, valid_days: float) -> dict[str, Path]:
    """A CA (valid a year) and a 127.0.0.1 server certificate valid for ``valid_days`` from now
    (negative: already expired)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + dt.timedelta(days=valid_days)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, not_after) - dt.timedelta(days=30))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(pem))
    paths["cert"].write_bytes(cert.public_bytes(pem))
    paths["key"].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[Any]:
    """Start a Mosquitto whose TLS listener uses a certificate valid for N days, with a password."""
    brokers: list[Mosquitto] = []

    def start(valid_days: float) -> tuple[int, Path]:
        name = f"b{len(brokers)}"
        pki = make_server_pki(tmp_path / name / "pki", valid_days)
        passwd = tmp_path / f"{name}.passwd"
        subprocess.run(
            ["mosquitto_passwd", "-c", "-b", str(passwd), USER, PASSWORD],
            check=True,
            capture_output=True,
            timeout=30,
        )
        port = free_port()
        extra = "\n".join(
            [
                "allow_anonymous false",
                f"password_file {passwd}",
                f"listener {port} 127.0.0.1",
                f"certfile {pki['cert']}",
                f"keyfile {pki['key']}",
            ]
        )
        broker = Mosquitto(tmp_path, extra_config=extra, name=name)
        brokers.append(broker)
        broker.start()
        wait_listening(port)
        return port, pki["ca"]

    yield start
    for broker in brokers:
        broker.kill()


def broker_config(port: int, ca: Path | None, password: str = PASSWORD) -> Config:
    config = Config()
    m = config.mqtt
    m.host, m.port, m.username, m.password = "127.0.0.1", port, USER, password
    m.tls.enabled = True
    m.tls.ca_file = ca
    return config


def broker_results(config: Config) -> dict[str, CheckResult]:
    from datetime import UTC, datetime

    from edge.doctor import evaluate_broker
    from edge.doctor_probes import probe_broker

    return {r.name: r for r in evaluate_broker(probe_broker(config), datetime.now(UTC))}


def test_broker_all_ok(tls_broker: Any) -> None:
    """DNS, TCP, TLS with a certificate valid 90 days, and the right password: all ok."""
    port, ca = tls_broker(90)
    results = broker_results(broker_config(port, ca))
    assert [r.status for r in results.values()] == ["ok"] * 4, results
    assert set(results) == {"broker.dns", "broker.tcp", "broker.tls", "broker.auth"}
    assert "valid until" in results["broker.tls"].detail


def test_broker_wrong_password_fails_auth(tls_broker: Any) -> None:
    """TLS is fine but the broker refuses the password: broker.auth fails."""
    port, ca = tls_broker(90)
    results = broker_results(broker_config(port, ca, password="wrong"))
    assert results["broker.tls"].status == "ok"
    assert results["broker.auth"].status == "fail"
    assert results["broker.auth"].fix


def test_broker_certificate_expiring_soon_warns(tls_broker: Any) -> None:
    """A broker certificate valid only 10 more days: a warning, auth still checked."""
    port, ca = tls_broker(10)
    results = broker_results(broker_config(port, ca))
    assert results["broker.tls"].status == "warn"
    assert "days left" in results["broker.tls"].detail
    assert results["broker.auth"].status == "ok"


def test_broker_expired_certificate_fails(tls_broker: Any) -> None:
    """An expired broker certificate: broker.tls fails and says so (with the date)."""
    port, ca = tls_broker(-3)
    results = broker_results(broker_config(port, ca))
    assert results["broker.tls"].status == "fail"
    assert "expired on" in results["broker.tls"].detail
    assert "broker.auth" not in results


def test_broker_closed_port_and_unknown_host() -> None:
    """Nothing listening: TCP fails; a name that does not resolve: DNS fails."""
    config = Config()
    config.mqtt.host, config.mqtt.port = "127.0.0.1", free_port()
    results = broker_results(config)
    assert results["broker.dns"].status == "ok"
    assert results["broker.tcp"].status == "fail"
    config.mqtt.host = "broker.invalid"
    results = broker_results(config)
    assert list(results) == ["broker.dns"]
    assert results["broker.dns"].status == "fail"


def test_printer_listener_closed_port_and_paper_out() -> None:
    """Ready: ok; out of paper or cover open: fail; no status answer: ok; closed port: fail."""
    port = free_port()
    listener = PrinterListener(port, "ok").start()
    try:
        reading = probe_printer(f"tcp://127.0.0.1:{port}")
        assert reading.status_byte == 0x12
        assert evaluate_printer(reading).status == "ok"
        listener.mode = "paper_out"
        result = evaluate_printer(probe_printer(f"tcp://127.0.0.1:{port}"))
        assert result.status == "fail"
        assert "paper" in result.detail
        listener.mode = "cover_open"
        cover = evaluate_printer(probe_printer(f"tcp://127.0.0.1:{port}"))
        assert cover.status == "fail"
        assert "cover open" in cover.detail
        listener.mode = "silent"
        silent = evaluate_printer(probe_printer(f"tcp://127.0.0.1:{port}"))
        assert silent.status == "ok"
        assert "no paper status" in silent.detail
    finally:
        listener.stop()
    closed = evaluate_printer(probe_printer(f"tcp://127.0.0.1:{free_port()}"))
    assert closed.status == "fail"
    assert "not reachable" in closed.detail


def test_camera_from_a_generated_video(tmp_path: Path) -> None:
    """A video OpenCV can read counts as a working camera; a missing device fails."""
    import cv2
    import numpy as np

    path = tmp_path / "cam.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15.0, (320, 240))
    for i in range(20):
        frame = np.full((240, 320, 3), i * 10, dtype=np.uint8)
        writer.write(frame)
    writer.release()
    reading = probe_camera(str(path))
    assert reading.opened
    assert reading.frames == 20
    assert (reading.width, reading.height) == (320, 240)
    assert evaluate_camera(reading, 15).status == "ok"
    missing = evaluate_camera(probe_camera(str(tmp_path / "nope.mp4")), 15)
    assert missing.status == "fail"


dbus = pytest.importorskip("dbus")
testcase = pytest.importorskip("dbusmock.testcase")


@pytest.fixture
def fake_bluez(tmp_path: Path) -> Iterator[Any]:
    """BlueZ played by dbusmock's bluez5 template on a private system bus; ended by PID."""
    import os

    old = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    bus = testcase.PrivateDBus(testcase.BusType.SYSTEM)
    bus.start()
    log = (tmp_path / "dbusmock.log").open("w")
    mocks: list[Any] = []

    def start(**parameters: Any) -> Any:
        mock = testcase.SpawnedMock.spawn_with_template(
            "bluez5",
            dbus.Dictionary(parameters, signature="sv"),
            bustype=testcase.BusType.SYSTEM,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        mocks.append(mock)
        return mock.obj

    try:
        yield start
    finally:
        for mock in mocks:
            mock.terminate()
        bus.stop()
        log.close()
        if old is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old


def test_adapter_through_fake_bluez(fake_bluez: Any) -> None:
    """hci0 powered and scanning with passive support: ok; hci1 absent: fail."""
    bluez = fake_bluez()
    bluez.AddAdapter("hci0", "kiosk", dbus_interface="org.bluez.Mock")
    idle = probe_adapter("hci0")
    assert (idle.present, idle.powered, idle.discovering, idle.passive_supported) == (
        True,
        True,
        False,
        True,
    )
    assert evaluate_adapter(idle).status == "warn"  # not scanning: the daemon is not running
    adapter = dbus.SystemBus().get_object("org.bluez", "/org/bluez/hci0")
    # What bleak does: a filter, then discovery (the template needs the filter set first).
    adapter.SetDiscoveryFilter(
        dbus.Dictionary({}, signature="sv"), dbus_interface="org.bluez.Adapter1"
    )
    adapter.StartDiscovery(dbus_interface="org.bluez.Adapter1")
    assert evaluate_adapter(probe_adapter("hci0")).status == "ok"
    adapter.Set(
        "org.bluez.Adapter1", "Powered", False, dbus_interface="org.freedesktop.DBus.Properties"
    )
    assert evaluate_adapter(probe_adapter("hci0")).status == "fail"
    absent = evaluate_adapter(probe_adapter("hci1"))
    assert absent.status == "fail"
    assert "hci1" in absent.detail


def test_adapter_without_passive_scanning(fake_bluez: Any) -> None:
    """BlueZ without AdvertisementMonitorManager1: passive scanning unsupported, a warning."""
    bluez = fake_bluez(enable_monitor_api=False)
    bluez.AddAdapter("hci0", "kiosk", dbus_interface="org.bluez.Mock")
    reading = probe_adapter("hci0")
    assert reading.passive_supported is False
    result = evaluate_adapter(reading, "passive")
    assert result.status == "warn"
    assert "Experimental" in result.fix


def test_no_bluez_on_the_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No system bus at all: a failure that says to start BlueZ."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    result = evaluate_adapter(probe_adapter("hci0"))
    assert result.status == "fail"
    assert "bluetooth" in result.fix


def test_cli_table_json_and_exit_code(
    write_config: ConfigWriter, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`kiosk-edge doctor` prints a table, `--json` one object per check, exit 1 on a failure."""
    port = free_port()
    listener = PrinterListener(port, "ok").start()
    try:
        good = write_config(printer={"enabled": True, "url": f"tcp://127.0.0.1:{port}"})
        proc = subprocess.run(
            [*KIOSK_EDGE, "doctor", "--config", str(good)],
            capture_output=True, text=True, env=cli_env, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "printer" in proc.stdout
        assert "failures" in proc.stdout
    finally:
        listener.stop()
    bad = write_config(
        "bad.toml",
        printer={"enabled": True, "url": f"tcp://127.0.0.1:{free_port()}"},
        mqtt={"enabled": True, "host": "127.0.0.1", "port": free_port()},
    )
    proc = subprocess.run(
        [*KIOSK_EDGE, "doctor", "--json", "--config", str(bad)],
        capture_output=True, text=True, env=cli_env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    checks = json.loads(proc.stdout)
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in checks)
    status = {c["name"]: c["status"] for c in checks}
    assert status["printer"] == "fail"
    assert status["broker.tcp"] == "fail"
    assert status["config"] == "ok"
    assert {"clock", "disk", "temperature", "throttling"} <= set(status)
    broken = tmp_path / "broken.toml"
    broken.write_text("[mqtt]\nport = 70000\n")
    proc = subprocess.run(
        [*KIOSK_EDGE, "doctor", "--json", "--config", str(broken)],
        capture_output=True, text=True, env=cli_env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    config_check = next(c for c in json.loads(proc.stdout) if c["name"] == "config")
    assert config_check["status"] == "fail"
    assert "70000" in config_check["detail"]


def test_run_checks_never_raises_on_a_probe_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe that crashes becomes a failed check; the other checks still run."""
    import edge.doctor_probes as doctor

    def boom(_url: str) -> Any:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(doctor, "probe_printer", boom)
    config = Config()
    config.beacons.enabled = config.barcodes.enabled = config.mqtt.enabled = False
    results = {r.name: r for r in run_checks(config)}
    assert results["printer"].status == "fail"
    assert "kaboom" in results["printer"].detail
    assert results["disk"].status in ("ok", "warn")
