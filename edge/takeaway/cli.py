"""`kiosk-edge receipt`: render or print a comparison receipt, or print the test page.

Products come from ``--catalog FILE`` (a JSON or CSV catalog file), else the kiosk's catalog
database, else the configured seed catalog. Without ``--out`` or ``--printer`` the receipt
goes straight to the configured printer (not through the daemon's queue), so store IT can
check a printer with the daemon stopped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from edge.catalog.models import CatalogDataError, Product, product_from_dict
from edge.config import Config

_LOGGER = logging.getLogger(__name__)


class _InputError(Exception):
    """Bad input: exit status 2 with the message."""


def _from_file(path: Path, skus: Sequence[str]) -> list[Product]:
    from edge.catalog.importer import CatalogFileError, parse_file

    try:
        data = parse_file(path)
    except CatalogFileError as exc:
        raise _InputError(str(exc)) from None
    found: dict[str, Product] = {}
    for raw in data.get("products", []):
        if isinstance(raw, dict) and raw.get("sku") in skus:
            try:
                product = product_from_dict(raw)
            except CatalogDataError as exc:
                raise _InputError(str(exc)) from None
            found[product.sku] = product
    return [found[s] for s in skus if s in found]


def _products(config: Config, skus: Sequence[str], catalog: str | None) -> list[Product]:
    from edge.catalog.store import CatalogStore, db_path

    if catalog:
        products = _from_file(Path(catalog), skus)
    elif db_path(config.device.data_dir).exists():
        store = CatalogStore(db_path(config.device.data_dir))
        try:
            products = store.get_products(list(skus))
        finally:
            store.close()
    elif config.kiosk.catalog_file is not None:
        products = _from_file(config.kiosk.catalog_file, skus)
    else:
        raise _InputError(
            "no catalog: give --catalog FILE, or import one with 'kiosk-edge catalog import'"
        )
    missing = [s for s in skus if s not in {p.sku for p in products}]
    if missing:
        raise _InputError(f"unknown SKU(s) {', '.join(missing)}; check the catalog")
    return products


def _cmd_receipt(args: argparse.Namespace) -> int:
    from edge.cli import EXIT_FAILURE, EXIT_OK, fail, optional_config
    from edge.takeaway.printer import PrinterFault, deliver
    from edge.takeaway.printer_url import PrinterUrlError, parse_printer_url
    from edge.takeaway.qr import QrError, takeaway_url
    from edge.takeaway.receipt import (
        EncodeOptions,
        ReceiptContext,
        ReceiptError,
        render_comparison,
        render_test_page,
    )

    if args.out and args.printer:
        return fail("give either --out FILE or --printer URL, not both")
    if not args.test and not args.sku:
        return fail("give at least one --sku (or --test for the test page)")
    if args.test and args.sku:
        return fail("--test prints the test page; leave out --sku")
    if len(args.sku) > 4:
        return fail(f"at most 4 products fit a comparison, got {len(args.sku)}")
    config = optional_config(args)
    pc = config.printer
    width = args.width or pc.columns
    skus = list(dict.fromkeys(args.sku)) or ["TEST"]
    try:
        ctx = ReceiptContext(
            store_name=pc.store_name or config.device.store_id,
            kiosk=config.device.device_id,
            when=datetime.now().astimezone(),
            url=takeaway_url(config.kiosk.compare_url_template, skus),
            lang=args.lang or config.device.locale,
            width=width,
        )
        options = EncodeOptions(pc.profile, pc.codepage, pc.qr)
        if args.test:
            data = render_test_page(ctx, options)
        else:
            data = render_comparison(_products(config, skus, args.catalog), ctx, options)
    except (ReceiptError, QrError, _InputError) as exc:
        return fail(str(exc))
    if args.out:
        if args.out == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            try:
                Path(args.out).write_bytes(data)
            except OSError as exc:
                return fail(f"cannot write {args.out}: {exc.strerror}")
            print(f"{args.out}: {len(data)} bytes for {width} columns")
        return EXIT_OK
    try:
        target = parse_printer_url(args.printer or pc.url)
    except PrinterUrlError as exc:
        return fail(str(exc))
    try:
        deliver(
            target,
            data,
            timeout=pc.timeout_s,
            status_query=pc.status_query,
            profile=pc.profile,
        )
    except PrinterFault as fault:
        print(f"kiosk-edge: printer {target.describe()} needs attention: {fault}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"printed on {target.describe()} ({len(data)} bytes)")
    return EXIT_OK


def register(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_config_option: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add `kiosk-edge receipt` and its shorthand `kiosk-edge print-test`."""
    p = subparsers.add_parser(
        "receipt",
        help="render or print a comparison receipt, or the printer test page",
        description=(
            "Render a comparison of 1-4 products as ESC/POS bytes (--out) or print it "
            "(--printer URL, else the configured printer); --test prints the test page."
        ),
    )
    p.add_argument("--sku", action="append", default=[], metavar="SKU", help="product to include")
    p.add_argument(
        "--width", type=int, choices=(32, 42, 48), help="columns (default: printer.columns)"
    )
    p.add_argument("--lang", choices=("fr", "en"), help="language (default: device.locale)")
    p.add_argument("--catalog", metavar="FILE", help="catalog file (JSON or CSV) to take them from")
    p.add_argument("--out", metavar="FILE", help="write the bytes to FILE ('-' for stdout)")
    p.add_argument("--printer", metavar="URL", help="print on this printer instead")
    p.add_argument("--test", action="store_true", help="print the test page")
    add_config_option(p)
    p.set_defaults(func=_cmd_receipt)
    t = subparsers.add_parser(
        "print-test",
        help="print the printer test page (same as receipt --test)",
        description="Print the test page on the configured printer (or --printer URL, --out FILE).",
    )
    t.add_argument(
        "--width", type=int, choices=(32, 42, 48), help="columns (default: printer.columns)"
    )
    t.add_argument("--lang", choices=("fr", "en"), help="language (default: device.locale)")
    t.add_argument("--out", metavar="FILE", help="write the bytes to FILE ('-' for stdout)")
    t.add_argument("--printer", metavar="URL", help="print on this printer instead")
    add_config_option(t)
    t.set_defaults(func=_cmd_receipt, test=True, sku=[], catalog=None)
