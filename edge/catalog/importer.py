"""Import a catalog file (JSON or CSV) into the store, for the demo and a first boot.

The file becomes the same :class:`CatalogChange` batch central's retained messages produce,
so both paths share one validation. Local product images named in the file are copied into
the kiosk's media folder (served at ``/media/``) so the catalog works with the network down.

JSON: ``{"products": [...], "offers": [...], "reviews": [...], "shoppers": [...]}`` (or just a
list of products). CSV: one product per row with columns ``sku,name,price`` and optionally
``brand,category,ean,currency,image,description``; spec columns are named
``spec:KEY|UNIT|BETTER|LABEL`` (everything after the key optional),
e.g. ``spec:battery|h|higher|Battery``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from edge.catalog.models import CatalogChange
from edge.catalog.store import CatalogStore

_LOGGER = logging.getLogger(__name__)

# A kiosk catalog of 100 000 products with specs is ~100 MB of JSON; beyond that it is a
# wrong file, not a catalog.
MAX_FILE_BYTES: Final = 256 * 1024 * 1024
CSV_BASE_COLUMNS: Final = (
    "sku",
    "name",
    "price",
    "brand",
    "category",
    "ean",
    "currency",
    "image",
    "description",
)
# Image file names we copy and serve: no path separators, no hidden files.
_SAFE_IMAGE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.(svg|png|jpe?g|webp)$")


class CatalogFileError(ValueError):
    """The file cannot be imported at all; the message says why and what to fix."""


@dataclass
class ImportReport:
    """What an import did: counts per kind and one message per rejected record."""

    products: int = 0
    offers: int = 0
    reviews: int = 0
    shoppers: int = 0
    images: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the command line and the log."""
        return (
            f"imported {self.products} products, {self.offers} offers, "
            f"{self.reviews} reviews, {self.shoppers} shoppers, {self.images} images"
            + (f"; {len(self.errors)} records rejected" if self.errors else "")
        )


def _parse_scalar(text: str) -> float | int | str | bool:
    value = text.strip()
    if value.lower() in ("true", "yes", "oui"):
        return True
    if value.lower() in ("false", "no", "non"):
        return False
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value.replace(",", "."))
    except ValueError:
        return value
    return number if math.isfinite(number) else value


def parse_csv(text: str) -> dict[str, list[Any]]:
    """Rows of a CSV catalog as the JSON import structure (pure)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _parse_csv_rows(reader)
    except csv.Error as exc:
        raise CatalogFileError(
            f"the CSV file is malformed at line {reader.line_num}: {exc}; "
            "save it as comma-separated UTF-8 with quoted fields"
        ) from None


def _parse_csv_rows(reader: csv.DictReader[str]) -> dict[str, list[Any]]:
    if reader.fieldnames is None:
        raise CatalogFileError("the CSV file is empty; it needs a header row with sku,name,price")
    missing = [c for c in ("sku", "name", "price") if c not in reader.fieldnames]
    if missing:
        raise CatalogFileError(
            f"the CSV header lacks {', '.join(missing)}; the first row must name the columns "
            "sku,name,price (and optionally brand,category,ean,currency,image,description)"
        )
    unknown = [
        c for c in reader.fieldnames if c not in CSV_BASE_COLUMNS and not c.startswith("spec:")
    ]
    if unknown:
        raise CatalogFileError(
            f"unknown CSV column(s) {', '.join(unknown)}; spec columns are named "
            "spec:KEY|UNIT|BETTER|LABEL"
        )
    products: list[Any] = []
    for row in reader:
        product: dict[str, Any] = {}
        specs: list[dict[str, Any]] = []
        for column, raw in row.items():
            if column is None or raw is None:
                continue
            if column == "price":
                try:
                    product["price"] = float(raw.replace(",", "."))
                except ValueError:
                    product["price"] = raw  # rejected with the field named by the validator
            elif column.startswith("spec:"):
                if raw.strip() == "":
                    continue
                key, unit, better, label = ([*column[5:].split("|"), "", "", ""])[:4]
                spec: dict[str, Any] = {"key": key, "value": _parse_scalar(raw)}
                if unit:
                    spec["unit"] = unit
                if better:
                    spec["better"] = better
                if label:
                    spec["label"] = label
                specs.append(spec)
            else:
                product[column] = raw.strip()
        product["specs"] = specs
        products.append(product)
    return {"products": products}


def parse_file(path: Path) -> dict[str, list[Any]]:
    """Read a JSON or CSV catalog file into lists per kind; CatalogFileError if unusable."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CatalogFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        raise CatalogFileError(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MB")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogFileError(f"cannot read {path} as UTF-8 text: {exc}") from None
    if path.suffix.lower() == ".csv":
        return parse_csv(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogFileError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "give a .json catalog or a .csv file"
        ) from None
    if isinstance(data, list):
        return {"products": data}
    if not isinstance(data, dict):
        raise CatalogFileError(f"{path}: expected an object with a 'products' list")
    out: dict[str, list[Any]] = {}
    for kind in ("products", "offers", "reviews", "shoppers"):
        items = data.get(kind, [])
        if not isinstance(items, list):
            raise CatalogFileError(f"{path}: '{kind}' must be a list")
        out[kind] = items
    if not out["products"] and not any(out.values()):
        raise CatalogFileError(f"{path}: no products, offers, reviews or shoppers found")
    return out


