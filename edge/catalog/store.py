"""The local catalog in SQLite: products, offers, reviews and shopper profiles.

Everything the kiosk shows comes from here, so the screen keeps working with the network
down. Central's retained MQTT state arrives as :class:`CatalogChange` batches through
:meth:`CatalogStore.apply_changes` (one transaction per batch, idempotent); the demo and a
first boot import a file the same way. Search uses an FTS5 index with diacritics removed,
so "televiseur" finds "Téléviseur". WAL lets waitress threads read while a batch is written;
each thread has its own connection and writers take one lock.
"""

# Queries are built only from constant column lists and "?" placeholders; values are always
# bound parameters, never formatted into SQL.
# ruff: noqa: S608

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from edge.catalog.codec import spec_to_dict
from edge.catalog.models import (
    CatalogChange,
    CatalogDataError,
    Offer,
    Product,
    Review,
    Shopper,
    offer_from_dict,
    product_from_dict,
    review_from_dict,
    shopper_from_dict,
    spec_from_dict,
)

_LOGGER = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
# A shopper types a few words; anything longer is pasted junk and only slows the FTS query.
MAX_QUERY_CHARS: Final = 200
MAX_QUERY_TOKENS: Final = 8
# Result pages on a 1080p screen show at most a few dozen cards; the API caps the rest.
MAX_PAGE_SIZE: Final = 100
# How long a reader waits for a writer's lock before SQLite reports "database is locked".
BUSY_TIMEOUT_MS: Final = 5000

# Read results kept in memory (searches, answers, product pages of ~15 kB): enough for a
# day's popular queries at a few tens of MB at most.
CACHE_ENTRIES: Final = 2048
# Another process's writes (a manual import) are seen at most this late.
CACHE_TTL_S: Final = 30.0

# Where the catalog lives under the configured data directory, and its product images.
DB_NAME: Final = "catalog.sqlite3"
MEDIA_DIR_NAME: Final = "media"

SortKey = Literal["relevance", "price_asc", "price_desc", "rating", "name"]
SORT_KEYS: Final[tuple[str, ...]] = ("relevance", "price_asc", "price_desc", "rating", "name")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    sku TEXT PRIMARY KEY,
    ean TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    brand TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '',
    price REAL NOT NULL,
    currency TEXT NOT NULL DEFAULT 'EUR',
    image TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    specs TEXT NOT NULL DEFAULT '[]',
    rating_avg REAL NOT NULL DEFAULT 0,
    rating_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS products_ean ON products(ean) WHERE ean != '';
CREATE INDEX IF NOT EXISTS products_category_name ON products(category, name);
CREATE INDEX IF NOT EXISTS products_name ON products(name);
CREATE INDEX IF NOT EXISTS products_price ON products(price);
CREATE VIRTUAL TABLE IF NOT EXISTS products_fts USING fts5(
    name, brand, category, description,
    content='products', content_rowid='rowid',
    tokenize = "unicode61 remove_diacritics 2"
);
CREATE TRIGGER IF NOT EXISTS products_ai AFTER INSERT ON products BEGIN
    INSERT INTO products_fts(rowid, name, brand, category, description)
    VALUES (new.rowid, new.name, new.brand, new.category, new.description);
END;
CREATE TRIGGER IF NOT EXISTS products_ad AFTER DELETE ON products BEGIN
    INSERT INTO products_fts(products_fts, rowid, name, brand, category, description)
    VALUES ('delete', old.rowid, old.name, old.brand, old.category, old.description);
END;
CREATE TRIGGER IF NOT EXISTS products_au AFTER UPDATE OF name, brand, category, description
ON products BEGIN
    INSERT INTO products_fts(products_fts, rowid, name, brand, category, description)
    VALUES ('delete', old.rowid, old.name, old.brand, old.category, old.description);
    INSERT INTO products_fts(rowid, name, brand, category, description)
    VALUES (new.rowid, new.name, new.brand, new.category, new.description);
