"""The doctor's judgements: pure functions from readings to ok / warn / fail with a fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge import doctor, doctor_probes
from edge.doctor import (
    AdapterReading,
    BrokerReading,
    CameraReading,
    CheckResult,
    ClockReading,
    DiskReading,
    PrinterReading,
    decode_offline_cause,
    decode_paper_status,
    decode_throttled,
    evaluate_adapter,
    evaluate_broker,
    evaluate_camera,
    evaluate_clock,
    evaluate_config,
    evaluate_disk,
    evaluate_printer,
    evaluate_temperature,
    evaluate_throttling,
    format_table,
    to_json,
    worst,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def test_adapter_ok_warn_fail() -> None:
    """Present, powered, scanning and passive: ok; no passive support: warn; off or absent: fail."""
    good = AdapterReading("hci0", True, True, True, True, True)
    assert evaluate_adapter(good).status == "ok"
    assert "passive scanning supported" in evaluate_adapter(good).detail
    no_passive = AdapterReading("hci0", True, True, True, True, False)
    result = evaluate_adapter(no_passive, "passive")
    assert result.status == "warn"
    assert "Experimental" in result.fix
    assert evaluate_adapter(no_passive, "active").status == "ok"
    off = AdapterReading("hci0", True, True, False, False, False)
    assert evaluate_adapter(off).status == "fail"
    assert "power" in evaluate_adapter(off).fix
    absent = AdapterReading("hci1", False, True)
    assert evaluate_adapter(absent).status == "fail"
    assert "hci1" in evaluate_adapter(absent).detail
    no_bluez = AdapterReading("hci0", False, False, error="no bus")
    assert "systemctl start bluetooth" in evaluate_adapter(no_bluez).fix
    idle = AdapterReading("hci0", True, True, True, False, True)
    assert evaluate_adapter(idle).status == "warn"


def test_camera() -> None:
    """Not opened or no frames: fail; a live camera at under half the rate: warn."""
    assert evaluate_camera(CameraReading("0", False), 15).status == "fail"
    assert evaluate_camera(CameraReading("0", True, 0), 15).status == "fail"
    slow = CameraReading("0", True, 10, 5.0, 640, 480, live=True)
    assert evaluate_camera(slow, 15).status == "warn"
    fine = CameraReading("0", True, 30, 14.2, 640, 480, live=True)
    assert evaluate_camera(fine, 15).status == "ok"
    assert "640x480" in evaluate_camera(fine, 15).detail
    video = CameraReading("demo.mp4", True, 30, 5.0, 640, 480, live=False)
    assert evaluate_camera(video, 15).status == "ok"


@pytest.mark.parametrize(
    ("byte", "paper"),
    [(0x12, "ok"), (0x1E, "near_end"), (0x72, "out"), (0x7E, "out"), (0x00, "ok")],
)
def test_paper_status_bits(byte: int, paper: str) -> None:
    """DLE EOT 4: bits 2-3 near end, bits 5-6 paper out (0x12 is the fixed-bit idle answer)."""
    assert decode_paper_status(byte) == paper


def test_printer() -> None:
    """Unreachable or out of paper: fail; near end: warn; no status answer: still ok."""
    assert evaluate_printer(PrinterReading("tcp://h:9100", False, error="refused")).status == "fail"
    assert evaluate_printer(PrinterReading("tcp://h:9100", True, 0x72)).status == "fail"
    assert evaluate_printer(PrinterReading("tcp://h:9100", True, 0x1E)).status == "warn"
    assert evaluate_printer(PrinterReading("tcp://h:9100", True, 0x12)).status == "ok"
    assert evaluate_printer(PrinterReading("usb://04b8:0202", True)).status == "ok"
    cover = PrinterReading("tcp://h:9100", True, 0x12, offline_byte=0x16)
    assert evaluate_printer(cover).status == "fail"
    assert "cover open" in evaluate_printer(cover).detail
    assert decode_offline_cause(0x12) == []
    assert decode_offline_cause(0x32) == ["stopped: no paper"]


def test_broker_steps_stop_at_first_failure() -> None:
    """DNS failure reports only DNS; TCP failure reports DNS ok and TCP failed."""
    dns = evaluate_broker(BrokerReading("nowhere", 8883, dns_error="Name not known"), NOW)
    assert [(r.name, r.status) for r in dns] == [("broker.dns", "fail")]
    tcp = evaluate_broker(
        BrokerReading("b", 8883, addresses=("192.0.2.1",), tcp_error="refused"), NOW
    )
    assert [(r.name, r.status) for r in tcp] == [("broker.dns", "ok"), ("broker.tcp", "fail")]


def test_broker_certificate_expiry() -> None:
    """Valid 90 days: ok; within 30 days: warn; expired: fail; auth refused: fail."""
    base = {"host": "b", "port": 8883, "addresses": ("192.0.2.1",), "tls_enabled": True}
    fine = evaluate_broker(
        BrokerReading(**base, cert_not_after=NOW + timedelta(days=90), auth_ok=True), NOW
    )
    assert worst(fine) == "ok"
    soon = by_name(
        evaluate_broker(
            BrokerReading(**base, cert_not_after=NOW + timedelta(days=10), auth_ok=True), NOW
        )
    )
    assert soon["broker.tls"].status == "warn"
    assert "10 days" in soon["broker.tls"].detail
    expired = by_name(
        evaluate_broker(
            BrokerReading(**base, cert_expired=True, cert_not_after=NOW - timedelta(days=2)), NOW
        )
    )
    assert expired["broker.tls"].status == "fail"
    assert "expired" in expired["broker.tls"].detail
    assert "broker.auth" not in expired
    refused = by_name(
        evaluate_broker(
            BrokerReading(
                **base,
                cert_not_after=NOW + timedelta(days=90),
                auth_ok=False,
                auth_detail="Not authorized",
            ),
            NOW,
        )
    )
    assert refused["broker.auth"].status == "fail"
    client = by_name(
        evaluate_broker(
            BrokerReading(
                **base,
                cert_not_after=NOW + timedelta(days=90),
                client_cert_not_after=NOW + timedelta(days=5),
                auth_ok=True,
            ),
            NOW,
        )
    )
    assert client["broker.client_cert"].status == "warn"
    missing = by_name(
        evaluate_broker(
            BrokerReading(
                **base, cert_not_after=NOW + timedelta(days=90), client_cert_error="missing"
            ),
            NOW,
        )
    )
    assert missing["broker.client_cert"].status == "fail"
    assert "csr" in missing["broker.client_cert"].fix


def test_clock() -> None:
    """Synchronised: ok; not synchronised: warn; a date before 2025: fail."""
    assert evaluate_clock(ClockReading(NOW, True, "timedatectl")).status == "ok"
    assert evaluate_clock(ClockReading(NOW, False, "timedatectl")).status == "warn"
    assert evaluate_clock(ClockReading(NOW, None, "")).status == "warn"
    past = datetime(1970, 1, 1, 0, 1, tzinfo=UTC)
    result = evaluate_clock(ClockReading(past, True, "timedatectl"))
    assert result.status == "fail"
    assert "NTP" in result.fix


def test_disk_thresholds() -> None:
    """Plenty: ok; under 1 GiB or 10 %: warn; under 200 MiB or 3 %: fail."""
    gib = 2**30
    assert evaluate_disk(DiskReading("/d", 32 * gib, 20 * gib)).status == "ok"
    assert evaluate_disk(DiskReading("/d", 32 * gib, 2 * gib)).status == "warn"
    assert evaluate_disk(DiskReading("/d", 4 * gib, gib // 2)).status == "warn"
    assert evaluate_disk(DiskReading("/d", 32 * gib, 100 * 2**20)).status == "fail"
    assert evaluate_disk(DiskReading("/d", 0, 0, "gone")).status == "fail"


def test_temperature_thresholds() -> None:
    """Below 70 °C ok, from 70 warn, from 80 fail; no sensor: ok."""
    assert evaluate_temperature(55_000).status == "ok"
    assert evaluate_temperature(72_500).status == "warn"
    assert evaluate_temperature(81_000).status == "fail"
    assert evaluate_temperature(None).status == "ok"


def test_throttled_bits() -> None:
    """0x50005 is the classic bad power supply: under-voltage now and since boot."""
    flags = decode_throttled(0x50005)
    assert flags == [
        "under-voltage now",
        "throttled now",
        "under-voltage since boot",
        "throttled since boot",
    ]
    assert evaluate_throttling(0x50005).status == "fail"
    assert evaluate_throttling(0x50000).status == "warn"
    assert evaluate_throttling(0).status == "ok"
    assert evaluate_throttling(None).status == "ok"


def test_fake_sysfs_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probes read the module-level sysfs paths: a fake tree drives ok, warn and fail."""
    temp = tmp_path / "thermal_zone0" / "temp"
    temp.parent.mkdir()
    throttled = tmp_path / "get_throttled"
    monkeypatch.setattr(doctor_probes, "THERMAL_ZONE_TEMP", temp)
    monkeypatch.setattr(doctor_probes, "SYSFS_THROTTLED", throttled)
    monkeypatch.setattr(doctor_probes, "VCGENCMD", "vcgencmd-not-here")
    for millideg, status in (("48312\n", "ok"), ("74000\n", "warn"), ("83100\n", "fail")):
        temp.write_text(millideg)
        assert evaluate_temperature(doctor_probes.probe_temperature()).status == status
    throttled.write_text("50005\n")
    value, source = doctor_probes.probe_throttled()
    assert (value, source) == (0x50005, "sysfs")
    throttled.unlink()
    assert doctor_probes.probe_throttled() == (None, "")
    temp.unlink()
    assert doctor_probes.probe_temperature() is None