def to_changes(data: dict[str, list[Any]]) -> tuple[list[CatalogChange], list[str]]:
    """The change batch for parsed file contents, and messages for records without a key."""
    changes: list[CatalogChange] = []
    errors: list[str] = []
    for i, item in enumerate(data.get("products", [])):
        sku = item.get("sku") if isinstance(item, dict) else None
        if not isinstance(sku, str) or not sku.strip():
            errors.append(f"products[{i}].sku: expected a non-empty string")
            continue
        changes.append(CatalogChange("product", sku.strip(), item))
    for i, item in enumerate(data.get("offers", [])):
        oid = item.get("id") if isinstance(item, dict) else None
        if not isinstance(oid, str) or not oid.strip():
            errors.append(f"offers[{i}].id: expected a non-empty string")
            continue
        changes.append(CatalogChange("offer", oid.strip(), item))
    by_sku: dict[str, list[Any]] = defaultdict(list)
    for i, item in enumerate(data.get("reviews", [])):
        sku = item.get("sku") if isinstance(item, dict) else None
        if not isinstance(sku, str) or not sku.strip():
            errors.append(f"reviews[{i}].sku: expected a non-empty string")
            continue
        by_sku[sku.strip()].append(item)
    changes.extend(CatalogChange("reviews", sku, {"reviews": rs}) for sku, rs in by_sku.items())
    for i, item in enumerate(data.get("shoppers", [])):
        key = item.get("id_hash") if isinstance(item, dict) else None
        if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{16,64}", key):
            errors.append(f"shoppers[{i}].id_hash: expected the salted hash (hex), not a number")
            continue
        payload = {k: v for k, v in item.items() if k != "id_hash"}
        changes.append(CatalogChange("shopper", key, payload))
    return changes, errors


def _copy_images(data: dict[str, list[Any]], source_dir: Path, media_dir: Path) -> int:
    """Copy local images next to the file into the media folder; rewrite names in place."""
    copied = 0
    for item in data.get("products", []):
        if not isinstance(item, dict):
            continue
        image = item.get("image")
        if not isinstance(image, str) or not image or "://" in image:
            continue
        src = (source_dir / image).resolve()
        name = src.name
        inside = src.is_relative_to(source_dir.resolve())
        if not inside or not _SAFE_IMAGE.match(name) or not src.is_file():
            _LOGGER.warning("image %s for %s not found or not allowed", image, item.get("sku"))
            item["image"] = ""
            continue
        media_dir.mkdir(parents=True, exist_ok=True)
        dest = media_dir / name
        if not dest.exists() or dest.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, dest)
            copied += 1
        item["image"] = name
    return copied


def import_file(store: CatalogStore, path: Path, media_dir: Path | None = None) -> ImportReport:
    """Import a catalog file into the store (one transaction); rejected records are reported."""
    data = parse_file(path)
    report = ImportReport()
    if media_dir is not None:
        report.images = _copy_images(data, path.parent, media_dir)
    changes, errors = to_changes(data)
    rejected = store.apply_changes_detailed(changes)
    report.errors = errors + [message for _, message in rejected]
    rejected_indexes = {index for index, _ in rejected}
    for index, change in enumerate(changes):
        if index in rejected_indexes:
            continue
        if change.kind == "product":
            report.products += 1
        elif change.kind == "offer":
            report.offers += 1
        elif change.kind == "reviews" and change.payload is not None:
            report.reviews += len(change.payload["reviews"])
        elif change.kind == "shopper":
            report.shoppers += 1
    _LOGGER.info("catalog %s: %s", path.name, report.summary())
    return report
