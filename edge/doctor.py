"""`kiosk-edge doctor`: is this kiosk healthy, and if not, what should store IT do?

Each check is a pure function from a *reading* (plain values gathered by a thin probe) to one
or more :class:`CheckResult` (``ok``/``warn``/``fail``, a detail and a fix), so the judgement
is tested with plain values and the probes stay small. Probes never raise: a probe that
crashes becomes a failed check naming the error. Hardware paths are module-level constants
that tests point at a fake tree.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from edge.config import SECRET_SOURCES, Config

if TYPE_CHECKING:
    from edge.takeaway.printer import Connection

_LOGGER = logging.getLogger(__name__)

Status = Literal["ok", "warn", "fail"]

# --- Hardware and system paths (module-level so tests point them at a fake tree) ---
# Linux lists Bluetooth controllers here whether or not BlueZ runs.
SYSFS_BLUETOOTH: Final = Path("/sys/class/bluetooth")
# Radio kill switches (type, soft, hard); a blocked radio keeps the adapter powered off.
SYSFS_RFKILL: Final = Path("/sys/class/rfkill")
# SoC temperature in millidegrees Celsius (the Pi's only thermal zone).
THERMAL_ZONE_TEMP: Final = Path("/sys/class/thermal/thermal_zone0/temp")
# Raspberry Pi kernels expose the firmware's throttling flags here (same bits as vcgencmd).
SYSFS_THROTTLED: Final = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")
# USB devices, for usb:// printers (idVendor / idProduct files).
SYSFS_USB_DEVICES: Final = Path("/sys/bus/usb/devices")
# Where provisioning keeps secrets; systemd hands them to the service under /run/credentials.
CREDENTIALS_STORE: Final = Path("/etc/kiosk-edge/credentials")
SERVICE_CREDENTIALS: Final = Path("/run/credentials/kiosk-edge.service")
# V4L2 cameras by index are /dev/videoN.
DEV_DIR: Final = Path("/dev")
VCGENCMD: Final = "vcgencmd"
TIMEDATECTL: Final = "timedatectl"

# --- Thresholds ---
# Pi 4 firmware starts throttling at 80 °C (Pi 5 at 85 °C): warn well before, fail at it.
TEMP_WARN_C: Final = 70.0
TEMP_FAIL_C: Final = 80.0
# SQLite needs room for WAL checkpoints and the outbox may hold days of events.
DISK_FAIL_BYTES: Final = 200 * 1024 * 1024
DISK_WARN_BYTES: Final = 1024 * 1024 * 1024
DISK_FAIL_FRACTION: Final = 0.03
DISK_WARN_FRACTION: Final = 0.10
# Issue 8: a broker or client certificate expiring within 30 days is a warning.
CERT_WARN_DAYS: Final = 30
# A clock before this date is certainly wrong (the Pi has no RTC and boots in the past).
MIN_PLAUSIBLE_TIME: Final = datetime(2025, 1, 1, tzinfo=UTC)
# Network probes wait this long: long enough for a slow store uplink, short for a person.
NET_TIMEOUT_S: Final = 4.0
# The camera gets this long to deliver frames for the rate measurement.
CAMERA_SAMPLE_S: Final = 2.0
CAMERA_SAMPLE_FRAMES: Final = 30
# A live camera below this share of the configured rate is a warning (bad light, USB 1.1).
CAMERA_MIN_FPS_SHARE: Final = 0.5
# OpenSSL's verify code for an expired certificate.
X509_V_ERR_CERT_HAS_EXPIRED: Final = 10


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, ok/warn/fail, what was found, and what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        """JSON view: name, status, detail, fix."""
        return asdict(self)


def ok(name: str, detail: str) -> CheckResult:
    """A passing check."""
    return CheckResult(name, "ok", detail)


def warn(name: str, detail: str, fix: str) -> CheckResult:
    """A check that passes with a handicap worth fixing."""
    return CheckResult(name, "warn", detail, fix)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    """A failing check."""
    return CheckResult(name, "fail", detail, fix)


# ---------------------------------------------------------------------------------------------
# Readings and pure evaluations
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdapterReading:
    """What the system says about the configured Bluetooth adapter."""

    adapter: str
    present: bool
    bluez_reachable: bool = True
    powered: bool | None = None
    discovering: bool | None = None
    passive_supported: bool | None = None
    error: str = ""
    rfkill_blocked: bool = False


def evaluate_adapter(r: AdapterReading, scanning_mode: str = "passive") -> CheckResult:
    """Present, powered, scanning, passive scanning supported."""
    name = "bluetooth"
    if not r.bluez_reachable and not r.present:
        return failed(
            name,
            f"BlueZ is not reachable on D-Bus and no adapter {r.adapter} in sysfs ({r.error})",
            "start BlueZ (systemctl start bluetooth) and check the adapter is plugged in",
        )
    if not r.present:
        return failed(
            name,
            f"no Bluetooth adapter {r.adapter}",
            "plug in the USB adapter or set beacons.adapter to one that exists (hciconfig -a)",
        )
    if not r.bluez_reachable:
        return failed(
            name,
            f"{r.adapter} exists but BlueZ is not reachable on D-Bus ({r.error})",
            "start BlueZ: systemctl start bluetooth",
        )
    if r.rfkill_blocked:
        return failed(
            name,
            f"{r.adapter} is blocked by rfkill",
            "rfkill unblock bluetooth (and check no image tweak blocks it at boot)",
        )
    if r.powered is False:
        return failed(
            name,
            f"{r.adapter} is powered off",
            "power it on (bluetoothctl power on; AutoEnable=true in /etc/bluetooth/main.conf) "
            "and check rfkill",
        )
    parts = [f"{r.adapter} powered"]
    parts.append("scanning" if r.discovering else "not scanning")
    if r.passive_supported:
        parts.append("passive scanning supported")
    detail = ", ".join(parts)
    if scanning_mode == "passive" and r.passive_supported is False:
        return warn(
            name,
            detail + ", passive scanning NOT supported (falls back to active)",
            "set Experimental = true in /etc/bluetooth/main.conf (BlueZ >= 5.56) and restart "
            'bluetooth, or set beacons.scanning_mode = "active"',
        )
    if not r.discovering:
        return warn(
            name,
            detail,
            "the daemon is not scanning: check `systemctl status kiosk-edge` and its beacons "
            "component",
        )
    return ok(name, detail)


@dataclass(frozen=True)
class CameraReading:
    """The camera (or stand-in video) as OpenCV sees it."""

    source: str
    opened: bool
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    live: bool = True
    error: str = ""


def evaluate_camera(r: CameraReading, wanted_fps: float) -> CheckResult:
    """Opens, delivers frames, at a usable rate."""
    name = "camera"
    if not r.opened:
        return failed(
            name,
            f"cannot open camera {r.source!r}" + (f" ({r.error})" if r.error else ""),
            "check the cable and that the kiosk-edge user is in the video group "
            "(ls -l /dev/video*), or set barcodes.camera",
        )
    if r.frames == 0:
        return failed(
            name,
            f"camera {r.source!r} opens but delivers no frames",
            "another program may hold it (fuser /dev/video0) or the source is empty",
        )
    # A file or folder plays as fast as it decodes: its rate says nothing about the camera.
    rate = f"at {r.fps:.1f} fps" if r.live else "from a recording"
    detail = f"{r.width}x{r.height} {rate} ({r.frames} frames read)"
    if r.live and r.fps < wanted_fps * CAMERA_MIN_FPS_SHARE:
        return warn(
            name,
            detail + f", below the configured {wanted_fps:g} fps",
            "improve the lighting (auto-exposure lowers the rate) or use a USB 2 port",
        )
    return ok(name, detail)


@dataclass(frozen=True)
class PrinterReading:
    """The receipt printer as seen from here."""

    url: str
    reachable: bool
    status_byte: int | None = None  # DLE EOT 4 (paper roll sensor) answer
    error: str = ""
    kind: str = ""
    offline_byte: int | None = None  # DLE EOT 2 (offline cause) answer


def decode_paper_status(byte: int) -> Literal["ok", "near_end", "out"]:
    """Decode an ESC/POS DLE EOT 4 answer: bits 5-6 paper out, bits 2-3 near end."""
    if byte & 0x60:
        return "out"
    if byte & 0x0C:
        return "near_end"
    return "ok"


def decode_offline_cause(byte: int) -> list[str]:
    """Decode an ESC/POS DLE EOT 2 answer: cover open (bit 2), feed button held (bit 3),
    stopped for paper (bit 5), an error (bit 6)."""
    causes = {0x04: "cover open", 0x08: "feed button held", 0x20: "stopped: no paper",
              0x40: "printer error"}  # fmt: skip
    return [text for bit, text in causes.items() if byte & bit]


def evaluate_printer(r: PrinterReading) -> CheckResult:
    """Reachable, answers status (not offline: cover, error), has paper."""
    name = "printer"
    if not r.reachable:
        return failed(
            name,
            f"printer {r.url} is not reachable" + (f" ({r.error})" if r.error else ""),
            "check it is switched on, its cable or network address, then printer.url",
        )
    offline = decode_offline_cause(r.offline_byte) if r.offline_byte is not None else []
    if "cover open" in offline or "printer error" in offline:
        return failed(
            name,
            f"printer {r.url} is offline: {', '.join(offline)}",
            "close the cover; if it still shows an error, switch the printer off and on",
        )
    if r.status_byte is None:
        return ok(name, f"{r.kind or 'printer'} {r.url} reachable (no paper status available)")
    paper = decode_paper_status(r.status_byte)
    if paper == "out":
        return failed(name, f"printer {r.url} is out of paper", "load a new paper roll")
    if paper == "near_end":
        return warn(name, f"printer {r.url}: paper nearly out", "have a paper roll ready")
    return ok(name, f"{r.kind or 'printer'} {r.url} reachable, paper ok")


@dataclass(frozen=True)
class BrokerReading:
    """The MQTT broker, step by step: DNS, TCP, TLS, certificates, authentication."""

    host: str
    port: int
    dns_error: str = ""
    addresses: tuple[str, ...] = ()
    tcp_error: str | None = None  # None: not tried
    tls_enabled: bool = False
    tls_error: str | None = None  # None: not tried or not used
    cert_expired: bool = False
    cert_not_after: datetime | None = None
    client_cert_not_after: datetime | None = None
    client_cert_error: str = ""
    auth_ok: bool | None = None  # None: not tried
    auth_detail: str = ""


def _days_left(moment: datetime, now: datetime) -> float:
    return (moment - now).total_seconds() / 86400


def evaluate_broker(r: BrokerReading, now: datetime) -> list[CheckResult]:
    """One result per step; later steps are reported only when earlier ones passed."""
    where = f"{r.host}:{r.port}"
    out: list[CheckResult] = []
    if r.dns_error:
        out.append(
            failed(
                "broker.dns",
                f"cannot resolve {r.host} ({r.dns_error})",
                "check the store's DNS, or mqtt.host in edge.toml",
            )
        )
        return out
    out.append(ok("broker.dns", f"{r.host} is {', '.join(r.addresses) or 'resolved'}"))
    if r.tcp_error is not None:
        out.append(
            failed(
                "broker.tcp",
                f"cannot connect to {where} ({r.tcp_error})",
                "check the firewall allows the port out, and mqtt.port",
            )
        )
        return out
    out.append(ok("broker.tcp", f"{where} accepts connections"))
    if r.tls_enabled:
        out.extend(_evaluate_tls(r, now))
        if any(c.status == "fail" for c in out):
            return out
    if r.auth_ok is True:
        out.append(ok("broker.auth", r.auth_detail or "the broker accepted the credentials"))
    elif r.auth_ok is False:
        out.append(
            failed(
                "broker.auth",
                f"the broker refused the connection: {r.auth_detail}",
                "check mqtt.username / the MQTT password credential, or the client "
                "certificate and the broker's ACL for this device",
            )
        )
    return out


def _evaluate_tls(r: BrokerReading, now: datetime) -> list[CheckResult]:
    out: list[CheckResult] = []
    if r.cert_expired or (r.cert_not_after is not None and r.cert_not_after <= now):
        when = f" on {r.cert_not_after:%Y-%m-%d}" if r.cert_not_after else ""
        out.append(
            failed(
                "broker.tls",
                f"the broker's certificate expired{when}",
                "the broker's operator must renew its certificate; if the date looks wrong, "
                "fix this kiosk's clock first",
            )
        )
        return out
    if r.tls_error:
        out.append(
            failed(
                "broker.tls",
                f"TLS handshake failed ({r.tls_error})",
                "check mqtt.tls.ca_file is the CA that signed the broker, and the broker's name",
            )
        )
        return out
    if r.cert_not_after is not None:
        days = _days_left(r.cert_not_after, now)
        detail = f"TLS ok, broker certificate valid until {r.cert_not_after:%Y-%m-%d}"
        if days < CERT_WARN_DAYS:
            out.append(
                warn(
                    "broker.tls",
                    f"{detail} ({days:.0f} days left)",
                    "ask the broker's operator to renew its certificate",
                )
            )
        else:
            out.append(ok("broker.tls", detail))
    else:
        out.append(ok("broker.tls", "TLS ok"))
    if r.client_cert_error:
        out.append(
            failed(
                "broker.client_cert",
                r.client_cert_error,
                "get mqtt-client.csr signed by central's CA and save the certificate as "
                "mqtt.tls.cert_file (or rerun kiosk-edge provision --cert FILE)",
            )
        )
    elif r.client_cert_not_after is not None:
        days = _days_left(r.client_cert_not_after, now)
        detail = f"client certificate valid until {r.client_cert_not_after:%Y-%m-%d}"
        if days <= 0:
            out.append(
                failed(
                    "broker.client_cert",
                    f"client certificate expired on {r.client_cert_not_after:%Y-%m-%d}",
                    "send mqtt-client.csr to central for a new certificate",
                )
            )
        elif days < CERT_WARN_DAYS:
            out.append(
                warn(
                    "broker.client_cert",
                    f"{detail} ({days:.0f} days left)",
                    "send mqtt-client.csr to central for a new certificate",
                )
            )
        else:
            out.append(ok("broker.client_cert", detail))
    return out


@dataclass(frozen=True)
class ClockReading:
    """The system clock and whether NTP has synchronised it."""

    now: datetime
    synchronized: bool | None  # None: cannot tell
    source: str = ""


def evaluate_clock(r: ClockReading) -> CheckResult:
    """NTP synchronised and plausible: a wrong clock breaks TLS and event times."""
    name = "clock"
    stamp = f"{r.now:%Y-%m-%d %H:%M:%S} UTC"
    if r.now < MIN_PLAUSIBLE_TIME:
        return failed(
            name,
            f"the clock says {stamp}, which is certainly wrong",
            "allow NTP (UDP 123) to the store's time server: timedatectl set-ntp true",
        )
    if r.synchronized is False:
        return warn(
            name,
            f"{stamp}, not synchronised by NTP ({r.source})",
            "allow NTP (UDP 123) out, or set a local NTP server in /etc/systemd/timesyncd.conf",
        )
    if r.synchronized is None:
        return warn(
            name,
            f"{stamp}, NTP state unknown ({r.source})",
            "check `timedatectl status` shows 'System clock synchronized: yes'",
        )
    return ok(name, f"{stamp}, synchronised ({r.source})")


@dataclass(frozen=True)
class DiskReading:
    """Space on the file system holding the data directory."""

    path: str
    total: int
    free: int
    error: str = ""


def evaluate_disk(r: DiskReading) -> CheckResult:
    """Enough free space for the databases and the outbox."""
    name = "disk"
    if r.error:
        return failed(name, f"cannot read {r.path}: {r.error}", "check device.data_dir exists")
    fraction = r.free / r.total if r.total else 0.0
    detail = (
        f"{r.free / 2**30:.1f} GiB free of {r.total / 2**30:.1f} GiB ({fraction:.0%}) at {r.path}"
    )
    fix = "free space: sudo journalctl --vacuum-size=50M, remove old images, or a larger card"
    if r.free < DISK_FAIL_BYTES or fraction < DISK_FAIL_FRACTION:
        return failed(name, detail, fix)
    if r.free < DISK_WARN_BYTES or fraction < DISK_WARN_FRACTION:
        return warn(name, detail, fix)
    return ok(name, detail)


def evaluate_temperature(millidegrees: int | None) -> CheckResult:
    """CPU temperature below the throttling point."""
    name = "temperature"
    if millidegrees is None:
        return ok(name, "no CPU temperature sensor here")
    celsius = millidegrees / 1000
    detail = f"CPU at {celsius:.1f} °C"
    fix = "give the Pi air: a heatsink or fan, an open case, no direct sun"
    if celsius >= TEMP_FAIL_C:
        return failed(name, detail + " (the firmware throttles the CPU)", fix)
    if celsius >= TEMP_WARN_C:
        return warn(name, detail, fix)
    return ok(name, detail)


THROTTLE_FLAGS: Final[dict[int, str]] = {
    0: "under-voltage now",
    1: "frequency capped now",
    2: "throttled now",
    3: "soft temperature limit now",
    16: "under-voltage since boot",
    17: "frequency capped since boot",
    18: "throttled since boot",
    19: "soft temperature limit since boot",
}


def decode_throttled(value: int) -> list[str]:
    """The firmware's get_throttled bits as words (bits 0-3 now, 16-19 since boot)."""
    return [text for bit, text in THROTTLE_FLAGS.items() if value & (1 << bit)]


