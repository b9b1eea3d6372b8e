"""Fixtures shared by every test: free ports, temporary configurations, the CLI."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "tests" / "data"
ARTIFACTS_DIR = REPO_ROOT / "tests" / "artifacts"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toml_value(value: Any) -> str:
    """Render a Python value as TOML (enough for test configurations)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot render {value!r} as TOML")


def render_toml(sections: dict[str, dict[str, Any]]) -> str:
    """A TOML document from {section: {key: value}}; dotted section names allowed."""
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
        lines.append("")
    return "\n".join(lines)


ConfigWriter = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path) -> ConfigWriter:
    """Write a test configuration: everything off but what the test turns on.

    Keyword arguments are sections ({key: value}) merged over a safe base that binds the
    kiosk to a free port on 127.0.0.1 and keeps data under tmp_path.
    """

    def write(name: str = "edge.toml", **sections: dict[str, Any]) -> Path:
        base: dict[str, dict[str, Any]] = {
            "device": {
                "store_id": "test-store",
                "device_id": "kiosk-t1",
                "data_dir": str(tmp_path / "data"),
                "identity_salt": "test-salt",
            },
            "beacons": {"enabled": False},
            "barcodes": {"enabled": False},
            "mqtt": {"enabled": False},
            "kiosk": {"enabled": True, "host": "127.0.0.1", "port": free_port()},
            "printer": {"enabled": False},
            "mail": {"enabled": False},
        }
        for section, values in sections.items():
            base.setdefault(section, {}).update(values)
        path = tmp_path / name
        path.write_text(render_toml(base), encoding="utf-8")
        return path

    return write


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for running the CLI as a subprocess from the venv."""
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env.pop("KIOSK_EDGE_CONFIG", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


KIOSK_EDGE = [sys.executable, "-m", "edge.cli"]
