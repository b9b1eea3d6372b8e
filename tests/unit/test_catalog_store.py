"""The SQLite catalog: upserts, deletes, search, offers, reviews, shoppers, threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from edge.catalog import CatalogSink
from edge.catalog.models import CatalogChange, Review
from edge.catalog.store import (
    CatalogStore,
    SearchQuery,
    fts_match_expression,
    fts_with_category,
)


def product(sku: str, name: str, price: float, **extra: Any) -> dict[str, Any]:
    """A product payload as central or an import file sends it."""
    return {"sku": sku, "name": name, "price": price, **extra}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    s = CatalogStore(tmp_path / "catalog.sqlite3")
    yield s
    s.close()


def seed(store: CatalogStore) -> None:
    changes = [
        CatalogChange(
            "product",
            "TV-001",
            product(
                "TV-001",
                "Téléviseur OLED 55 pouces",
                1299.0,
                brand="Lumina",
                category="tv",
                ean="3760000000017",
                specs=[
                    {"key": "diag", "label": "Diagonale", "value": 55, "unit": "in"},
                    {"key": "power", "label": "Conso", "value": 90, "unit": "W", "better": "lower"},
                ],
            ),
        ),
        CatalogChange(
            "product",
            "TV-002",
            product("TV-002", "Téléviseur LED 43 pouces", 399.0, brand="Vista", category="tv"),
        ),
        CatalogChange(
            "product",
            "HP-001",
            product("HP-001", "Casque sans fil", 149.0, brand="Sonor", category="audio"),
        ),
    ]
    assert store.apply_changes(changes) == []


def test_store_is_a_catalog_sink(store: CatalogStore) -> None:
    """The relay can hand the store to anything expecting the CatalogSink protocol."""
    sink: CatalogSink = store
    assert sink.apply_changes([]) == []


def test_upsert_is_idempotent_and_delete_removes(store: CatalogStore) -> None:
    """Applying a batch twice equals applying it once; a None payload deletes."""
    seed(store)
    seed(store)
    assert store.count_products() == 3
    p = store.get_product("TV-001")
    assert p is not None
    assert p.specs[1].better == "lower"
    assert p.specs[0].unit == "in"
    assert store.apply_changes([CatalogChange("product", "HP-001", None)]) == []
    assert store.get_product("HP-001") is None
    assert store.search(SearchQuery(text="casque")).total == 0
    # Deleting what is not there is fine (idempotent).
    assert store.apply_changes([CatalogChange("product", "HP-001", None)]) == []


def test_malformed_change_is_reported_and_the_rest_applied(store: CatalogStore) -> None:
    """One bad record names its field; the good ones in the same batch still land."""
    errors = store.apply_changes(
        [
            CatalogChange("product", "BAD-1", {"name": "No price"}),
            CatalogChange("product", "OK-1", product("OK-1", "Fine", 10.0)),
            CatalogChange("offer", "O1", {"title": ""}),
        ]
    )
    assert len(errors) == 2
    assert "price" in errors[0]
    assert "title" in errors[1]
    assert store.get_product("OK-1") is not None


def test_search_is_accent_insensitive_prefix_and_filtered(store: CatalogStore) -> None:
    """ "televiseur" finds "Téléviseur"; prefixes match; category and price filter."""
    seed(store)
    res = store.search(SearchQuery(text="televiseur"))
    assert {h.product.sku for h in res.hits} == {"TV-001", "TV-002"}
    assert res.total == 2
    assert [h.product.sku for h in store.search(SearchQuery(text="télév ole")).hits] == ["TV-001"]
    assert store.search(SearchQuery(category="audio")).total == 1
    cheap = store.search(SearchQuery(text="televiseur", price_max=500))
    assert [h.product.sku for h in cheap.hits] == ["TV-002"]
    by_price = store.search(SearchQuery(sort="price_asc"))
    assert [h.product.sku for h in by_price.hits] == ["HP-001", "TV-002", "TV-001"]


def test_text_with_category_is_exact_inside_and_outside_the_index(store: CatalogStore) -> None:
    """Text plus a category filter: only that category, even when another category's name
    contains its words ("tv" inside "tv accessories"), and a category of no word at all."""
    seed(store)
    store.apply_changes(
        [
            CatalogChange(
                "product", "AC-1", product("AC-1", "Support téléviseur", 29.0, category="tv stand")
            ),
            CatalogChange("product", "X-1", product("X-1", "Téléviseur jouet", 9.0, category="--")),
        ]
    )
    tv = store.search(SearchQuery(text="televiseur", category="tv"))
    assert {h.product.sku for h in tv.hits} == {"TV-001", "TV-002"}
    assert tv.total == 2
    stands = store.search(SearchQuery(text="televiseur", category="tv stand", sort="price_asc"))
    assert [h.product.sku for h in stands.hits] == ["AC-1"]
    odd = store.search(SearchQuery(text="televiseur", category="--"))
    assert [h.product.sku for h in odd.hits] == ["X-1"]
    assert fts_with_category('"a"*', 'x" OR y') == '("a"*) AND category : "x OR y"'


def test_search_keys_follow_every_write_and_are_built_for_an_older_file(
    store: CatalogStore, tmp_path: Path
) -> None:
    """Filtered text searches read the narrow search keys: they follow price changes,
    ratings and deletes, and a catalog written before the keys existed gets them on open."""
    seed(store)
    query = SearchQuery(text="televiseur", sort="price_asc", price_max=2000)
    assert [h.product.sku for h in store.search(query).hits] == ["TV-002", "TV-001"]
    store.apply_changes([CatalogChange("product", "TV-001", product("TV-001", "Téléviseur", 99.0))])
    assert [h.product.sku for h in store.search(query).hits] == ["TV-001", "TV-002"]
    review = {"id": "r1", "rating": 5, "date": "2026-05-01", "status": "approved"}
    store.apply_changes([CatalogChange("reviews", "TV-002", {"reviews": [review]})])
    rated = store.search(SearchQuery(text="televiseur", sort="rating", category="tv"))
    assert rated.hits[0].product.sku == "TV-002"
    store.apply_changes([CatalogChange("product", "TV-002", None)])
    assert [h.product.sku for h in store.search(query).hits] == ["TV-001"]
    # An older file: the keys table empty while products are there.
    store._conn().execute("DELETE FROM product_keys")
    store.close()
    reopened = CatalogStore(tmp_path / "catalog.sqlite3")
    try:
        assert [h.product.sku for h in reopened.search(query).hits] == ["TV-001"]
    finally:
        reopened.close()


def test_read_cache_can_be_turned_off(store: CatalogStore) -> None:
    """With the cache off every read goes to SQLite (for honest measurements)."""
    seed(store)
    store.search(SearchQuery(text="casque"))
    store.search(SearchQuery(text="casque"))
    hits, _ = store.cache_stats()
    assert hits == 1
    store.set_cache_entries(0)
    store.search(SearchQuery(text="casque"))
    store.search(SearchQuery(text="casque"))
    assert store.cache_stats()[0] == hits


def test_search_text_cannot_inject_fts_syntax(store: CatalogStore) -> None:
    """Quotes, operators and column filters typed by a shopper are plain words."""
    seed(store)
    for text in ['"', "AND OR NOT", "name:casque", "NEAR(a b)", "*", "'; DROP TABLE products"]:
        store.search(SearchQuery(text=text))
    assert fts_match_expression('cas"que') == '"cas"* "que"*'
    assert store.count_products() == 3


def test_update_reindexes_the_name(store: CatalogStore) -> None:
    """Renaming a product changes what search finds."""
    seed(store)
    store.apply_changes([CatalogChange("product", "HP-001", product("HP-001", "Enceinte", 99.0))])
    assert store.search(SearchQuery(text="casque")).total == 0
    assert store.search(SearchQuery(text="enceinte")).total == 1


def test_ean_lookup_including_upc(store: CatalogStore) -> None:
    """A scanned EAN finds the product; a 12-digit UPC read finds its 0-prefixed EAN."""
    seed(store)
    store.apply_changes(
        [CatalogChange("product", "U-1", product("U-1", "Upc", 1.0, ean="0012345678905"))]
    )
    found = store.product_by_ean("3760000000017")
    assert found is not None
    assert found.sku == "TV-001"
    upc = store.product_by_ean("012345678905")
    assert upc is not None
    assert upc.sku == "U-1"
    assert store.product_by_ean("999") is None


def test_reviews_rating_summary_and_pending_kept(store: CatalogStore) -> None:
    """Central's review list replaces central's; the kiosk's pending review stays."""
    seed(store)
    store.add_review(
        Review(
            "k1",
            "TV-001",
            2,
            "Bof",
            "text",
            "Ann",
            date(2026, 1, 2),
            status="pending",
            source="kiosk",
        )
    )
    reviews = [
        {"id": "c1", "rating": 5, "title": "Top", "text": "t", "author": "A", "date": "2026-01-01"},
        {
            "id": "c2",
            "rating": 4,
            "title": "Bien",
            "text": "t",
            "author": "B",
            "date": "2026-01-03",
        },
    ]
    assert store.apply_changes([CatalogChange("reviews", "TV-001", {"reviews": reviews})]) == []
    summary = store.rating_summary("TV-001")
    assert summary.count == 2
    assert summary.average == 4.5
    assert summary.distribution == {1: 0, 2: 0, 3: 0, 4: 1, 5: 1}
    assert [r.id for r in store.reviews_for("TV-001")] == ["c2", "c1"]
    assert [r.id for r in store.reviews_for("TV-001", statuses=("pending",))] == ["k1"]
    hit = store.get_hit("TV-001")
    assert hit is not None
    assert hit.rating_avg == 4.5
    assert hit.rating_count == 2
    # Central approves the kiosk's review (same id): it now counts.
    approved = [*reviews, {"id": "k1", "rating": 2, "date": "2026-01-02", "status": "approved"}]
    store.apply_changes([CatalogChange("reviews", "TV-001", {"reviews": approved})])
    assert store.rating_summary("TV-001").count == 3
    store.apply_changes([CatalogChange("reviews", "TV-001", None)])
    assert store.rating_summary("TV-001").count == 0


