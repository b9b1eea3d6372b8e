"""What the device tells central about itself: presence (birth / will) and periodic health.

Presence messages can arrive out of order (a Last Will delivered after the next birth), so
each carries a timestamp and the boot id; central keeps the newest. Hardware readings come
from module-level paths that tests point at a fake tree.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from edge import __version__
from edge.events import rfc3339

_LOGGER = logging.getLogger(__name__)

# The SoC temperature in millidegrees Celsius on a Raspberry Pi (and most Linux boards).
THERMAL_ZONE_PATH: Final = Path("/sys/class/thermal/thermal_zone0/temp")
# Changes on every boot: tells central a reboot from a daemon restart.
BOOT_ID_PATH: Final = Path("/proc/sys/kernel/random/boot_id")
# Total and available memory (kB).
MEMINFO_PATH: Final = Path("/proc/meminfo")
# Seconds since boot.
UPTIME_PATH: Final = Path("/proc/uptime")

_PROCESS_BOOT_ID: Final = uuid.uuid4().hex  # stand-in when the kernel's boot id is unreadable


def _now() -> str:
    return rfc3339(datetime.now(UTC))


def boot_id() -> str:
    """The kernel's boot id (a random id for this process where there is none)."""
    try:
        return (
            Path(BOOT_ID_PATH).read_text(encoding="ascii").strip().replace("-", "")
            or _PROCESS_BOOT_ID
        )
    except OSError:
        return _PROCESS_BOOT_ID


def cpu_temperature_c() -> float | None:
    """The SoC temperature in °C, or None where it cannot be read (containers, PCs)."""
    try:
        raw = Path(THERMAL_ZONE_PATH).read_text(encoding="ascii").strip()
        return round(int(raw) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def memory() -> dict[str, int] | None:
    """Total and available memory in bytes, or None if unreadable."""
    try:
        fields: dict[str, int] = {}
        for line in Path(MEMINFO_PATH).read_text(encoding="ascii").splitlines():
            name, _, rest = line.partition(":")
            if name in ("MemTotal", "MemAvailable"):
                fields[name] = int(rest.split()[0]) * 1024
        return {"total": fields["MemTotal"], "available": fields["MemAvailable"]}
    except (OSError, ValueError, KeyError, IndexError):
        return None


def system_uptime_s() -> float | None:
    """Seconds since the machine booted, or None."""
    try:
        return float(Path(UPTIME_PATH).read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def disk(path: Path) -> dict[str, int] | None:
    """Total and free bytes of the file system holding ``path``, or None."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return {"total": usage.total, "free": usage.free}


def birth(started: float, config_hash: str) -> dict[str, Any]:
    """The retained ``online`` status published on every connect."""
    return {
        "state": "online",
        "version": __version__,
        "config_hash": config_hash,
        "started": rfc3339(datetime.fromtimestamp(started, UTC)),
        "boot_id": boot_id(),
        "pid": os.getpid(),
        "time": _now(),
    }


def will(started: float) -> dict[str, Any]:
    """The retained ``offline`` status: the Last Will, or said on a clean stop."""
    return {
        "state": "offline",
        "version": __version__,
        "started": rfc3339(datetime.fromtimestamp(started, UTC)),
        "boot_id": boot_id(),
        "pid": os.getpid(),
        "time": _now(),
    }


def health_report(
    *,
    started: float,
    data_dir: Path,
    outbox: dict[str, Any] | None,
    components: dict[str, Any],
    relay: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The periodic health message: uptime, temperature, load, memory, disk, outbox, parts."""
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "time": _now(),
        "version": __version__,
        "uptime_s": round(time.time() - started, 1),
        "system_uptime_s": system_uptime_s(),
        "cpu_temperature_c": cpu_temperature_c(),
        "load": load,
        "memory": memory(),
        "disk": disk(data_dir),
        "outbox": outbox,
        "relay": relay,
        "components": components,
    }