def test_config_check() -> None:
    """Problems fail with every problem named."""
    result = evaluate_config(["mqtt.port: 70000 is out of range"], "/etc/kiosk-edge/edge.toml")
    assert result.status == "fail"
    assert "70000" in result.detail
    assert evaluate_config([], "x.toml").status == "ok"


def test_secrets_in_a_world_readable_config_warn(tmp_path: Path) -> None:
    """A password or salt written in a file every user can read warns, naming key and fix."""
    path = tmp_path / "edge.toml"
    path.write_text(
        '[device]\nidentity_salt = "s3cret-salt-value"\n'
        '[mail]\nhost = "smtp.example"\npassword = "hunter2"\n[mqtt]\npassword = ""\n'
    )
    path.chmod(0o644)
    probed = doctor_probes.probe_config_secrets(str(path))
    assert probed is not None
    mode, found = probed
    assert found == ["mail.password", "device.identity_salt"]  # the empty one is not a secret
    result = doctor.evaluate_config_secrets(str(path), mode, found)
    assert result.status == "warn"
    assert "mail.password, device.identity_salt" in result.detail
    assert "0644" in result.detail
    assert "hunter2" not in result.detail + result.fix
    assert "chmod 0640" in result.fix
    path.chmod(0o640)
    mode, found = doctor_probes.probe_config_secrets(str(path)) or (0, [])
    assert doctor.evaluate_config_secrets(str(path), mode, found).status == "ok"
    path.write_text('[mail]\nhost = "smtp.example"\n')
    path.chmod(0o644)
    mode, found = doctor_probes.probe_config_secrets(str(path)) or (0, [])
    assert doctor.evaluate_config_secrets(str(path), mode, found).status == "ok"
    path.write_text("not [ toml")
    assert doctor_probes.probe_config_secrets(str(path)) is None  # the config check reports that
    assert doctor_probes.probe_config_secrets(str(tmp_path / "missing.toml")) is None


