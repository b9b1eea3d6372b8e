"""`kiosk-edge outbox`: how many events wait for the broker, how old, of which types."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from edge.cli import EXIT_FAILURE, EXIT_OK, load_config_or_exit
from edge.relay.outbox import DB_NAME, read_stats


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover (loop always returns)


def _cmd_outbox(args: argparse.Namespace) -> int:
    config = load_config_or_exit(args)
    path = config.device.data_dir / DB_NAME
    try:
        stats = read_stats(path)
    except sqlite3.Error as exc:
        print(f"kiosk-edge: cannot read the outbox {path}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if stats is None:
        if args.json:
            print(json.dumps({"path": str(path), "exists": False, "depth": 0}))
        else:
            print(f"{path}: no outbox yet (the daemon creates it on first start); depth 0")
        return EXIT_OK
    data: dict[str, Any] = {"path": str(path), "exists": True, **stats.as_dict()}
    data["max_rows"] = config.outbox.max_rows
    data["max_bytes"] = config.outbox.max_bytes
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    age = "-" if stats.oldest_age_s is None else f"{stats.oldest_age_s:.1f} s"
    print(f"outbox      {path}")
    print(f"depth       {stats.depth} events (limit {config.outbox.max_rows})")
    print(
        f"bytes       {_human_bytes(stats.bytes)} (limit {_human_bytes(config.outbox.max_bytes)})"
    )
    print(f"oldest      {age}")
    print(f"next seq    {stats.next_sequence}  epoch {stats.epoch}")
    for type_, count in sorted(stats.per_type.items()):
        print(f"  {type_:<28} {count}")
    return EXIT_OK


def register(subparsers: Any, add_config_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `kiosk-edge outbox [--json]`."""
    p = subparsers.add_parser("outbox", help="show the events waiting for the broker")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_config_option(p)
    p.set_defaults(func=_cmd_outbox)
