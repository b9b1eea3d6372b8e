"""`kiosk-edge doctor`'s probes and runner: read the hardware, network and system.

Probes are thin and never raise: a probe that crashes becomes a failed check naming the
error. Each reading is judged by the pure checks in :mod:`edge.doctor`. Hardware paths are
module-level constants that tests point at a fake tree. The runner (``run_checks``, the
daemon's periodic :class:`DoctorComponent`) lives here as it drives the probes.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from edge.config import SECRET_SOURCES, Config
from edge.doctor import (
    AdapterReading,
    BrokerReading,
    CameraReading,
    CheckResult,
    ClockReading,
    DiskReading,
    PrinterReading,
    evaluate_adapter,
    evaluate_broker,
    evaluate_camera,
    evaluate_camera_in_daemon,
    evaluate_clock,
    evaluate_config,
    evaluate_config_secrets,
    evaluate_disk,
    evaluate_printer,
    evaluate_temperature,
    evaluate_throttling,
    failed,
    ok,
)

if TYPE_CHECKING:
    from edge.takeaway.printer import Connection


_LOGGER = logging.getLogger(__name__)

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

# Network probes wait this long: long enough for a slow store uplink, short for a person.
NET_TIMEOUT_S: Final = 4.0
# The camera gets this long to deliver frames for the rate measurement.
CAMERA_SAMPLE_S: Final = 2.0
CAMERA_SAMPLE_FRAMES: Final = 30
# OpenSSL's verify code for an expired certificate.
X509_V_ERR_CERT_HAS_EXPIRED: Final = 10


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