def evaluate_throttling(value: int | None, source: str = "") -> CheckResult:
    """Under-voltage and throttling, now or since boot."""
    name = "throttling"
    if value is None:
        return ok(name, "not a Raspberry Pi (no firmware throttling report)")
    flags = decode_throttled(value)
    if not flags:
        return ok(name, f"no under-voltage or throttling since boot ({source})")
    detail = ", ".join(flags) + f" (0x{value:x})"
    fix = "use the official power supply (5.1 V, 3 A for a Pi 4, 5 A for a Pi 5) and cool the Pi"
    if value & 0x1:
        return failed(name, detail, fix)
    return warn(name, detail, fix)


def evaluate_config(problems: Iterable[str], path: str) -> CheckResult:
    """The configuration file loads without problems."""
    found = list(problems)
    if found:
        return failed(
            "config",
            f"{path}: " + "; ".join(found),
            f"fix the keys named, then `kiosk-edge config check {path}`",
        )
    return ok("config", f"{path} is valid")


def evaluate_config_secrets(path: str, mode: int, secrets_in_file: list[str]) -> CheckResult:
    """Passwords or the salt written in a config file every user can read: a warning."""
    name = "config.secrets"
    if not secrets_in_file:
        return ok(name, "no secrets in the file (they come from credentials or the environment)")
    if not mode & 0o007:
        return ok(name, f"{', '.join(secrets_in_file)} in {path}, not readable by other users")
    return warn(
        name,
        f"{path} holds {', '.join(secrets_in_file)} and every user can read it "
        f"(mode {mode & 0o777:04o})",
        f"move them to /etc/kiosk-edge/credentials/ (0600, loaded by the unit's "
        f"LoadCredential=), or `chown root:kiosk-edge {path} && chmod 0640 {path}`",
    )


