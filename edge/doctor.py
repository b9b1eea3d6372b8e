"""`kiosk-edge doctor`'s judgement: readings in, ok/warn/fail with a fix out (no I/O).

Each check is a pure function from a *reading* (plain values gathered by a thin probe in
:mod:`edge.doctor_probes`) to one or more :class:`CheckResult` (``ok``/``warn``/``fail``, a
detail and a fix), so the judgement is tested with plain values. The report formats live
here too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

_LOGGER = logging.getLogger(__name__)

Status = Literal["ok", "warn", "fail"]

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
# A live camera below this share of the configured rate is a warning (bad light, USB 1.1).
CAMERA_MIN_FPS_SHARE: Final = 0.5


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