def test_table_and_json() -> None:
    """The table shows a fix under what is not ok; JSON has name/status/detail/fix per check."""
    results = [
        CheckResult("disk", "ok", "20 GiB free"),
        CheckResult("clock", "warn", "not synchronised", "allow NTP"),
    ]
    table = format_table(results)
    assert "WARN  clock" in table
    assert "fix: allow NTP" in table
    assert "1 ok, 1 warnings, 0 failures" in table
    data = json.loads(to_json(results))
    assert data[1] == {
        "name": "clock",
        "status": "warn",
        "detail": "not synchronised",
        "fix": "allow NTP",
    }
    assert worst(results) == "warn"


def test_camera_held_by_the_daemon_is_judged_from_its_health(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the daemon running, the doctor does not open the camera (the daemon holds it)."""
    from edge.config import Config

    def must_not_open(_source: str) -> CameraReading:
        raise AssertionError("the doctor opened a camera the daemon is using")

    monkeypatch.setattr(doctor_probes, "probe_camera", must_not_open)
    config = Config()
    config.beacons.enabled = config.mqtt.enabled = config.printer.enabled = False
    running = {"camera": {"state": "ok", "metrics": {"fps": 14.9}}}
    result = {r.name: r for r in doctor_probes.run_checks(config, components=running)}["camera"]
    assert result.status == "ok"
    assert "14.9 fps" in result.detail
    slow = {"state": "ok", "metrics": {"fps": 3.0}}
    assert doctor.evaluate_camera_in_daemon(slow, 15).status == "warn"
    broken = {"state": "failed", "reason": "OSError: cannot open /dev/video0"}
    failed_result = doctor.evaluate_camera_in_daemon(broken, 15)
    assert failed_result.status == "fail"
    assert "/dev/video0" in failed_result.detail


def test_doctor_component_reports_to_health(tmp_path: Path) -> None:
    """The daemon's doctor is ok at once, then records each check; a failure degrades it."""
    import asyncio

    from edge.config import Config
    from edge.health import Health

    config = Config()
    config.device.data_dir = tmp_path
    health = Health()
    component = doctor_probes.DoctorComponent(config, health, interval_s=0.05)

    async def body() -> None:
        task = asyncio.create_task(component.run())
        await asyncio.sleep(0)
        state = health.get("doctor")
        assert state is not None
        assert state.state == "ok"
        while not component.last:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(body())
    snapshot = health.get("doctor")
    assert snapshot is not None
    assert {"clock", "disk", "temperature", "throttling"} <= set(snapshot.metrics)
    component.publish([CheckResult("disk", "fail", "50 MiB free", "free space")])
    after = health.get("doctor")
    assert after is not None
    assert after.state == "degraded"
    assert "disk" in after.reason
    component.publish([CheckResult("clock", "warn", "not synchronised", "allow NTP")])
    warned = health.get("doctor")
    assert warned is not None
    assert warned.state == "ok"


def test_rfkill_from_a_fake_sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A soft-blocked Bluetooth kill switch fails with the unblock command; Wi-Fi's is ignored."""
    monkeypatch.setattr(doctor_probes, "SYSFS_RFKILL", tmp_path)
    for index, (kind, soft) in enumerate((("wlan", "1"), ("bluetooth", "0"))):
        entry = tmp_path / f"rfkill{index}"
        entry.mkdir()
        (entry / "type").write_text(kind + "\n")
        (entry / "soft").write_text(soft + "\n")
        (entry / "hard").write_text("0\n")
    assert not doctor_probes.rfkill_blocked()
    (tmp_path / "rfkill1" / "soft").write_text("1\n")
    assert doctor_probes.rfkill_blocked()
    reading = AdapterReading("hci0", True, True, False, False, True, rfkill_blocked=True)
    result = evaluate_adapter(reading)
    assert result.status == "fail"
    assert "rfkill unblock bluetooth" in result.fix


def test_usb_and_serial_printers_from_a_fake_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """usb://VID:PID is found on a fake sysfs USB bus; a bad URL is a failure naming the form."""
    bus = tmp_path / "usb"
    dev = bus / "1-1.3"
    dev.mkdir(parents=True)
    (dev / "idVendor").write_text("04b8\n")
    (dev / "idProduct").write_text("0202\n")
    monkeypatch.setattr(doctor_probes, "SYSFS_USB_DEVICES", bus)
    assert doctor_probes.probe_printer("usb://04B8:0202").reachable
    missing = doctor_probes.probe_printer("usb://04b8:0e15")
    assert (missing.reachable, missing.error) == (False, "not on the USB bus")
    bad = doctor.evaluate_printer(doctor_probes.probe_printer("usb://epson"))
    assert bad.status == "fail"
    assert "usb://04b8:0202" in bad.detail
    serial = doctor_probes.probe_printer(f"serial://{tmp_path}/ttyUSB9")
    assert (serial.reachable, serial.kind) == (False, "serial printer")
