"""Store IT's commands: `kiosk-edge doctor`, `kiosk-edge provision`, `kiosk-edge wait-ui`."""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Final

# How often wait-ui asks /api/healthz while the daemon starts.
WAIT_POLL_S: Final = 0.5


def _cmd_doctor(args: argparse.Namespace) -> int:
    from edge.cli import EXIT_FAILURE, EXIT_OK
    from edge.config import Config, ConfigError, config_path_from, load_config
    from edge.doctor import format_table, to_json, worst
    from edge.doctor_probes import fetch_daemon_components, run_checks

    path = config_path_from(args.config)
    problems: list[str] = []
    try:
        config = load_config(path)
    except ConfigError as exc:
        problems = [str(p) for p in exc.problems]
        config = Config()
    running = fetch_daemon_components(config) if not problems else None
    results = run_checks(config, problems, str(path), running)
    print(to_json(results) if args.json else format_table(results))
    return EXIT_FAILURE if worst(results) == "fail" else EXIT_OK


def _cmd_provision(args: argparse.Namespace) -> int:
    from edge.provision import run_from_args

    return run_from_args(args)


def healthz_answers(url: str, timeout: float = 2.0) -> bool:
    """True once the kiosk UI answers /api/healthz at all (200 ok or 503 degraded)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (http to our own UI)
            return int(resp.status) < 600
    except urllib.error.HTTPError:
        return True  # 503: serving, with something degraded: the screen should show it
    except (urllib.error.URLError, OSError):
        return False


def _cmd_wait_ui(args: argparse.Namespace) -> int:
    from edge.cli import EXIT_FAILURE, EXIT_OK, optional_config

    kiosk = optional_config(args).kiosk
    url = f"http://{kiosk.host}:{kiosk.port}/api/healthz"
    deadline = time.monotonic() + args.timeout
    while not healthz_answers(url):
        if time.monotonic() > deadline:
            print(
                f"kiosk-edge: the kiosk UI at {url} did not answer within {args.timeout:g} s; "
                "check `systemctl status kiosk-edge`",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        time.sleep(WAIT_POLL_S)
    return EXIT_OK


def register(subparsers: Any, add_config_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add doctor, provision and wait-ui to the `kiosk-edge` command line."""
    from edge.provision import add_arguments

    p = subparsers.add_parser(
        "doctor", help="check adapter, camera, printer, broker, clock, disk, temperature, config"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per check")
    add_config_option(p)
    p.set_defaults(func=_cmd_doctor)

    p = subparsers.add_parser("provision", help="set up this Pi (or an image) as a kiosk")
    add_arguments(p)
    p.set_defaults(func=_cmd_provision)

    p = subparsers.add_parser(
        "wait-ui", help="wait until the kiosk UI answers (for the browser unit)"
    )
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    add_config_option(p)
    p.set_defaults(func=_cmd_wait_ui)
