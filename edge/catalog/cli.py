"""`kiosk-edge catalog import FILE` and `kiosk-edge catalog list`: the local catalog by hand."""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.catalog.importer import CatalogFileError, import_file
from edge.catalog.store import CatalogStore, db_path, media_dir

_LOGGER = logging.getLogger(__name__)


class _CannotOpen(Exception):
    """The catalog database cannot be opened; the message names the path and the fix."""


def _open(data_dir: Path) -> CatalogStore:
    """The catalog under ``data_dir``, or _CannotOpen naming the path and the likely fix."""
    path = db_path(data_dir)
    try:
        return CatalogStore(path)
    except (OSError, sqlite3.Error) as exc:
        raise _CannotOpen(
            f"cannot open the catalog {path} ({exc}); give --config with a writable "
            "device.data_dir, or run as the kiosk-edge user"
        ) from None


def _cmd_import(args: argparse.Namespace) -> int:
    from edge.cli import EXIT_OK, EXIT_USAGE, fail, optional_config

    config = optional_config(args)
    path = Path(args.file)
    try:
        store = _open(config.device.data_dir)
    except _CannotOpen as exc:
        return fail(str(exc))
    try:
        report = import_file(store, path, media_dir(config.device.data_dir))
    except CatalogFileError as exc:
        return fail(str(exc))
    finally:
        store.close()
    print(report.summary())
    for message in report.errors:
        print(f"kiosk-edge: rejected {message}", file=sys.stderr)
    return EXIT_USAGE if report.errors else EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from edge.cli import EXIT_OK, fail, optional_config

    if args.limit < 0:
        return fail(f"--limit must be 0 or more, got {args.limit}")
    config = optional_config(args)
    try:
        store = _open(config.device.data_dir)
    except _CannotOpen as exc:
        return fail(str(exc))
    try:
        products = store.list_products(limit=args.limit, offset=0)
    finally:
        store.close()
    if args.json:
        rows: list[dict[str, Any]] = [
            {
                "sku": p.sku,
                "name": p.name,
                "price": p.price,
                "currency": p.currency,
                "brand": p.brand,
                "category": p.category,
                "ean": p.ean,
            }
            for p in products
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        for p in products:
            print(f"{p.sku:<14} {p.price:>10.2f} {p.currency}  {p.category:<12} {p.name}")
    return EXIT_OK


def register(subparsers: Any, add_config_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `catalog import` and `catalog list` to the command line."""
    p = subparsers.add_parser("catalog", help="import or list the local product catalog")
    sub = p.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)
    c = sub.add_parser("import", help="import a catalog file (JSON or CSV)")
    c.add_argument("file", help="catalog file: .json or .csv")
    add_config_option(c)
    c.set_defaults(func=_cmd_import)
    c = sub.add_parser("list", help="print the products of the local catalog")
    c.add_argument("--limit", type=int, default=50, help="at most N products (default 50)")
    c.add_argument("--json", action="store_true", help="print a JSON list of objects")
    add_config_option(c)
    c.set_defaults(func=_cmd_list)