# ---------------------------------------------------------------------------------------------
# Probes: thin, never raise
# ---------------------------------------------------------------------------------------------


def probe_config_secrets(path: str) -> tuple[int, list[str]] | None:
    """The file's mode and the secret keys it sets itself; None when it cannot be read."""
    try:
        mode = os.stat(path).st_mode
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    found = []
    for section, key in SECRET_SOURCES:
        table = data.get(section)
        if isinstance(table, dict) and table.get(key):
            found.append(f"{section}.{key}")
    return mode, found


def _config_secrets(path: str) -> list[CheckResult]:
    probed = probe_config_secrets(path)
    return [] if probed is None else [evaluate_config_secrets(path, *probed)]


def rfkill_blocked(kind: str = "bluetooth") -> bool:
    """True when a kill switch of this type is soft- or hard-blocked."""
    for entry in SYSFS_RFKILL.glob("rfkill*"):
        with contextlib.suppress(OSError):
            if (entry / "type").read_text().strip() != kind:
                continue
            if any((entry / f).read_text().strip() == "1" for f in ("soft", "hard")):
                return True
    return False


def probe_adapter(adapter: str) -> AdapterReading:
    """Read the adapter from sysfs and BlueZ over D-Bus (dbus-fast, which bleak already uses)."""
    in_sysfs = (SYSFS_BLUETOOTH / adapter).exists()
    blocked = rfkill_blocked()
    try:
        objects = _run_async(_bluez_objects())
    except Exception as exc:  # no bus, no BlueZ, permission denied
        return AdapterReading(
            adapter, in_sysfs, bluez_reachable=False, error=_short(exc), rfkill_blocked=blocked
        )
    interfaces = objects.get(f"/org/bluez/{adapter}")
    if interfaces is None or "org.bluez.Adapter1" not in interfaces:
        return AdapterReading(adapter, present=False, bluez_reachable=True)
    props = interfaces["org.bluez.Adapter1"]
    return AdapterReading(
        adapter,
        present=True,
        powered=bool(props.get("Powered")),
        discovering=bool(props.get("Discovering")),
        passive_supported="org.bluez.AdvertisementMonitorManager1" in interfaces,
        rfkill_blocked=blocked,
    )