def test_offers_by_segment_and_date(store: CatalogStore) -> None:
    """Segment offers only for that segment, within their dates, segment offers first."""
    store.apply_changes(
        [
            CatalogChange("offer", "all", {"title": "Pour tous"}),
            CatalogChange("offer", "gold", {"title": "Or", "segments": ["gold"]}),
            CatalogChange("offer", "old", {"title": "Fini", "valid_to": "2020-01-01"}),
            CatalogChange("offer", "tv", {"title": "TV", "skus": ["TV-001"]}),
        ]
    )
    today = date(2026, 6, 1)
    assert [o.id for o in store.offers_for(today)] == ["all", "tv"]
    assert [o.id for o in store.offers_for(today, ["gold"])] == ["gold", "all", "tv"]
    assert [o.id for o in store.offers_for(today, sku="HP-001")] == ["all"]


def test_shopper_profiles(store: CatalogStore) -> None:
    """Central's retained shopper profile is stored under the hash and can be deleted."""
    key = "49698d7f90c7344b7552e55142b73e35"
    payload = {"first_name": "Camille", "segments": ["gold"], "locale": "fr"}
    assert store.apply_changes([CatalogChange("shopper", key, payload)]) == []
    shopper = store.shopper(key)
    assert shopper is not None
    assert shopper.first_name == "Camille"
    assert shopper.segments == ("gold",)
    store.apply_changes([CatalogChange("shopper", key, None)])
    assert store.shopper(key) is None


