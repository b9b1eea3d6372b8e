"""Presence and health payloads read hardware from module-level paths (a fake tree here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.relay import status


@pytest.fixture
def fake_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the thermal zone, meminfo, uptime and boot id at files under tmp_path."""
    (tmp_path / "temp").write_text("61234\n")
    (tmp_path / "meminfo").write_text(
        "MemTotal:        3884096 kB\nMemFree:          120000 kB\nMemAvailable:    2000000 kB\n"
    )
    (tmp_path / "uptime").write_text("12345.67 40000.00\n")
    (tmp_path / "boot_id").write_text("0f5c1a2e-1111-4222-8333-444455556666\n")
    monkeypatch.setattr(status, "THERMAL_ZONE_PATH", tmp_path / "temp")
    monkeypatch.setattr(status, "MEMINFO_PATH", tmp_path / "meminfo")
    monkeypatch.setattr(status, "UPTIME_PATH", tmp_path / "uptime")
    monkeypatch.setattr(status, "BOOT_ID_PATH", tmp_path / "boot_id")
    return tmp_path


def test_health_report_reads_the_hardware(fake_tree: Path) -> None:
    """Temperature in °C, memory in bytes, uptimes, disk, outbox and components."""
    report = status.health_report(
        started=0.0,
        data_dir=fake_tree,
        outbox={"depth": 3},
        components={"relay": {"state": "ok"}},
    )
    assert report["cpu_temperature_c"] == 61.2
    assert report["memory"] == {"total": 3884096 * 1024, "available": 2000000 * 1024}
    assert report["system_uptime_s"] == 12345.67
    assert report["disk"]["total"] >= report["disk"]["free"] > 0
    assert len(report["load"]) == 3
    assert report["outbox"] == {"depth": 3}
    assert report["components"] == {"relay": {"state": "ok"}}


def test_missing_hardware_reads_as_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No thermal zone or meminfo (a container, a PC): None, never an exception."""
    monkeypatch.setattr(status, "THERMAL_ZONE_PATH", tmp_path / "absent")
    monkeypatch.setattr(status, "MEMINFO_PATH", tmp_path / "absent")
    (tmp_path / "garbage").write_text("hot\n")
    assert status.cpu_temperature_c() is None
    assert status.memory() is None
    monkeypatch.setattr(status, "THERMAL_ZONE_PATH", tmp_path / "garbage")
    assert status.cpu_temperature_c() is None
    assert status.disk(tmp_path / "no" / "such") is None


def test_birth_and_will_carry_time_and_boot_id(fake_tree: Path) -> None:
    """Presence messages can arrive out of order: both carry a timestamp and the boot id."""
    birth = status.birth(1_700_000_000.0, "abc123")
    will = status.will(1_700_000_000.0)
    assert birth["state"] == "online"
    assert will["state"] == "offline"
    assert birth["boot_id"] == will["boot_id"] == "0f5c1a2e111142228333444455556666"
    assert birth["config_hash"] == "abc123"
    assert birth["started"] == will["started"] == "2023-11-14T22:13:20.000Z"
    assert birth["time"].endswith("Z")
    assert "version" in birth
