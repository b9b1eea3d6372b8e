"""The scanner end to end: bleak's real BlueZ backend against BlueZ faked on a private D-Bus.

python-dbusmock's ``bluez5`` template plays BlueZ on a private system bus (dbus-daemon started
by the test). Devices get correctly typed ``ManufacturerData`` (a{qv}) and ``ServiceData``
(a{sv}) through the mock's UpdateProperties, then RSSI and payload changes made after the
scanner started must arrive as proximity events on the bus. bleak itself is not patched; a
``bluetoothctl`` stub on PATH answers bleak's version check.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

dbus = pytest.importorskip("dbus")
testcase = pytest.importorskip("dbusmock.testcase")

from edge.beacons import encode  # noqa: E402
from edge.beacons.component import BeaconsComponent, create_component  # noqa: E402
from edge.beacons.frames import EDDYSTONE_UUID  # noqa: E402
from edge.beacons.replay import parse_record  # noqa: E402
from edge.beacons.scanner import BleakSource  # noqa: E402
from edge.bus import Bus  # noqa: E402
from edge.config import parse_config  # noqa: E402
from edge.events import Event  # noqa: E402
from edge.health import Health  # noqa: E402
from edge.privacy import hash_identifier  # noqa: E402
from edge.services import Services  # noqa: E402
from tests.conftest import KIOSK_EDGE  # noqa: E402

pytestmark = pytest.mark.timeout(90)

SALT = "test-salt"
STORE_UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"
APP_UUID = "e2c56db5-dffb-48d2-b060-d0f5a71096e0"
NAMESPACE = "edd1ebeac04e5defa017"
PHONE = "4A:11:22:33:44:55"
STORE_BEACON = "C0:FF:EE:00:00:01"
FOREIGN = "5C:00:00:00:00:09"
MOCK_IFACE = "org.freedesktop.DBus.Mock"
BLUEZ_MOCK_IFACE = "org.bluez.Mock"
DEVICE_IFACE = "org.bluez.Device1"


class FakeBlueZ:
    """A private system bus with dbusmock's bluez5 template on it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.bus_daemon = testcase.PrivateDBus(testcase.BusType.SYSTEM)
        self.mocks: list[Any] = []
        self.log = (tmp_path / "dbusmock.log").open("w")

    def start(self, **parameters: Any) -> None:
        """Start the bus (once) and a bluez5 mock with template parameters."""
        if not self.mocks:
            self.bus_daemon.start()
        mock = testcase.SpawnedMock.spawn_with_template(
            "bluez5",
            dbus.Dictionary(parameters, signature="sv"),
            bustype=testcase.BusType.SYSTEM,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.mocks.append(mock)
        self.main = mock.obj
        self.conn = testcase.BusType.SYSTEM.get_connection()

    def add_adapter(self, name: str) -> None:
        """An adapter, e.g. hci0."""
        self.main.AddAdapter(name, "kiosk", dbus_interface=BLUEZ_MOCK_IFACE)

    def add_device(
        self,
        address: str,
        rssi: int,
        manufacturer: dict[int, bytes] | None = None,
        service: dict[str, bytes] | None = None,
        adapter: str = "hci0",
    ) -> str:
        """A device with correctly typed advertising data (the template's types are wrong)."""
        path: str = self.main.AddDevice(adapter, address, "beacon", dbus_interface=BLUEZ_MOCK_IFACE)
        self.advertise(path, rssi, manufacturer or {}, service or {})
        return path

    def advertise(
        self,
        path: str,
        rssi: int,
        manufacturer: dict[int, bytes] | None = None,
        service: dict[str, bytes] | None = None,
    ) -> None:
        """What BlueZ does on a new advertisement: update RSSI and data, emit PropertiesChanged."""
        props: dict[str, Any] = {"RSSI": dbus.Int16(rssi)}
        if manufacturer is not None:
            props["ManufacturerData"] = dbus.Dictionary(
                {
                    dbus.UInt16(k): dbus.Array(v, signature="y", variant_level=1)
                    for k, v in manufacturer.items()
                },
                signature="qv",
            )
        if service is not None:
            props["ServiceData"] = dbus.Dictionary(
                {
                    dbus.String(k): dbus.Array(v, signature="y", variant_level=1)
                    for k, v in service.items()
                },
                signature="sv",
            )
        device = self.conn.get_object("org.bluez", path)
        device.UpdateProperties(DEVICE_IFACE, props, dbus_interface=MOCK_IFACE)

    def monitor_patterns(self) -> list[tuple[int, int, bytes]]:
        """The or-patterns of the advertisement monitor a client registered with BlueZ.

        The mock only records the monitor's path; the patterns are read back from the
        client's exported object (call from a thread: the client answers on its own loop).
        """
        text = Path(self.log.name).read_text(encoding="utf-8", errors="replace")
        match = re.search(r'RegisterMonitor "([^"]+)"', text)
        assert match, "no monitor registered"
        path = match.group(1)
        bus_obj = self.conn.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus")
        for name in bus_obj.ListNames(dbus_interface="org.freedesktop.DBus"):
            if not name.startswith(":"):
                continue
            try:
                monitor = self.conn.get_object(name, path, introspect=False)
                raw = monitor.Get(
                    "org.bluez.AdvertisementMonitor1",
                    "Patterns",
                    dbus_interface="org.freedesktop.DBus.Properties",
                    timeout=2,
                )
            except dbus.exceptions.DBusException:
                continue
            return [(int(p[0]), int(p[1]), bytes(p[2])) for p in raw]
        raise AssertionError(f"no client exports {path}")

    def stop(self) -> None:
        """End the mocks and the dbus-daemon by PID (they inherit our file descriptors)."""
        for mock in self.mocks:
            mock.terminate()
        self.bus_daemon.stop()
        self.log.close()


@pytest.fixture
def bluez(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBlueZ]:
    """Fake BlueZ on a private system bus, a bluetoothctl stub on PATH; all ended afterwards."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    stub = bindir / "bluetoothctl"
    stub.write_text("#!/bin/sh\necho 'bluetoothctl: 5.66'\n", encoding="utf-8")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    old_address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    fake = FakeBlueZ(tmp_path)
    try:
        yield fake
    finally:
        fake.stop()
        if old_address is None:
            os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = old_address


def make_services(tmp_path: Path, **beacons: Any) -> Services:
    config = parse_config(
        {
            "device": {"identity_salt": SALT, "data_dir": str(tmp_path / "data")},
            "beacons": {
                "ibeacon_uuids": [STORE_UUID],
                "app_uuids": [APP_UUID],
                "eddystone_namespaces": [NAMESPACE],
                "exit_after_s": 1.0,
                "min_dwell_s": 1.0,
                **beacons,
            },
        },
        None,
    )
    return Services(config=config, bus=Bus(), health=Health(), salt=SALT)


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


Scenario = Callable[[BeaconsComponent, list[Event]], Awaitable[None]]


def run_component(services: Services, scenario: Scenario) -> list[Event]:
    """Run the beacons component with ``scenario`` beside it; returns the events published."""
    received: list[Event] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        services.loop = loop
        services.bus.bind(loop)
        services.bus.subscribe(received.append)
        component = create_component(services)
        assert isinstance(component, BeaconsComponent)
        assert isinstance(component.source, BleakSource)
        task = asyncio.create_task(component.run())
        try:
            await scenario(component, received)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    return received


def state(services: Services) -> tuple[str, str]:
    health = services.health.get("beacons")
    return ("", "") if health is None else (health.state, health.reason)


def of_type(events: list[Event], type_: str) -> list[Event]:
    return [e for e in events if e.type == type_]


async def walk_phone(bluez: FakeBlueZ, path: str, rssis: list[int], payload: bytes) -> None:
    for rssi in rssis:
        bluez.advertise(path, rssi, {0x004C: payload})
        await asyncio.sleep(0.05)


def test_passive_scan_turns_device_changes_into_events(bluez: FakeBlueZ, tmp_path: Path) -> None:
    """Passive scanning: a phone's iBeacon and RSSI changes give enter, zone, presence, exit."""
    bluez.start()
    bluez.add_adapter("hci0")
    token = encode.ibeacon(APP_UUID, 321, 654, -59)
    phone = bluez.add_device(PHONE, -70, {0x004C: token})
    foreign = bluez.add_device(
        FOREIGN, -50, {0x004C: encode.ibeacon("11111111-2222-3333-4444-555555555555", 1, 1, -59)}
    )
    services = make_services(tmp_path, scanning_mode="passive")
    phone_id = hash_identifier(SALT, "phone", "321:654")
    patterns: list[tuple[int, int, bytes]] = []

    async def scenario(component: BeaconsComponent, received: list[Event]) -> None:
        await wait_for(lambda: state(services)[0] == "ok", 15, "scanner ok")
        assert component.source.mode == "passive"
        patterns.extend(await asyncio.to_thread(bluez.monitor_patterns))
        # About 1 m away: enter in the near zone.
        for i in range(12):
            bluez.advertise(phone, -60 - i % 2, {0x004C: token})
            bluez.advertise(foreign, -50 - i % 2)
            await asyncio.sleep(0.05)
        await wait_for(lambda: bool(of_type(received, "kiosk.beacon.enter")), 5, "enter")
        # Held up to the kiosk: the immediate zone after the dwell.
        for i in range(60):
            bluez.advertise(phone, -42 - i % 2)
            await asyncio.sleep(0.05)
            if of_type(received, "kiosk.beacon.zone"):
                break
        await wait_for(lambda: bool(of_type(received, "kiosk.beacon.zone")), 5, "zone")
        # Silence: the phone leaves after exit_after_s.
        await wait_for(lambda: bool(of_type(received, "kiosk.beacon.exit")), 5, "exit")

    received = run_component(services, scenario)
    # The monitor bleak registered with BlueZ matches payload prefixes, not the flags byte.
    assert sorted(patterns) == [
        (0, 0x16, b"\xaa\xfe"),  # Eddystone service data
        (0, 0xFF, b"\x4c\x00\x02\x15"),  # iBeacon
    ]
    (enter,) = of_type(received, "kiosk.beacon.enter")
    assert enter.data["id"] == phone_id
    assert enter.data["beacon_class"] == "phone"
    assert enter.data["kind"] == "ibeacon"
    assert enter.data["zone"] == "near"
    (zone,) = of_type(received, "kiosk.beacon.zone")
    assert zone.data["zone"] == "immediate"
    assert zone.data["distance_m"] < 0.6
    (exit_,) = of_type(received, "kiosk.beacon.exit")
    assert exit_.data["id"] == phone_id
    assert exit_.data["dwell_s"] > 0
    presence = of_type(received, "local.presence.phone")
    assert [e.data for e in presence] == [
        {"id": phone_id, "zone": "near"},
        {"id": phone_id, "zone": "immediate"},
    ]
    # Only the allowed phone made events; no address and no clear token anywhere.
    text = repr([e.data for e in received])
    assert {e.data["id"] for e in received} == {phone_id}
    assert PHONE not in text
    assert FOREIGN not in text
    assert "654" not in text.replace(phone_id, "")


def test_eddystone_store_beacon_and_telemetry_over_dbus(bluez: FakeBlueZ, tmp_path: Path) -> None:
    """Eddystone service data (a{sv}) arrives: UID gives the store beacon, TLM its telemetry."""
    bluez.start()
    bluez.add_adapter("hci0")
    uid = encode.eddystone_uid(NAMESPACE, "0000000000a1", -20)
    beacon = bluez.add_device(STORE_BEACON, -70, service={EDDYSTONE_UUID: uid})
    services = make_services(tmp_path, scanning_mode="passive")

    async def scenario(component: BeaconsComponent, received: list[Event]) -> None:
        await wait_for(lambda: state(services)[0] == "ok", 15, "scanner ok")
        for i in range(6):
            bluez.advertise(beacon, -62 - i % 2, service={EDDYSTONE_UUID: uid})
            await asyncio.sleep(0.05)
        await wait_for(lambda: bool(of_type(received, "kiosk.beacon.enter")), 5, "enter")
        tlm = encode.eddystone_tlm(2870, 19.5, 4242, 3600.0)
        bluez.advertise(beacon, -63, service={EDDYSTONE_UUID: tlm})
        await wait_for(lambda: bool(of_type(received, "kiosk.beacon.telemetry")), 5, "telemetry")

    received = run_component(services, scenario)
    (enter,) = of_type(received, "kiosk.beacon.enter")
    assert enter.data["id"] == f"{NAMESPACE}:0000000000a1"
    assert enter.data["kind"] == "eddystone-uid"
    assert enter.data["beacon_class"] == "store"
    (telemetry,) = of_type(received, "kiosk.beacon.telemetry")
    assert telemetry.data == {
        "beacon_class": "store",
        "id": f"{NAMESPACE}:0000000000a1",
        "kind": "eddystone-tlm",
        "battery_mv": 2870,
        "temperature_c": 19.5,
        "adv_count": 4242,
        "uptime_s": 3600.0,
    }


def test_falls_back_to_active_scanning_and_says_so(bluez: FakeBlueZ, tmp_path: Path) -> None:
    """No AdvertisementMonitorManager1: active scanning, health degraded with the reason."""
    bluez.start(enable_monitor_api=False)
    bluez.add_adapter("hci0")
    token = encode.ibeacon(APP_UUID, 1, 2, -59)
    phone = bluez.add_device(PHONE, -70, {0x004C: token})
    services = make_services(tmp_path, scanning_mode="passive")

    async def scenario(component: BeaconsComponent, received: list[Event]) -> None:
        await wait_for(lambda: state(services)[0] == "degraded", 15, "degraded")
        assert component.source.mode == "active"
        await walk_phone(bluez, phone, [-60, -61] * 5, token)
        await wait_for(lambda: bool(of_type(received, "kiosk.beacon.enter")), 5, "enter")

    received = run_component(services, scenario)
    # BlueZ was asked not to drop repeated advertisements (bleak's default would: issue 1065).
    log = Path(bluez.log.name).read_text(encoding="utf-8", errors="replace")
    assert re.search(r'SetDiscoveryFilter \{[^}]*"DuplicateData": True', log), log[-2000:]
    health_state, reason = state(services)
    assert health_state == "degraded"
    assert "passive scanning unavailable" in reason
    assert "scanning actively" in reason
    health = services.health.get("beacons")
    assert health is not None
    assert health.metrics["scanning_mode"] == "active"
    assert of_type(received, "kiosk.beacon.enter")[0].data["id"] == hash_identifier(
        SALT, "phone", "1:2"
    )


def test_chosen_adapter_missing_then_plugged_in(bluez: FakeBlueZ, tmp_path: Path) -> None:
    """Adapter hci1 absent: failed with the reason, retried with backoff until it appears."""
    bluez.start()
    bluez.add_adapter("hci0")
    services = make_services(tmp_path, adapter="hci1", scanning_mode="active")

    async def scenario(component: BeaconsComponent, received: list[Event]) -> None:
        await wait_for(lambda: state(services)[0] == "failed", 15, "failed")
        assert "hci1" in state(services)[1]
        assert component.source.restarts >= 1
        bluez.add_adapter("hci1")  # the USB dongle is plugged in
        await wait_for(lambda: state(services)[0] == "ok", 15, "recovered")
        token = encode.ibeacon(APP_UUID, 5, 6, -59)
        phone = bluez.add_device(PHONE, -70, {0x004C: token}, adapter="hci1")
        await walk_phone(bluez, phone, [-60, -61] * 5, token)
        await wait_for(lambda: bool(of_type(received, "kiosk.beacon.enter")), 5, "enter")

    received = run_component(services, scenario)
    assert of_type(received, "kiosk.beacon.enter")
    assert state(services)[0] == "ok"


def test_record_command_writes_the_replay_shape(bluez: FakeBlueZ, tmp_path: Path) -> None:
    """`kiosk-edge beacons record` writes live advertisements that `replay` reads back."""
    bluez.start()
    bluez.add_adapter("hci0")
    token = encode.ibeacon(APP_UUID, 9, 9, -59)
    phone = bluez.add_device(PHONE, -70, {0x004C: token})
    out = tmp_path / "trace.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("KIOSK_EDGE_CONFIG", None)
    proc = subprocess.Popen(
        [*KIOSK_EDGE, "beacons", "record", str(out), "--duration", "6", "--adapter", "hci0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        # Advertise until the recorder has written something (it starts scanning first).
        while time.monotonic() < deadline and proc.poll() is None:
            bluez.advertise(phone, -60 - int(time.monotonic() * 10) % 3, {0x004C: token})
            time.sleep(0.1)
            if out.exists() and out.stat().st_size > 0:
                break
        for i in range(5):
            bluez.advertise(phone, -50 - i)
            time.sleep(0.05)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "recorded" in stderr
    records = [parse_record(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 3
    assert {r.address for r in records} == {PHONE}
    assert records[-1].manufacturer_data == {0x004C: token}
    assert all(r.t > 1.7e9 for r in records)  # epoch seconds


def test_record_on_a_missing_adapter_fails_clearly(bluez: FakeBlueZ, tmp_path: Path) -> None:
    """Recording on an adapter BlueZ does not have: exit 1 naming the adapter and the fix."""
    bluez.start()
    bluez.add_adapter("hci0")
    env = {**os.environ}
    env.pop("KIOSK_EDGE_CONFIG", None)
    command = ["beacons", "record", str(tmp_path / "t.jsonl"), "--duration", "2"]
    result = subprocess.run(
        [*KIOSK_EDGE, *command, "--adapter", "hci3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "nothing recorded" in result.stderr
    assert "hci3" in result.stderr
    assert "--adapter" in result.stderr


def test_bluez_restart_is_survived_by_restarting_the_scan(bluez: FakeBlueZ, tmp_path: Path) -> None:
    """bluetoothd dies and comes back: the silence watchdog restarts scanning, data flows."""
    bluez.start()
    bluez.add_adapter("hci0")
    token = encode.ibeacon(APP_UUID, 3, 3, -59)
    phone = bluez.add_device(PHONE, -70, {0x004C: token})
    health = Health()
    source = BleakSource(
        adapter="hci0", mode="passive", allowlist=None, health=health, stall_restart_s=1.5
    )
    seen: list[int] = []

    def sink(t: float, address: str, rssi: int, mfr: dict[int, bytes], svc: Any) -> None:
        seen.append(rssi)

    async def main() -> None:
        task = asyncio.create_task(source.async_run(sink, lambda: None))
        try:
            await wait_for(lambda: health.get("beacons") is not None, 15, "started")
            bluez.advertise(phone, -61, {0x004C: token})
            await wait_for(lambda: -61 in seen, 5, "first advertisement")
            # bluetoothd restarts: the old process is gone, a new one knows nothing yet.
            bluez.mocks[-1].terminate()
            bluez.start()
            bluez.add_adapter("hci0")
            await wait_for(lambda: source.restarts >= 1, 10, "scan restarted")
            new_phone = bluez.add_device(PHONE, -70, {0x004C: token})
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while -55 not in seen and loop.time() < deadline:
                bluez.advertise(new_phone, -55, {0x004C: token})
                await asyncio.sleep(0.2)
                bluez.advertise(new_phone, -56, {0x004C: token})
                await asyncio.sleep(0.2)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert -55 in seen
    assert source.restarts >= 1
    assert "no advertisement" in source.last_error
