"""Recordings: the JSON-lines format, `kiosk-edge beacons replay` and the replaying component."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.beacons.component import BeaconsComponent, create_component
from edge.beacons.replay import (
    Advertisement,
    RecordError,
    ReplayError,
    ReplaySource,
    format_record,
    parse_record,
)
from edge.bus import Bus
from edge.config import Config, parse_config
from edge.events import Event
from edge.health import Health
from edge.privacy import hash_identifier
from edge.services import Services
from tests.conftest import KIOSK_EDGE, REPO_ROOT

DEMO = REPO_ROOT / "firmware_config" / "demo" / "beacons.jsonl"
DEMO_SALT = "demo-salt-not-secret"
ALLOW = {
    "ibeacon_uuids": ["f7826da6-4fa2-4e98-8024-bc5b71e0893e"],
    "app_uuids": ["e2c56db5-dffb-48d2-b060-d0f5a71096e0"],
    "eddystone_namespaces": ["edd1ebeac04e5defa017"],
}
LINE = (
    '{"t": 12.3, "address": "AA:BB:CC:DD:EE:FF", "rssi": -61, "tx_power": null, '
    '"local_name": null, "manufacturer_data": {"76": "0215e2c56db5dffb48d2b060d0f5a71096e0'
    '00010002c5"}, "service_data": {}, "service_uuids": []}'
)


def test_parse_record_reads_the_architecture_shape() -> None:
    """The documented line parses; company ids are decimal strings, payloads hex."""
    adv = parse_record(LINE)
    assert (adv.t, adv.address, adv.rssi) == (12.3, "AA:BB:CC:DD:EE:FF", -61)
    assert adv.manufacturer_data == {76: bytes.fromhex(json.loads(LINE)["manufacturer_data"]["76"])}
    assert parse_record(format_record(adv)).as_dict() == adv.as_dict()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"address": "A", "rssi": -50}', '"t"'),
        ('{"t": 1, "address": "A", "rssi": "strong"}', '"rssi" must be an integer'),
        ('{"t": 1, "address": "A", "rssi": 127}', "outside"),
        ('{"t": 1, "address": "A", "rssi": -50, "manufacturer_data": {"x": "00"}}', "decimal"),
        ('{"t": 1, "address": "A", "rssi": -50, "manufacturer_data": {"76": "zz"}}', "hex"),
        ('{"t": 1, "address": "", "rssi": -50}', '"address"'),
        ('{"t": 1' + "0" * 400 + ', "address": "A", "rssi": -50}', '"t"'),
        ('{"t": Infinity, "address": "A", "rssi": -50}', '"t"'),
        ('{"t": 1e300, "address": "A", "rssi": -50}', "is not a time"),
        ('{"t": 1, "address": "A", "rssi": -50, "manufacturer_data": {"\u00b2": "00"}}', "decimal"),
    ],
)
def test_parse_record_names_the_problem(line: str, message: str) -> None:
    """A bad line raises RecordError saying what is wrong."""
    with pytest.raises(RecordError, match=re.escape(message)):
        parse_record(line)


def _replay(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KIOSK_EDGE, "beacons", "replay", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def demo_config(write_config) -> Path:  # type: ignore[no-untyped-def]
    path: Path = write_config(
        device={"identity_salt": DEMO_SALT},
        beacons={**ALLOW, "telemetry_interval_s": 60.0},
    )
    return path


def test_replay_demo_recording_prints_cloudevents(
    demo_config: Path, cli_env: dict[str, str]
) -> None:
    """The demo trace gives one enter and one exit per visit, hashed phones, no foreigners."""
    result = _replay(str(DEMO), "--config", str(demo_config), env=cli_env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events, "no events"
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["source"] == "urn:kiosk-edge:test-store:kiosk-t1"
        assert event["datacontenttype"] == "application/json"
    # No address (MAC) and no foreign transmitter ever appears.
    assert not re.search(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", result.stdout)
    for foreign in ("b9407f30", "0011223344556677", "2f234454"):
        assert foreign not in result.stdout
    presence = [e for e in events if e["type"].startswith("kiosk.beacon.") and "zone" in e["data"]]
    phones = {e["data"]["id"] for e in presence if e["data"]["beacon_class"] == "phone"}
    # Five phones, one of which rotated its token: six identities, all salted hashes.
    assert len(phones) == 6
    assert all(re.fullmatch(r"[0-9a-f]{32}", p) for p in phones)
    for ident in phones | {e["data"]["id"] for e in presence}:
        kinds = [e["type"] for e in presence if e["data"]["id"] == ident]
        assert kinds.count("kiosk.beacon.enter") == 1, ident
        assert kinds.count("kiosk.beacon.exit") == 1, ident
        assert kinds[0] == "kiosk.beacon.enter"
        assert kinds[-1] == "kiosk.beacon.exit"
    stores = {e["data"]["id"] for e in presence if e["data"]["beacon_class"] == "store"}
    assert stores == {
        "f7826da6-4fa2-4e98-8024-bc5b71e0893e:100:1",
        "f7826da6-4fa2-4e98-8024-bc5b71e0893e:100:2",
        "edd1ebeac04e5defa017:000000000001",
    }
    telemetry = [e for e in events if e["type"] == "kiosk.beacon.telemetry"]
    assert {e["data"]["id"] for e in telemetry} == stores
    assert len(telemetry) == 9  # three beacons, once a minute over three minutes
    near = [e for e in events if e["type"] == "local.presence.phone"]
    assert {e["data"]["zone"] for e in near} == {"near", "immediate"}
    # Deterministic: the same input prints the same lines (ids included).
    again = _replay(str(DEMO), "--config", str(demo_config), env=cli_env)
    assert again.stdout == result.stdout


def test_replay_skips_a_bad_line_with_its_number(
    tmp_path: Path, demo_config: Path, cli_env: dict[str, str]
) -> None:
    """One bad line is reported on stderr with its line number; the rest still counts."""
    lines = DEMO.read_text(encoding="utf-8").splitlines()[:400]
    lines.insert(2, '{"t": "soon"}')
    # An allowed beacon's advertisement stamped far beyond any clock: skipped, not a crash
    # (it would exit everyone at a time no CloudEvents timestamp can carry).
    far = json.loads(lines[300])
    far["t"] = 1e300
    lines.insert(301, json.dumps(far))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _replay(str(bad), "--config", str(demo_config), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert re.search(r"bad\.jsonl:3: skipped: .*\"t\"", result.stderr), result.stderr
    assert re.search(r"bad\.jsonl:302: skipped: .*is not a time", result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert "kiosk.beacon.enter" in result.stdout


@pytest.mark.parametrize("frames", [False, True])
def test_replay_stops_quietly_when_its_reader_goes_away(
    demo_config: Path, cli_env: dict[str, str], frames: bool
) -> None:
    """`beacons replay ... | head -1`: exit 141, no "cannot read" about the recording."""
    args = [str(DEMO), "--config", str(demo_config), *(["--frames"] if frames else [])]
    proc = subprocess.Popen(
        [*KIOSK_EDGE, "beacons", "replay", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert json.loads(proc.stdout.readline())
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_replay_frames_prints_every_decoded_frame(
    demo_config: Path, cli_env: dict[str, str]
) -> None:
    """--frames prints decoded frames with t and address, foreign ones included."""
    result = _replay(str(DEMO), "--frames", "--config", str(demo_config), env=cli_env)
    assert result.returncode == 0, result.stderr
    frames = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = {f["kind"] for f in frames}
    assert kinds == {"ibeacon", "eddystone-uid", "eddystone-tlm", "eddystone-url", "altbeacon"}
    url = next(f for f in frames if f["kind"] == "eddystone-url")
    assert set(url) == {"t", "address", "kind", "url", "tx_power"}
    assert url["url"] == "https://goo.gl/S6zT6P"
    tlm = next(f for f in frames if f["kind"] == "eddystone-tlm")
    assert set(tlm) == {
        "t",
        "address",
        "kind",
        "battery_mv",
        "temperature_c",
        "adv_count",
        "uptime_s",
    }


def test_replay_missing_file_is_bad_input(cli_env: dict[str, str], tmp_path: Path) -> None:
    """A missing recording is exit 2 with one sentence on stderr."""
    result = _replay(str(tmp_path / "nope.jsonl"), env=cli_env)
    assert result.returncode == 2
    assert "not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _services(tmp_path: Path, **beacons: object) -> Services:
    config = parse_config(
        {
            "device": {"identity_salt": DEMO_SALT, "data_dir": str(tmp_path)},
            "beacons": {**ALLOW, **beacons},
        },
        None,
    )
    return Services(config=config, bus=Bus(), health=Health(), salt=DEMO_SALT)


@pytest.mark.parametrize("content", [None, "not json\n"])
def test_component_names_an_unusable_recording_and_the_fix(
    tmp_path: Path, content: str | None
) -> None:
    """A missing or empty beacons.replay_file fails the component with one clear sentence."""
    path = tmp_path / "trace.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    component = create_component(_services(tmp_path, replay_file=str(path)))
    assert isinstance(component, BeaconsComponent)
    with pytest.raises(ReplayError, match=r"trace\.jsonl.*beacons\.replay_file"):
        asyncio.run(asyncio.wait_for(component.run(), 10))


def test_component_replays_onto_the_bus(tmp_path: Path) -> None:
    """The component publishes typed events on the bus and reports its health and rate."""
    lines = DEMO.read_text(encoding="utf-8").splitlines()
    t0 = json.loads(lines[0])["t"]
    head = [line for line in lines if json.loads(line)["t"] < t0 + 50]
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(head) + "\n", encoding="utf-8")
    services = _services(tmp_path, replay_file=str(short), replay_loop=False, exit_after_s=1.0)
    received: list[Event] = []

    async def scenario() -> None:
        services.bus.bind(asyncio.get_running_loop())
        services.bus.subscribe(received.append, "kiosk.beacon.", "local.presence.")
        component = create_component(services)
        assert isinstance(component, BeaconsComponent)
        assert isinstance(component.source, ReplaySource)
        component.source.speed = 25.0  # 50 s of recording in 2 s
        task = asyncio.create_task(component.run())
        await asyncio.sleep(3.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    types = [e.type for e in received]
    assert types.count("kiosk.beacon.enter") >= 4  # three store beacons and phones
    assert types.count("kiosk.beacon.enter") == types.count("kiosk.beacon.exit")
    assert "kiosk.beacon.telemetry" in types
    phone = hash_identifier(DEMO_SALT, "phone", "0:0")
    assert all(e.data.get("id") != phone for e in received)
    assert all(e.time.tzinfo is not None for e in received)
    health = services.health.get("beacons")
    assert health is not None
    assert health.state == "ok"
    assert health.metrics["scanning_mode"] == "replay"


def test_factory_disabled_and_scanner_choice(tmp_path: Path) -> None:
    """Disabled: no component; no replay file: the bleak scanner on the configured adapter."""
    services = _services(tmp_path, enabled=False)
    assert create_component(services) is None
    services = _services(tmp_path, adapter="hci1")
    component = create_component(services)
    assert isinstance(component, BeaconsComponent)
    from edge.beacons.scanner import BleakSource

    assert isinstance(component.source, BleakSource)
    assert component.source.adapter == "hci1"
    assert Config().beacons.scanning_mode == "passive"


def test_advertisement_as_dict_shape() -> None:
    """The recorder writes the documented keys."""
    adv = Advertisement(1.5, "AA:BB:CC:DD:EE:FF", -70, {76: b"\x02"}, {"x": b"\x01"})
    assert list(adv.as_dict()) == [
        "t",
        "address",
        "rssi",
        "tx_power",
        "local_name",
        "manufacturer_data",
        "service_data",
        "service_uuids",
    ]


def test_record_rejects_a_bad_adapter_name(cli_env: dict[str, str], tmp_path: Path) -> None:
    """`beacons record --adapter wlan0` is bad usage (exit 2), nothing is written."""
    out = tmp_path / "t.jsonl"
    result = subprocess.run(
        [*KIOSK_EDGE, "beacons", "record", str(out), "--adapter", "wlan0"],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "hci0" in result.stderr
    assert not out.exists()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=400)
@given(st.text(max_size=120))
def test_fuzz_parse_record_random_text(line: str) -> None:
    """Random text only ever raises RecordError."""
    with contextlib.suppress(RecordError):
        parse_record(line)


@settings(max_examples=400)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "t": json_values,
            "address": json_values,
            "rssi": json_values,
            "manufacturer_data": json_values,
            "service_data": json_values,
            "service_uuids": json_values,
            "tx_power": json_values,
            "local_name": json_values,
        },
    )
)
def test_fuzz_parse_record_random_shapes(obj: dict[str, object]) -> None:
    """Any JSON object with the right keys but random values parses or raises RecordError."""
    with contextlib.suppress(RecordError):
        adv = parse_record(json.dumps(obj))
        assert isinstance(adv.rssi, int)


def test_demo_recording_is_what_the_generator_makes(tmp_path: Path) -> None:
    """The shipped demo trace is reproducible from its generator (fixed seed): not stale."""
    out = tmp_path / "demo.jsonl"
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "data" / "beacons" / "generate.py"), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert out.read_bytes() == DEMO.read_bytes()