def test_concurrent_readers_and_a_writer(store: CatalogStore) -> None:
    """Waitress threads read while the relay writes batches; nobody sees an error."""
    seed(store)
    failures: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(200):
                assert store.search(SearchQuery(text="televiseur")).total >= 2
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    def writer() -> None:
        try:
            for i in range(50):
                store.apply_changes(
                    [CatalogChange("product", f"X-{i}", product(f"X-{i}", "Radio", 5.0))]
                )
        except BaseException as exc:  # pragma: no cover
            failures.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)] + [
        threading.Thread(target=writer)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert store.count_products() == 53


def test_reopen_keeps_data(tmp_path: Path) -> None:
    """The catalog survives a restart."""
    first = CatalogStore(tmp_path / "c.sqlite3")
    seed(first)
    first.close()
    second = CatalogStore(tmp_path / "c.sqlite3")
    assert second.count_products() == 3
    assert second.search(SearchQuery(text="televiseur")).total == 2
    second.close()


def test_unreadable_catalog_is_set_aside_and_seeded_again(tmp_path: Path) -> None:
    """A catalog file SQLite cannot read is moved aside at start-up and the seed file is
    imported into a fresh one, instead of keeping the kiosk from starting."""
    from edge.bus import Bus
    from edge.catalog.boot import open_catalog
    from edge.catalog.store import db_path
    from edge.config import Config
    from edge.health import Health
    from edge.services import Services

    seed_file = tmp_path / "seed.json"
    seed_file.write_text('{"products": [{"sku": "S-1", "name": "Seeded", "price": 9.5}]}')
    config = Config()
    config.device.data_dir = tmp_path / "data"
    config.kiosk.catalog_file = seed_file
    path = db_path(config.device.data_dir)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database at all " * 500)
    services = Services(config=config, bus=Bus(), health=Health(), salt="s")
    store = open_catalog(services)
    try:
        assert services.catalog is store
        assert [p.sku for p in store.list_products()] == ["S-1"]
        assert len(list(path.parent.glob(path.name + ".corrupt-*"))) == 1
    finally:
        store.close()