END;
-- What a filtered or sorted search reads for every match, and nothing else: full product
-- rows (specs JSON, descriptions) span many more pages, so joining thousands of matches to
-- them took 2.5-4x longer. Kept equal to products by triggers; the rowids are the same.
CREATE TABLE IF NOT EXISTS product_keys (
    key INTEGER PRIMARY KEY,
    category TEXT NOT NULL,
    price REAL NOT NULL,
    name TEXT NOT NULL,
    rating_avg REAL NOT NULL,
    rating_count INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS product_keys_ai AFTER INSERT ON products BEGIN
    INSERT INTO product_keys VALUES
        (new.rowid, new.category, new.price, new.name, new.rating_avg, new.rating_count);
END;
CREATE TRIGGER IF NOT EXISTS product_keys_au AFTER UPDATE ON products BEGIN
    UPDATE product_keys SET key = new.rowid, category = new.category, price = new.price,
        name = new.name, rating_avg = new.rating_avg, rating_count = new.rating_count
    WHERE key = old.rowid;
END;
CREATE TRIGGER IF NOT EXISTS product_keys_ad AFTER DELETE ON products BEGIN
    DELETE FROM product_keys WHERE key = old.rowid;
END;
CREATE TABLE IF NOT EXISTS offers (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    skus TEXT NOT NULL DEFAULT '[]',
    segments TEXT NOT NULL DEFAULT '[]',
    valid_from TEXT,
    valid_to TEXT
);
CREATE TABLE IF NOT EXISTS reviews (
    id TEXT PRIMARY KEY,
    sku TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL DEFAULT '',
    author TEXT NOT NULL DEFAULT '',
    date TEXT NOT NULL,
    store TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_sku ON reviews(sku, status, date);
CREATE TABLE IF NOT EXISTS shoppers (
    id_hash TEXT PRIMARY KEY,
    first_name TEXT NOT NULL,
    segments TEXT NOT NULL DEFAULT '[]',
    locale TEXT NOT NULL DEFAULT ''
);
"""

_PRODUCT_COLUMNS: Final = (
    "sku, ean, name, brand, category, price, currency, image, description, specs, "
    "rating_avg, rating_count"
)
_T = TypeVar("_T")
_TOKEN_RE: Final = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class RatingSummary:
    """Approved reviews of one product: average, count and how many of each star."""

    average: float
    count: int
    distribution: dict[int, int] = field(default_factory=dict)  # stars (1..5) -> count


@dataclass(frozen=True)
class ProductHit:
    """A product in a result list, with its rating for the card."""

    product: Product
    rating_avg: float
    rating_count: int


@dataclass(frozen=True)
class SearchResult:
    """One page of a search: the hits and how many matched in all."""

    hits: list[ProductHit]
    total: int


@dataclass(frozen=True)
class SearchQuery:
    """What the shopper asked for: text, filters, order and page."""

    text: str = ""
    category: str = ""
    price_min: float | None = None
    price_max: float | None = None
    sort: SortKey = "relevance"
    limit: int = 24
    offset: int = 0


def db_path(data_dir: Path) -> Path:
    """The catalog database under a data directory."""
    return data_dir / DB_NAME


def media_dir(data_dir: Path) -> Path:
    """The folder of product images served at /media/ under a data directory."""
    return data_dir / MEDIA_DIR_NAME


def fts_match_expression(text: str) -> str:
    """The FTS5 MATCH expression for shopper text: every word must match as a prefix.

    Words are quoted, so FTS5 operators typed by the shopper (AND, NEAR, quotes, colons)
    are plain text and never a syntax error. Empty when the text has no words.
    """
    tokens = _TOKEN_RE.findall(text[:MAX_QUERY_CHARS])[:MAX_QUERY_TOKENS]
    return " ".join(f'"{t}"*' for t in tokens)


def fts_with_category(match: str, category: str) -> str:
    """``match`` narrowed to a category inside the FTS index (exactness is checked after).

    Ranking and joining only the category's matches instead of every match of a brand
    typed with a category filter cuts such searches by ~3x at 50,000 products.
    """
    words = _TOKEN_RE.findall(category)
    if not match or not words:
        return match
    return f'({match}) AND category : "{" ".join(words)}"'


def _row_to_product(row: sqlite3.Row | tuple[Any, ...]) -> Product:
    specs_raw = json.loads(row[9])
    return Product(
        sku=row[0],
        ean=row[1],
        name=row[2],
        brand=row[3],
        category=row[4],
        price=row[5],
        currency=row[6],
        image=row[7],
        description=row[8],
        specs=tuple(spec_from_dict(s, "stored spec") for s in specs_raw),
    )


def _row_to_hit(row: sqlite3.Row | tuple[Any, ...]) -> ProductHit:
    return ProductHit(_row_to_product(row), float(row[10]), int(row[11]))


def _row_to_offer(row: tuple[Any, ...]) -> Offer:
    return Offer(
        id=row[0],
        title=row[1],
        description=row[2],
        skus=tuple(json.loads(row[3])),
        segments=tuple(json.loads(row[4])),
        valid_from=date.fromisoformat(row[5]) if row[5] else None,
        valid_to=date.fromisoformat(row[6]) if row[6] else None,
    )


def _row_to_review(row: tuple[Any, ...]) -> Review:
    return Review(
        id=row[0],
        sku=row[1],
        rating=row[2],
        title=row[3],
        text=row[4],
        author=row[5],
        date=date.fromisoformat(row[6]),
        store=row[7],
        status=row[8],
        source=row[9],
    )


def _unwrap(payload: dict[str, Any]) -> dict[str, Any]:
    """Central may wrap retained state in a CloudEvent; the record is then its data."""
    if "specversion" in payload and isinstance(payload.get("data"), dict):
        data: dict[str, Any] = payload["data"]
        return data
    return payload


class _ReadCache:
    """Recent read results, dropped on every write by this process and after a short TTL.

    A kiosk asks the same few questions over and over (popular searches, the products on
    screen); answering them from memory keeps pages fast under load. Writes by another
    process (``kiosk-edge catalog import`` while the daemon runs) show within the TTL.
    """

    def __init__(self, size: int, ttl_s: float) -> None:
        self._size = size
        self._ttl_s = ttl_s
        self._items: OrderedDict[Hashable, tuple[int, float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._version = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> tuple[bool, Any]:
        """(True, value) when a fresh value is cached, else (False, the version to store at)."""
        with self._lock:
            item = self._items.get(key)
            if (
                item is not None
                and item[0] == self._version
                and time.monotonic() - item[1] < self._ttl_s
            ):
                self._items.move_to_end(key)
                self.hits += 1
                return True, item[2]
            self.misses += 1
            return False, self._version

    def put(self, key: Hashable, version: int, value: Any) -> None:
        """Remember a value computed at ``version`` (ignored if a write came in between)."""
        with self._lock:
            if version != self._version or not self._size:
                return
            self._items[key] = (version, time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def resize(self, size: int) -> None:
        """Keep at most ``size`` results from now on (0: answer every read from SQLite)."""
        with self._lock:
            self._size = max(0, size)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def invalidate(self) -> None:
        """Forget everything (a write happened)."""
        with self._lock:
            self._version += 1
            self._items.clear()


class CatalogStore:
    """The catalog database; safe to use from the loop thread and waitress threads."""

    def __init__(self, path: Path | str) -> None:
        if str(path) == ":memory:":
            raise ValueError("CatalogStore needs a file path (threads share it through WAL)")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        self._cache = _ReadCache(CACHE_ENTRIES, CACHE_TTL_S)
        conn = self._conn()
        conn.executescript(_SCHEMA)
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        self._fill_product_keys(conn)

    def _fill_product_keys(self, conn: sqlite3.Connection) -> None:
        """Build the search keys of a catalog written before they existed (once)."""
        keys, products = conn.execute(
            "SELECT (SELECT COUNT(*) FROM product_keys), (SELECT COUNT(*) FROM products)"
        ).fetchone()
        if keys == products:
            return
        with self._write() as tx:
            tx.execute("DELETE FROM product_keys")
            tx.execute(
                "INSERT INTO product_keys SELECT rowid, category, price, name, rating_avg, "
                "rating_count FROM products"
            )
        _LOGGER.info("catalog: search keys built for %d products", products)

    # -- connections -------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise RuntimeError("the catalog store is closed")
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1e3
        )
        conn.execute("PRAGMA journal_mode=WAL")
        # The catalog can always be fetched again from central: NORMAL is durable enough
        # under WAL and keeps batch imports fast on an SD card.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._local.conn = conn
        with self._all_lock:
            self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection (at shutdown)."""
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error:
                _LOGGER.debug("closing a catalog connection failed", exc_info=True)
        self._local = threading.local()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialised across threads."""
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            # After the commit: a read computed on the old snapshot can no longer be stored.
            self._cache.invalidate()

    # -- writing -----------------------------------------------------------------------

    def apply_changes(self, changes: Sequence[CatalogChange]) -> list[str]:
        """Apply upserts and deletes in one transaction; return one message per rejected change."""
        return [message for _, message in self.apply_changes_detailed(changes)]

    def apply_changes_detailed(self, changes: Sequence[CatalogChange]) -> list[tuple[int, str]]:
        """Like :meth:`apply_changes`, with the index of each rejected change."""
        errors: list[tuple[int, str]] = []
        touched: set[str] = set()
        with self._write() as conn:
            for index, change in enumerate(changes):
                try:
                    self._apply_one(conn, change, touched)
                except CatalogDataError as exc:
                    errors.append((index, f"{change.kind} {change.key!r}: {exc}"))
                except (TypeError, ValueError, KeyError) as exc:
                    errors.append(
                        (index, f"{change.kind} {change.key!r}: malformed payload ({exc})")
                    )
            self._refresh_ratings(conn, touched)
        if errors:
            _LOGGER.warning("catalog batch: %d of %d changes rejected", len(errors), len(changes))
        return errors

    def _apply_one(
        self, conn: sqlite3.Connection, change: CatalogChange, touched: set[str]
    ) -> None:
        payload = _unwrap(change.payload) if change.payload is not None else None
        if change.kind == "product":
            if payload is None:
                conn.execute("DELETE FROM products WHERE sku = ?", (change.key,))
                return
            product = product_from_dict({"sku": change.key, **payload})
            if product.sku != change.key:
                raise CatalogDataError(f"product.sku {product.sku!r} differs from the key")
            self._upsert_product(conn, product)
            touched.add(product.sku)
        elif change.kind == "offer":
            if payload is None:
                conn.execute("DELETE FROM offers WHERE id = ?", (change.key,))
                return
            self._upsert_offer(conn, offer_from_dict({"id": change.key, **payload}))
        elif change.kind == "reviews":
            touched.add(change.key)
            if payload is None:
                conn.execute(
                    "DELETE FROM reviews WHERE sku = ? AND source = 'central'", (change.key,)
                )
                return
            items = payload.get("reviews")
            if not isinstance(items, list):
                raise CatalogDataError("reviews: expected {'reviews': [ ... ]} for the product")
            reviews = [
                review_from_dict({"source": "central", **r}, sku=change.key)
                if isinstance(r, dict)
                else review_from_dict(r, sku=change.key)
                for r in items
            ]
            # Central's list replaces what central said before; the kiosk's own pending
            # reviews stay until central returns them (same id) with a decision.
            conn.execute("DELETE FROM reviews WHERE sku = ? AND source = 'central'", (change.key,))
            for review in reviews:
                self._upsert_review(conn, review)
        elif change.kind == "shopper":
            if payload is None:
                conn.execute("DELETE FROM shoppers WHERE id_hash = ?", (change.key,))
                return
            shopper = shopper_from_dict(change.key, payload)
            conn.execute(
                "INSERT INTO shoppers(id_hash, first_name, segments, locale) VALUES (?,?,?,?) "
                "ON CONFLICT(id_hash) DO UPDATE SET first_name=excluded.first_name, "
                "segments=excluded.segments, locale=excluded.locale",
                (shopper.id_hash, shopper.first_name, json.dumps(shopper.segments), shopper.locale),
            )
        else:
            raise CatalogDataError(f"unknown change kind {change.kind!r}")

    @staticmethod
    def _upsert_product(conn: sqlite3.Connection, p: Product) -> None:
        conn.execute(
            "INSERT INTO products(sku, ean, name, brand, category, price, currency, image, "
            "description, specs) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(sku) DO UPDATE SET "
            "ean=excluded.ean, name=excluded.name, brand=excluded.brand, "
            "category=excluded.category, price=excluded.price, currency=excluded.currency, "
            "image=excluded.image, description=excluded.description, specs=excluded.specs",
            (
                p.sku,
                p.ean,
                p.name,
                p.brand,
                p.category,
                p.price,
                p.currency,
                p.image,
                p.description,
                json.dumps([spec_to_dict(s) for s in p.specs], ensure_ascii=False),
            ),
        )

    @staticmethod
    def _upsert_offer(conn: sqlite3.Connection, o: Offer) -> None:
        conn.execute(
            "INSERT INTO offers(id, title, description, skus, segments, valid_from, valid_to) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET title=excluded.title, "
            "description=excluded.description, skus=excluded.skus, segments=excluded.segments, "
            "valid_from=excluded.valid_from, valid_to=excluded.valid_to",
            (
                o.id,
                o.title,
                o.description,
                json.dumps(o.skus),
                json.dumps(o.segments),
                o.valid_from.isoformat() if o.valid_from else None,
                o.valid_to.isoformat() if o.valid_to else None,
            ),
        )

    @staticmethod
    def _upsert_review(conn: sqlite3.Connection, r: Review) -> None:
        conn.execute(
            "INSERT INTO reviews(id, sku, rating, title, text, author, date, store, status, "
            "source) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
            "sku=excluded.sku, rating=excluded.rating, title=excluded.title, text=excluded.text, "
            "author=excluded.author, date=excluded.date, store=excluded.store, "
            "status=excluded.status, source=excluded.source",
            (
                r.id,
                r.sku,
                r.rating,
                r.title,
                r.text,
                r.author,
                r.date.isoformat(),
                r.store,
                r.status,
                r.source,
            ),
        )

    @staticmethod
    def _refresh_ratings(conn: sqlite3.Connection, skus: Iterable[str]) -> None:
        for sku in skus:
            conn.execute(
                "UPDATE products SET "
                "rating_avg = COALESCE((SELECT AVG(rating) FROM reviews "
                "  WHERE sku = ?1 AND status = 'approved'), 0), "
                "rating_count = (SELECT COUNT(*) FROM reviews "
                "  WHERE sku = ?1 AND status = 'approved') "
                "WHERE sku = ?1",
                (sku,),
            )

    def add_review(self, review: Review) -> None:
        """Store a review written at this kiosk (pending until central approves it)."""
        with self._write() as conn:
            self._upsert_review(conn, review)
            self._refresh_ratings(conn, [review.sku])

    # -- reading -----------------------------------------------------------------------

    def count_products(self) -> int:
        """How many products the catalog holds."""
        row = self._conn().execute("SELECT COUNT(*) FROM products").fetchone()
        return int(row[0])

    def is_empty(self) -> bool:
        """True when no product is stored (first boot)."""
        return self._conn().execute("SELECT 1 FROM products LIMIT 1").fetchone() is None

    def get_product(self, sku: str) -> Product | None:
        """One product by SKU."""
        hit = self.get_hit(sku)
        return hit.product if hit else None

    def get_hit(self, sku: str) -> ProductHit | None:
        """One product by SKU, with its rating."""
        return self._cached(("hit", sku), lambda: self._get_hit(sku))

    def _get_hit(self, sku: str) -> ProductHit | None:
        row = (
            self._conn()
            .execute(f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE sku = ?", (sku,))
            .fetchone()
        )
        return _row_to_hit(row) if row else None

    def get_products(self, skus: Sequence[str]) -> list[Product]:
        """Products by SKU in the order asked; unknown SKUs are left out."""
        key = ("products", tuple(skus))
        return list(self._cached(key, lambda: tuple(self._get_products(skus))))

    def _get_products(self, skus: Sequence[str]) -> list[Product]:
        if not skus:
            return []
        marks = ",".join("?" * len(skus))
        rows = (
            self._conn()
            .execute(f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE sku IN ({marks})", list(skus))
            .fetchall()
        )
        by_sku = {r[0]: _row_to_product(r) for r in rows}
        return [by_sku[s] for s in skus if s in by_sku]

    def product_by_ean(self, ean: str) -> Product | None:
        """The product carrying this EAN/UPC (a scanned code), if any."""
        # A UPC-A read is the EAN-13 with a leading 0.
        candidates = (ean, "0" + ean) if len(ean) == 12 else (ean,)
        conn = self._conn()
        for code in candidates:
            row = conn.execute(
                f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE ean = ? LIMIT 1", (code,)
            ).fetchone()
            if row is not None:
                return _row_to_product(row)
        return None

    def list_products(self, limit: int = 50, offset: int = 0) -> list[Product]:
        """Products ordered by SKU (for `catalog list`)."""
        rows = (
            self._conn()
            .execute(
                f"SELECT {_PRODUCT_COLUMNS} FROM products ORDER BY sku LIMIT ? OFFSET ?",
                (max(0, limit), max(0, offset)),
            )
            .fetchall()
        )
        return [_row_to_product(r) for r in rows]

    def image_names(self) -> tuple[str, ...]:
        """Every distinct product image (file name or URL), for the media fetcher.

        Cached like other reads: the same tuple object until the catalog changes.
        """
        return self._cached(("image_names",), self._image_names)

    def _image_names(self) -> tuple[str, ...]:
        rows = self._conn().execute("SELECT DISTINCT image FROM products WHERE image != ''")
        return tuple(str(r[0]) for r in rows.fetchall())

    def categories(self) -> list[tuple[str, int]]:
        """Each category with its product count, by name."""
        rows = (
            self._conn()
            .execute(
                "SELECT category, COUNT(*) FROM products WHERE category != '' "
                "GROUP BY category ORDER BY category"
            )
            .fetchall()
        )
        return [(r[0], int(r[1])) for r in rows]

    def set_cache_entries(self, entries: int) -> None:
        """Resize the read cache; 0 turns it off (to measure or debug the uncached path)."""
        self._cache.resize(entries)

    def forget_cached(self) -> None:
        """Drop cached reads and pages now (a product image arrived or went away)."""
        self._cache.invalidate()

    def cache_stats(self) -> tuple[int, int]:
        """(hits, misses) of the read cache since start."""
        return self._cache.hits, self._cache.misses

    def memoize(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """``compute()``'s value, kept until the catalog next changes (e.g. a JSON answer).

        Callers namespace ``key`` (a tuple starting with their own name) and return only
        values derived from the catalog and the key.
        """
        return self._cached(("memo", key), compute)

    def _cached(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        found, value = self._cache.get(key)
        if found:
            cached: _T = value
            return cached
        result = compute()
        self._cache.put(key, value, result)
        return result

    def search(self, query: SearchQuery) -> SearchResult:
        """Products matching the text (accent-insensitive prefixes) and filters, one page."""
        return self._cached(("search", query), lambda: self._search(query))

    def _search(self, query: SearchQuery) -> SearchResult:
        where: list[str] = []
        params: list[Any] = []
        match = fts_match_expression(query.text)
        source = "products p"
        if match:
            # CROSS JOIN keeps the FTS match as the outer loop: otherwise SQLite may walk a
            # category index and re-run the full-text query for every row (seconds at 50k).
            source = "products_fts f CROSS JOIN product_keys p ON p.key = f.rowid"
            where.append("products_fts MATCH ?")
            params.append(fts_with_category(match, query.category))
        if query.category:
            where.append("p.category = ?")
            params.append(query.category)
        if query.price_min is not None:
            where.append("p.price >= ?")
            params.append(query.price_min)
        if query.price_max is not None:
            where.append("p.price <= ?")
            params.append(query.price_max)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        order = {
            "relevance": "f.rank, p.name" if match else "p.name",
            "price_asc": "p.price, p.name",
            "price_desc": "p.price DESC, p.name",
            "rating": "p.rating_avg DESC, p.rating_count DESC, p.name",
            "name": "p.name",
        }[query.sort]
        limit = max(1, min(MAX_PAGE_SIZE, query.limit))
        offset = max(0, query.offset)
        conn = self._conn()
        if match and len(where) == 1 and query.sort == "relevance":
            # Text only, by relevance: FTS5 ranks its own matches without touching products.
            source, clause, order = "products_fts f", "WHERE products_fts MATCH ?", "f.rank"
            ids_sql = "SELECT f.rowid FROM products_fts f"
        else:
            ids_sql = f"SELECT p.rowid FROM {source}"
        # Sort only row ids and sort keys, then fetch the page's rows: carrying every column
        # (specs JSON, descriptions) through the sorter for thousands of matches is slow.
        ids = [
            r[0]
            for r in conn.execute(
                f"{ids_sql} {clause} ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
        ]
        marks = ",".join("?" * len(ids))
        by_id = {
            r[0]: r[1:]
            for r in conn.execute(
                f"SELECT rowid, {_PRODUCT_COLUMNS} FROM products WHERE rowid IN ({marks})", ids
            )
        }
        rows = [by_id[i] for i in ids if i in by_id]
        if offset == 0 and len(rows) < limit:
            total = len(rows)
        else:
            total = int(
                conn.execute(f"SELECT COUNT(*) FROM {source} {clause}", params).fetchone()[0]
            )
        return SearchResult([_row_to_hit(r) for r in rows], total)

    def offers(self) -> list[Offer]:
        """Every stored offer, valid or not."""
        return list(self._cached(("offers",), self._offers))

    def _offers(self) -> tuple[Offer, ...]:
        rows = (
            self._conn()
            .execute(
                "SELECT id, title, description, skus, segments, valid_from, valid_to "
                "FROM offers ORDER BY id"
            )
            .fetchall()
        )
        return tuple(_row_to_offer(r) for r in rows)

    def offers_for(
        self, today: date, segments: Iterable[str] = (), sku: str | None = None
    ) -> list[Offer]:
        """Offers valid today for a shopper in ``segments``; with ``sku``, those on it.

        Without ``sku`` the result is what a shopper is welcomed with: offers meant for
        their segments first, then everyone's.
        """
        segs = frozenset(segments)
        found = [o for o in self.offers() if o.applies(today, segs)]
        if sku is not None:
            found = [o for o in found if not o.skus or sku in o.skus]
        return sorted(found, key=lambda o: (not o.segments, o.id))

    def reviews_for(self, sku: str, *, statuses: Sequence[str] = ("approved",)) -> list[Review]:
        """Reviews of a product with these statuses, newest first."""
        key = ("reviews", sku, tuple(statuses))
        return list(self._cached(key, lambda: tuple(self._reviews_for(sku, statuses))))

    def _reviews_for(self, sku: str, statuses: Sequence[str]) -> list[Review]:
        marks = ",".join("?" * len(statuses))
        rows = (
            self._conn()
            .execute(
                "SELECT id, sku, rating, title, text, author, date, store, status, source "
                f"FROM reviews WHERE sku = ? AND status IN ({marks}) ORDER BY date DESC, id",
                [sku, *statuses],
            )
            .fetchall()
        )
        return [_row_to_review(r) for r in rows]

    def rating_summary(self, sku: str) -> RatingSummary:
        """Average, count and star distribution of the approved reviews."""
        return self._cached(("rating", sku), lambda: self._rating_summary(sku))

    def _rating_summary(self, sku: str) -> RatingSummary:
        rows = (
            self._conn()
            .execute(
                "SELECT rating, COUNT(*) FROM reviews WHERE sku = ? AND status = 'approved' "
                "GROUP BY rating",
                (sku,),
            )
            .fetchall()
        )
        dist = dict.fromkeys(range(1, 6), 0)
        for rating, count in rows:
            dist[int(rating)] = int(count)
        count = sum(dist.values())
        average = sum(k * v for k, v in dist.items()) / count if count else 0.0
        return RatingSummary(round(average, 2), count, dist)

    def shopper(self, id_hash: str) -> Shopper | None:
        """The profile central published for this hashed loyalty id, if any."""
        row = (
            self._conn()
            .execute(
                "SELECT id_hash, first_name, segments, locale FROM shoppers WHERE id_hash = ?",
                (id_hash,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return Shopper(row[0], row[1], tuple(json.loads(row[2])), row[3])
