"""Catalog files (JSON, CSV) into the store, and `kiosk-edge catalog import|list`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from edge.catalog.importer import CatalogFileError, import_file, parse_csv
from edge.catalog.store import CatalogStore, SearchQuery
from tests.conftest import KIOSK_EDGE, REPO_ROOT, ConfigWriter

DEMO_CATALOG = REPO_ROOT / "firmware_config" / "demo" / "catalog.json"

CSV = """sku,name,price,brand,category,ean,spec:battery|h|higher|Autonomie,spec:wifi
A1,Casque Écoute,"99,5",Sonor,audio,3760000000123,20,true
A2,Enceinte,49,Sonor,audio,,,false
A3,Bad price,abc,,audio,,,
"""


def catalog_cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `kiosk-edge catalog ARGS --config CONFIG` and capture its output."""
    return subprocess.run(
        [*KIOSK_EDGE, "catalog", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_csv_rows_become_products_with_typed_specs() -> None:
    """Spec columns carry key, unit, direction and label; numbers and booleans are typed."""
    data = parse_csv(CSV)
    first = data["products"][0]
    assert first["price"] == 99.5
    assert first["specs"] == [
        {"key": "battery", "value": 20, "unit": "h", "better": "higher", "label": "Autonomie"},
        {"key": "wifi", "value": True},
    ]
    assert data["products"][1]["specs"] == [{"key": "wifi", "value": False}]


def test_csv_with_a_wrong_header_is_refused_with_the_fix() -> None:
    """A header without price, or an unknown column, names the problem."""
    with pytest.raises(CatalogFileError, match="lacks price"):
        parse_csv("sku,name\nA,B\n")
    with pytest.raises(CatalogFileError, match="colour"):
        parse_csv("sku,name,price,colour\nA,B,1,red\n")


def test_import_keeps_good_rows_and_reports_bad_ones(tmp_path: Path) -> None:
    """One bad row is reported by field; the others are imported and searchable."""
    path = tmp_path / "c.csv"
    path.write_text(CSV, encoding="utf-8")
    store = CatalogStore(tmp_path / "c.sqlite3")
    report = import_file(store, path)
    assert report.products == 2
    assert len(report.errors) == 1
    assert "price" in report.errors[0]
    assert store.search(SearchQuery(text="ecoute")).total == 1
    store.close()


def test_broken_json_names_line_and_column(tmp_path: Path) -> None:
    """Invalid JSON is refused with where it broke."""
    path = tmp_path / "c.json"
    path.write_text('{"products": [\n{"sku": }', encoding="utf-8")
    store = CatalogStore(tmp_path / "c.sqlite3")
    with pytest.raises(CatalogFileError, match="line 2"):
        import_file(store, path)
    store.close()


def test_demo_catalog_imports_cleanly(tmp_path: Path) -> None:
    """The shipped demo: >= 200 products in 5 categories, images copied, demo shopper, offers."""
    store = CatalogStore(tmp_path / "c.sqlite3")
    report = import_file(store, DEMO_CATALOG, tmp_path / "media")
    assert report.errors == []
    assert report.products >= 200
    assert len(store.categories()) == 5
    assert report.reviews > 100
    tv1 = store.product_by_ean("3760000000017")
    tv2 = store.product_by_ean("3760000000024")
    assert tv1 is not None
    assert tv1.sku == "TV-001"
    assert tv2 is not None
    assert tv2.sku == "TV-002"
    assert (tmp_path / "media" / tv1.image).is_file()
    assert all(s.better in (None, "higher", "lower") for s in tv1.specs)
    assert any(s.unit for s in tv1.specs)
    shopper = store.shopper("49698d7f90c7344b7552e55142b73e35")
    assert shopper is not None
    assert shopper.first_name == "Camille"
    from datetime import date

    gold = store.offers_for(date.today(), ["gold"])
    assert gold
    assert gold[0].segments == ("gold",)
    store.close()


def test_cli_import_then_list_json(write_config: ConfigWriter, cli_env: dict[str, str]) -> None:
    """`catalog import` then `catalog list --json --limit 3` prints sku, name and price."""
    config = write_config()
    done = catalog_cli(config, cli_env, "import", str(DEMO_CATALOG))
    assert done.returncode == 0, done.stderr
    assert "imported" in done.stdout
    listed = catalog_cli(config, cli_env, "list", "--json", "--limit", "3")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert len(rows) == 3
    assert {"sku", "name", "price"} <= set(rows[0])


def test_cli_import_of_a_missing_file_exits_2(
    write_config: ConfigWriter, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A missing file is one sentence on stderr and exit status 2."""
    config = write_config()
    done = catalog_cli(config, cli_env, "import", str(tmp_path / "nope.json"))
    assert done.returncode == 2
    assert "cannot read" in done.stderr
    assert "Traceback" not in done.stderr


def test_images_outside_the_catalog_folder_are_not_copied(tmp_path: Path) -> None:
    """An image path that climbs out of the catalog's folder is dropped, not copied."""
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"\x89PNG not really")
    folder = tmp_path / "cat"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "ok.png").write_bytes(b"\x89PNG")
    products = [
        {"sku": "A", "name": "A", "price": 1, "image": "../secret.png"},
        {"sku": "B", "name": "B", "price": 1, "image": "images/ok.png"},
    ]
    path = folder / "catalog.json"
    path.write_text(json.dumps({"products": products}), encoding="utf-8")
    store = CatalogStore(tmp_path / "c.sqlite3")
    report = import_file(store, path, tmp_path / "media")
    assert report.images == 1
    assert not (tmp_path / "media" / "secret.png").exists()
    a = store.get_product("A")
    b = store.get_product("B")
    assert a is not None
    assert a.image == ""
    assert b is not None
    assert b.image == "ok.png"
    store.close()


def test_cli_with_an_unusable_data_dir_exits_2(
    write_config: ConfigWriter, cli_env: dict[str, str]
) -> None:
    """A data directory that cannot hold the catalog is one sentence and exit status 2."""
    config = write_config(device={"data_dir": "/proc/kiosk-edge-nope"})
    done = catalog_cli(config, cli_env, "list")
    assert done.returncode == 2
    assert "cannot open the catalog" in done.stderr
    assert "Traceback" not in done.stderr