async def _bluez_objects() -> dict[str, dict[str, dict[str, Any]]]:
    from dbus_fast import BusType, Message, MessageType
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        reply = await bus.call(
            Message(
                destination="org.bluez",
                path="/",
                interface="org.freedesktop.DBus.ObjectManager",
                member="GetManagedObjects",
            )
        )
    finally:
        bus.disconnect()
    if reply is None or reply.message_type == MessageType.ERROR:
        detail = reply.error_name if reply is not None else "no reply"
        raise ConnectionError(f"BlueZ did not answer ({detail})")
    raw: dict[str, dict[str, dict[str, Any]]] = reply.body[0]
    return {
        path: {
            iface: {k: getattr(v, "value", v) for k, v in props.items()}
            for iface, props in ifs.items()
        }
        for path, ifs in raw.items()
    }


def _run_async(coro: Any) -> Any:
    """Run a coroutine to completion from synchronous code, even inside a running loop."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(asyncio.wait_for(coro, NET_TIMEOUT_S))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(asyncio.wait_for(coro, NET_TIMEOUT_S))
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="doctor-async")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def probe_camera(
    source: str,
    sample_s: float = CAMERA_SAMPLE_S,
    size: tuple[int, int] = (640, 480),
    fps: float = 15.0,
) -> CameraReading:
    """Open the capture source as the camera component does (same mode) and time a few frames."""
    try:
        from edge.barcodes.camera import CaptureError, open_source, source_kind
    except ImportError as exc:
        return CameraReading(source, opened=False, error=f"OpenCV missing: {exc}")
    live = source_kind(source) in ("device", "url")
    device = DEV_DIR / f"video{source}" if source.isdigit() else Path(source)
    if live and "://" not in source and not device.exists():
        return CameraReading(source, opened=False, live=live, error=f"no {device}")
    try:
        capture = open_source(source, *size, fps)
    except CaptureError as exc:
        return CameraReading(source, opened=False, live=live, error=str(exc))
    frames = width = height = 0
    started = time.monotonic()
    try:
        while frames < CAMERA_SAMPLE_FRAMES and time.monotonic() - started < sample_s:
            frame = capture.read()
            if frame is None:
                break
            frames += 1
            height, width = frame.shape[:2]
    except CaptureError as exc:
        if not frames:
            return CameraReading(source, True, live=live, error=str(exc))
    finally:
        capture.close()
    elapsed = time.monotonic() - started
    rate = frames / elapsed if live and elapsed > 0 else 0.0
    return CameraReading(source, True, frames, rate, width, height, live)


def _status_query(conn: Connection, request: bytes) -> int | None:
    """One DLE EOT answer byte, None when the printer stays silent or closes the link."""
    conn.write(request)
    try:
        answer = conn.read()
    except TimeoutError:
        return None
    return answer[-1] if answer else None


def probe_printer(url: str) -> PrinterReading:
    """Reach the printer named by printer.url and ask a network printer for its paper status."""
    from edge.takeaway.printer import STATUS_OFFLINE, STATUS_PAPER, PrinterFault, connect
    from edge.takeaway.printer_url import PrinterUrlError, parse_printer_url

    try:
        target = parse_printer_url(url)  # the printer's own parser: same URLs accepted
    except PrinterUrlError as exc:
        return PrinterReading(url, False, error=str(exc))
    if target.kind == "tcp":
        kind = "network printer"
        try:
            conn = connect(target, NET_TIMEOUT_S)  # the print queue's own link to the printer
        except PrinterFault as exc:
            return PrinterReading(url, False, error=exc.detail or exc.problem, kind=kind)
        try:
            offline = _status_query(conn, STATUS_OFFLINE)
            paper = _status_query(conn, STATUS_PAPER) if offline is not None else None
        except OSError as exc:
            return PrinterReading(url, False, error=_short(exc), kind=kind)
        finally:
            conn.close()
        return PrinterReading(url, True, paper, kind=kind, offline_byte=offline)
    if target.kind == "usb":
        vid, pid = f"{target.vendor:04x}", f"{target.product:04x}"
        for dev in SYSFS_USB_DEVICES.glob("*"):
            with contextlib.suppress(OSError):
                if (dev / "idVendor").read_text().strip() == vid and (
                    (dev / "idProduct").read_text().strip() == pid
                ):
                    return PrinterReading(url, True, kind="USB printer")
        return PrinterReading(url, False, error="not on the USB bus", kind="USB printer")
    path = Path(target.path)
    if target.kind == "serial":
        if path.exists():
            return PrinterReading(
                url,
                os.access(path, os.R_OK | os.W_OK),
                kind="serial printer",
                error="" if os.access(path, os.W_OK) else "no write permission",
            )
        return PrinterReading(url, False, error=f"{path} does not exist", kind="serial printer")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the printer creates it
        folder = folder.parent
    writable = folder.is_dir() and os.access(folder, os.W_OK)
    return PrinterReading(
        url, writable, error="" if writable else f"{folder} is not writable", kind="file"
    )


def probe_broker(config: Config, timeout: float = NET_TIMEOUT_S) -> BrokerReading:
    """DNS, TCP, TLS (with both certificates' expiry) and an MQTT CONNECT to the broker."""
    m = config.mqtt
    host, port = m.host, m.port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return BrokerReading(host, port, dns_error=_short(exc))
    addresses = tuple(dict.fromkeys(str(i[4][0]) for i in infos))
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return BrokerReading(host, port, addresses=addresses, tcp_error=_short(exc))
    fields: dict[str, Any] = {"host": host, "port": port, "addresses": addresses}
    if m.tls.enabled:
        fields["tls_enabled"] = True
        fields.update(_probe_tls(config, timeout))
        if fields.get("tls_error") or fields.get("cert_expired"):
            return BrokerReading(tcp_error=None, **fields)
    from edge.relay.mqtt import try_connect

    client_id = f"kiosk-edge-doctor-{config.device.store_id}-{config.device.device_id}"
    tls = _tls_context(config) if m.tls.enabled else None
    auth_ok, detail = try_connect(m, client_id, tls, timeout)
    return BrokerReading(tcp_error=None, auth_ok=auth_ok, auth_detail=detail, **fields)


def readable_secret_path(path: Path | None) -> Path | None:
    """A credential path as the daemon sees it, else its source in the credentials store.

    Provisioned configs name /run/credentials/kiosk-edge.service/NAME, which exists only
    inside the service; the doctor, run from a shell, reads the root-only original.
    """
    if path is None or path.exists():
        return path
    if path.parent == SERVICE_CREDENTIALS and (CREDENTIALS_STORE / path.name).exists():
        return CREDENTIALS_STORE / path.name
    return path


def _tls_context(config: Config) -> ssl.SSLContext:
    t = config.mqtt.tls
    ctx = ssl.create_default_context(cafile=str(t.ca_file) if t.ca_file else None)
    if t.insecure_skip_verify:
        ctx.check_hostname = False
    key = readable_secret_path(t.key_file)
    if t.cert_file is not None and t.cert_file.exists() and key is not None and key.exists():
        ctx.load_cert_chain(str(t.cert_file), str(key))
    return ctx


def _cert_not_after(der: bytes) -> datetime:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc


def _probe_tls(config: Config, timeout: float) -> dict[str, Any]:
    m = config.mqtt
    out: dict[str, Any] = {}
    t = m.tls
    if t.cert_file is not None:
        if not t.cert_file.exists():
            out["client_cert_error"] = f"client certificate {t.cert_file} is missing"
        else:
            try:
                from cryptography import x509

                cert = x509.load_pem_x509_certificate(t.cert_file.read_bytes())
                out["client_cert_not_after"] = cert.not_valid_after_utc
            except (OSError, ValueError) as exc:
                out["client_cert_error"] = f"cannot read client certificate {t.cert_file}: {exc}"
    try:
        ctx = _tls_context(config)
    except (OSError, ssl.SSLError) as exc:
        out["tls_error"] = f"cannot load the CA or client certificate: {_short(exc)}"
        return out
    try:
        with (
            socket.create_connection((m.host, m.port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=m.host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            if der:
                out["cert_not_after"] = _cert_not_after(der)
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code == X509_V_ERR_CERT_HAS_EXPIRED:
            out["cert_expired"] = True
            with contextlib.suppress(OSError, ssl.SSLError, ValueError):
                out["cert_not_after"] = _unverified_not_after(m.host, m.port, timeout)
        else:
            out["tls_error"] = exc.verify_message or _short(exc)
    except (OSError, ssl.SSLError) as exc:
        out["tls_error"] = _short(exc)
    return out


def _unverified_not_after(host: str, port: int, timeout: float) -> datetime | None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    return _cert_not_after(der) if der else None


def probe_clock() -> ClockReading:
    """timedatectl's NTPSynchronized where systemd runs, else the kernel's adjtimex state."""
    now = datetime.now(UTC)
    if shutil.which(TIMEDATECTL):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            proc = subprocess.run(
                [TIMEDATECTL, "show", "--property=NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=NET_TIMEOUT_S,
                check=False,
            )
            value = proc.stdout.strip()
            if proc.returncode == 0 and value in ("yes", "no"):
                return ClockReading(now, value == "yes", "timedatectl")
    synced = adjtimex_synchronized()
    return ClockReading(now, synced, "adjtimex" if synced is not None else "no NTP information")


# adjtimex(2): TIME_ERROR is returned while the kernel clock is not synchronised.
_TIME_ERROR: Final = 5
# struct timex is 208 bytes on 64-bit Linux; a larger zeroed buffer is safe for a read.
_TIMEX_BUFFER: Final = 512


def adjtimex_synchronized() -> bool | None:
    """The kernel's view (modes=0, read only): True synchronised, None when unavailable."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        buf = ctypes.create_string_buffer(_TIMEX_BUFFER)
        state = int(libc.adjtimex(buf))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR


def probe_disk(path: Path) -> DiskReading:
    """Free space where the data directory lives (or its nearest existing parent)."""
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        usage = shutil.disk_usage(target)
    except OSError as exc:
        return DiskReading(str(path), 0, 0, _short(exc))
    return DiskReading(str(path), usage.total, usage.free)


def probe_temperature() -> int | None:
    """Millidegrees Celsius from the thermal zone, None where there is none."""
    try:
        return int(THERMAL_ZONE_TEMP.read_text().strip())
    except (OSError, ValueError):
        return None


def probe_throttled() -> tuple[int | None, str]:
    """The firmware's throttling bits from sysfs, else `vcgencmd get_throttled`."""
    with contextlib.suppress(OSError, ValueError):
        return int(SYSFS_THROTTLED.read_text().strip(), 16), "sysfs"
    if shutil.which(VCGENCMD):
        with contextlib.suppress(OSError, ValueError, subprocess.SubprocessError):
            proc = subprocess.run(
                [VCGENCMD, "get_throttled"], capture_output=True, text=True, timeout=5, check=False
            )
            # "throttled=0x50005"
            return int(proc.stdout.strip().partition("=")[2], 16), "vcgencmd"
    return None, ""


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


# ---------------------------------------------------------------------------------------------
# Running the checks
# ---------------------------------------------------------------------------------------------


def system_checks(config: Config) -> list[CheckResult]:
    """The cheap, local checks (clock, disk, temperature, throttling): safe to run often."""
    throttled, source = probe_throttled()
    return [
        evaluate_clock(probe_clock()),
        evaluate_disk(probe_disk(config.device.data_dir)),
        evaluate_temperature(probe_temperature()),
        evaluate_throttling(throttled, source),
    ]


def _guarded(name: str, func: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    try:
        return func()
    except Exception as exc:  # a probe bug must never hide the other checks
        _LOGGER.exception("doctor check %s crashed", name)
        return [failed(name, f"the check itself crashed: {_short(exc)}", "report this as a bug")]


def _disabled(name: str, section: str) -> list[CheckResult]:
    return [ok(name, f"disabled ({section}.enabled = false)")]


def _bluetooth(config: Config) -> list[CheckResult]:
    b = config.beacons
    if not b.enabled:
        return _disabled("bluetooth", "beacons")
    if b.replay_file is not None:
        if b.replay_file.is_file():
            return [ok("bluetooth", f"replaying {b.replay_file} instead of the radio")]
        return [
            failed(
                "bluetooth",
                f"replay file {b.replay_file} is missing",
                "fix beacons.replay_file or remove it to use the radio",
            )
        ]
    return [evaluate_adapter(probe_adapter(b.adapter), b.scanning_mode)]


def evaluate_camera_in_daemon(component: dict[str, Any], wanted_fps: float) -> CheckResult:
    """The camera as the running daemon's camera component reports it (it holds the device)."""
    state = component.get("state")
    reason = str(component.get("reason") or "")
    if state == "failed":
        return failed(
            "camera",
            f"the daemon's camera component failed: {reason}",
            "check the cable and that the kiosk-edge user is in the video group "
            "(ls -l /dev/video*), or set barcodes.camera",
        )
    metrics = component.get("metrics") or {}
    fps = metrics.get("fps")
    detail = "in use by the running daemon" + (
        f" at {fps:g} fps" if isinstance(fps, int | float) else ""
    )
    if state == "degraded":
        return warn("camera", f"{detail}, degraded: {reason}", "see the camera's reason above")
    if isinstance(fps, int | float) and fps < wanted_fps * CAMERA_MIN_FPS_SHARE:
        return warn(
            "camera",
            detail + f", below the configured {wanted_fps:g} fps",
            "improve the lighting (auto-exposure lowers the rate) or use a USB 2 port",
        )
    return ok("camera", detail)


def fetch_daemon_components(config: Config, timeout: float = 1.0) -> dict[str, Any] | None:
    """The running daemon's component states from its /api/healthz, None when it is not up."""
    k = config.kiosk
    if not k.enabled:
        return None
    url = f"http://{k.host}:{k.port}/api/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as err:  # 503: degraded, still a valid report
        try:
            body = json.loads(err.read())
        except ValueError:
            return None
    except (OSError, ValueError):
        return None
    components = body.get("components") if isinstance(body, dict) else None
    return components if isinstance(components, dict) else None


def _camera(config: Config, components: dict[str, Any] | None) -> list[CheckResult]:
    c = config.barcodes
    if not c.enabled:
        return _disabled("camera", "barcodes")
    running = (components or {}).get("camera")
    if isinstance(running, dict) and running.get("state") in ("ok", "degraded", "failed"):
        return [evaluate_camera_in_daemon(running, c.fps)]
    return [evaluate_camera(probe_camera(c.camera, size=(c.width, c.height), fps=c.fps), c.fps)]


def _printer(config: Config) -> list[CheckResult]:
    if not config.printer.enabled:
        return _disabled("printer", "printer")
    return [evaluate_printer(probe_printer(config.printer.url))]


def _broker(config: Config) -> list[CheckResult]:
    if not config.mqtt.enabled:
        return _disabled("broker", "mqtt")
    return evaluate_broker(probe_broker(config), datetime.now(UTC))


def run_checks(
    config: Config,
    config_problems: Iterable[str] = (),
    config_path: str = "edge.toml",
    components: dict[str, Any] | None = None,
) -> list[CheckResult]:
    """Every check, in a fixed order; the slow network ones run side by side.

    ``components`` is the running daemon's health (the admin page passes its own); the camera
    is then judged from it, since the daemon holds the device and a second open would fail.
    """
    problems = list(config_problems)
    groups: list[tuple[str, Callable[[], list[CheckResult]]]] = [
        ("config", lambda: [evaluate_config(problems, config_path), *_config_secrets(config_path)]),
    ]
    if not problems:  # a broken file's parts would be checked against defaults: skip them
        groups += [
            ("bluetooth", lambda: _bluetooth(config)),
            ("camera", lambda: _camera(config, components)),
            ("printer", lambda: _printer(config)),
            ("broker", lambda: _broker(config)),
        ]
    groups.append(("system", lambda: system_checks(config)))
    with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="doctor") as pool:
        futures = [pool.submit(_guarded, name, func) for name, func in groups]
        return [result for future in futures for result in future.result()]


def worst(results: Iterable[CheckResult]) -> Status:
    """The worst status among results."""
    order = {"ok": 0, "warn": 1, "fail": 2}
    status: Status = "ok"
    for r in results:
        if order[r.status] > order[status]:
            status = r.status
    return status


def format_table(results: list[CheckResult]) -> str:
    """A table for people: status, check, detail, and the fix under anything not ok."""
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    width = max((len(r.name) for r in results), default=5)
    lines = [f"{'':4}  {'check':<{width}}  detail"]
    for r in results:
        lines.append(f"{marks[r.status]}  {r.name:<{width}}  {r.detail}")
        if r.fix and r.status != "ok":
            lines.append(f"{'':4}  {'':<{width}}  fix: {r.fix}")
    counts = {s: sum(1 for r in results if r.status == s) for s in ("ok", "warn", "fail")}
    lines.append(f"{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failures")
    return "\n".join(lines)


def to_json(results: list[CheckResult]) -> str:
    """JSON for machines: a list with one object per check."""
    return json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False)


@dataclass
class DoctorComponent:
    """Runs the cheap checks periodically so central sees temperature, disk and clock in health."""

    config: Config
    health: Any
    interval_s: float = 60.0
    name: str = "doctor"
    last: list[CheckResult] = field(default_factory=list)

    async def run(self) -> None:
        """Check, publish to health, sleep; until cancelled."""
        import asyncio

        loop = asyncio.get_running_loop()
        # Working from the start: the first checks take a moment and must not hold back the
        # daemon's readiness (healthz is 503 while any component is "starting").
        self.health.set(self.name, "ok", "first checks running")
        while True:
            results = await loop.run_in_executor(None, system_checks, self.config)
            self.last = results
            self.publish(results)
            await asyncio.sleep(self.interval_s)

    def publish(self, results: list[CheckResult]) -> None:
        """Health: degraded when a check fails (a warning alone keeps it ok), naming them."""
        bad = [f"{r.name}: {r.detail}" for r in results if r.status != "ok"]
        state = "degraded" if any(r.status == "fail" for r in results) else "ok"
        self.health.set(self.name, state, "; ".join(bad))
        for r in results:
            self.health.metric(self.name, r.name, r.status)
        temp = probe_temperature()
        if temp is not None:
            self.health.metric(self.name, "cpu_temp_c", round(temp / 1000, 1))


# The daemon's cheap checks run this often: temperature and disk change slowly.
DOCTOR_INTERVAL_S: Final = 60.0


def doctor_component(services: Any) -> DoctorComponent:
    """The daemon's periodic doctor (always on: it only reads local state)."""
    services.extras["doctor"] = component = DoctorComponent(
        services.config, services.health, DOCTOR_INTERVAL_S
    )
    return component
