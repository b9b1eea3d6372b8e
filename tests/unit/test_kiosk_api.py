"""The JSON API with Flask's test client over the real catalog and session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from edge.events import new_event
from tests.support.kiosk_app import Kiosk, make_kiosk


@pytest.fixture
def kiosk(tmp_path: Path) -> Kiosk:
    k = make_kiosk(tmp_path)
    yield k  # type: ignore[misc]
    k.services.stopping.set()
    k.services.catalog.close()


@pytest.fixture
def client(kiosk: Kiosk) -> FlaskClient:
    return kiosk.client()


def token(client: FlaskClient) -> str:
    value = client.get("/api/session").get_json()["csrf_token"]
    assert isinstance(value, str)
    return value


def review(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "sku": "TV-001",
        "rating": 4,
        "title": "Belle image",
        "text": "Très contente de cet achat.",
        "author": "Camille D.",
        "consent": True,
    }
    body.update(over)
    return body


def test_search_is_accent_insensitive_with_filters(client: FlaskClient) -> None:
    """?q=televiseur finds the TVs; category and price filters narrow; items carry a rating."""
    body = client.get("/api/products?q=televiseur&limit=5").get_json()
    assert body["total"] == 42
    assert len(body["items"]) == 5
    assert all("Téléviseur" in item["name"] for item in body["items"])
    assert {"sku", "name", "price", "specs", "rating"} <= set(body["items"][0])
    cheap = client.get("/api/products?category=headphones&price_max=100&sort=price_asc").get_json()
    prices = [item["price"] for item in cheap["items"]]
    assert prices == sorted(prices)
    assert all(p <= 100 for p in prices)
    assert all(item["category"] == "headphones" for item in cheap["items"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("price_min=abc", "price_min"),
        ("price_min=-5", "price_min"),
        ("price_min=500&price_max=100", "price_max"),
        ("sort=cheapest", "sort"),
        ("limit=1000", "limit"),
        ("offset=x", "offset"),
        ("q=" + "a" * 201, "q"),
    ],
)
def test_bad_search_input_is_400_naming_the_field(
    client: FlaskClient, query: str, field: str
) -> None:
    """Each malformed parameter is refused with its name."""
    resp = client.get("/api/products?" + query)
    assert resp.status_code == 400
    assert resp.get_json()["field"] == field


def test_product_detail_and_unknown_sku(client: FlaskClient) -> None:
    """A product has its rating summary, offers and reviews; an unknown SKU is 404."""
    body = client.get("/api/products/TV-001").get_json()
    assert body["product"]["ean"] == "3760000000017"
    rating = body["rating"]
    assert sum(rating["distribution"].values()) == rating["count"]
    assert any(o["id"] == "tv-001-bundle" for o in body["offers"])
    assert all(r["status"] == "approved" for r in body["reviews"])
    missing = client.get("/api/products/NOPE-1")
    assert missing.status_code == 404
    assert missing.get_json()["field"] == "sku"


def test_compare_rows_and_errors(client: FlaskClient) -> None:
    """Two products give rows with differences and best values; bad SKU lists are refused."""
    body = client.get("/api/compare?sku=TV-001&sku=TV-002").get_json()
    assert [p["sku"] for p in body["products"]] == ["TV-001", "TV-002"]
    price = body["rows"][0]
    assert price["key"] == "price"
    assert sum(c["best"] for c in price["cells"]) == 1
    assert any(r["differs"] for r in body["rows"])
    assert client.get("/api/compare?sku=TV-001").status_code == 400
    assert client.get("/api/compare?sku=TV-001&sku=TV-001").status_code == 400
    five = "&".join(f"sku=TV-00{i}" for i in range(1, 6))
    assert client.get("/api/compare?" + five).get_json()["field"] == "sku"
    unknown = client.get("/api/compare?sku=TV-001&sku=NOPE")
    assert unknown.status_code == 404
    assert unknown.get_json()["sku"] == "NOPE"


def test_review_needs_the_csrf_token(client: FlaskClient) -> None:
    """Without the token (and without a same-origin Origin) a review is refused."""
    resp = client.post("/api/reviews", json=review())
    assert resp.status_code == 400
    assert resp.get_json()["field"] == "X-CSRF-Token"
    same_origin = client.post("/api/reviews", json=review(), headers={"Origin": "http://localhost"})
    assert same_origin.status_code == 201
    other_origin = client.post(
        "/api/reviews", json=review(), headers={"Origin": "http://evil.example"}
    )
    assert other_origin.status_code == 400


def test_review_is_stored_pending_and_relayed(kiosk: Kiosk, client: FlaskClient) -> None:
    """A valid review is 201 pending, not shown yet, and published as kiosk.review.submitted."""
    resp = client.post("/api/reviews", json=review(), headers={"X-CSRF-Token": token(client)})
    assert resp.status_code == 201
    assert resp.get_json()["status"] == "pending"
    pending = kiosk.services.catalog.reviews_for("TV-001", statuses=("pending",))
    assert [r.title for r in pending] == ["Belle image"]
    shown = client.get("/api/products/TV-001").get_json()["reviews"]
    assert "Belle image" not in [r["title"] for r in shown]
    sent = kiosk.of_type("kiosk.review.submitted")
    assert len(sent) == 1
    assert sent[0].data["sku"] == "TV-001"
    assert sent[0].data["status"] == "pending"
    assert sent[0].data["consent"] is True


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"rating": 6}, "rating"),
        ({"rating": "4.5"}, "rating"),
        ({"rating": True}, "rating"),
        ({"title": "ab"}, "title"),
        ({"text": "x" * 2001}, "text"),
        ({"author": "me@example.com"}, "author"),
        ({"author": "2900001234566"}, "author"),
        ({"consent": False}, "consent"),
        ({"text": 5}, "text"),
    ],
)
def test_invalid_reviews_name_the_field(
    client: FlaskClient, over: dict[str, object], field: str
) -> None:
    """Rating range, lengths, personal data in the name and consent are checked."""
    resp = client.post("/api/reviews", json=review(**over), headers={"X-CSRF-Token": token(client)})
    assert resp.status_code == 400
    assert resp.get_json()["field"] == field


def test_review_of_unknown_product_and_bad_body(client: FlaskClient) -> None:
    """Unknown SKU 404; a body that is not a JSON object 400; an oversized body 413."""
    headers = {"X-CSRF-Token": token(client)}
    assert client.post("/api/reviews", json=review(sku="NOPE"), headers=headers).status_code == 404
    bad = client.post("/api/reviews", data="[1]", content_type="application/json", headers=headers)
    assert bad.status_code == 400
    huge = client.post(
        "/api/reviews",
        data=json.dumps(review(text="x" * 70_000)),
        content_type="application/json",
        headers=headers,
    )
    assert huge.status_code == 413
    assert "error" in huge.get_json()


def test_review_submission_is_rate_limited(client: FlaskClient) -> None:
    """The sixth review within ten minutes is 429 with Retry-After."""
    headers = {"X-CSRF-Token": token(client)}
    codes = [
        client.post("/api/reviews", json=review(title=f"Avis {i}"), headers=headers).status_code
        for i in range(6)
    ]
    assert codes == [201] * 5 + [429]
    limited = client.post("/api/reviews", json=review(), headers=headers)
    assert int(limited.headers["Retry-After"]) > 0


def test_search_event_hides_numbers_that_may_be_personal(kiosk: Kiosk, client: FlaskClient) -> None:
    """A search for a card number is counted but its text never leaves the kiosk."""
    client.get("/api/products?q=tv 55")
    client.get("/api/products?q=2900001234566")
    client.get("/api/products?q=06 12 34 56 78")
    queries = [e.data["query"] for e in kiosk.of_type("kiosk.search")]
    assert queries == ["tv 55", None, None]


def test_unknown_api_route_is_json_404(client: FlaskClient) -> None:
    """Errors under /api/ are JSON."""
    resp = client.get("/api/nothing-here")
    assert resp.status_code == 404
    assert resp.get_json() == {"error": "not found"}


def test_event_stream_delivers_local_events(kiosk: Kiosk, client: FlaskClient) -> None:
    """/api/events sends hello, then the welcome published on the bus, as SSE."""
    resp = client.get("/api/events", buffered=False)
    assert resp.mimetype == "text/event-stream"
    chunks = iter(resp.response)
    first = next(chunks)
    assert b"event: hello" in first
    kiosk.services.bus.publish(
        new_event("local.session.welcome", {"first_name": "<b>Camille</b>", "offers": []})
    )
    kiosk.services.bus.publish(new_event("kiosk.search", {"query": "x"}))  # not streamed
    kiosk.services.bus.publish(new_event("local.session.cleared", {"reason": "idle"}))
    seen = b""
    for chunk in chunks:
        seen += chunk
        if b"event: cleared" in seen:
            break
    assert b"event: welcome" in seen
    assert b'"first_name": "<b>Camille</b>"' in seen  # JSON for textContent, never HTML
    assert b"kiosk.search" not in seen
    kiosk.services.stopping.set()
    resp.close()


def test_healthz_still_answers(client: FlaskClient) -> None:
    """The health endpoint is unchanged by the kiosk plumbing (and starts no session)."""
    resp = client.get("/api/healthz")
    assert resp.status_code in (200, 503)
    assert "components" in resp.get_json()


def test_answers_follow_catalog_changes(kiosk: Kiosk, client: FlaskClient) -> None:
    """Cached answers are dropped when central changes the catalog."""
    from edge.catalog.models import CatalogChange

    assert client.get("/api/products?q=zorglub").get_json()["total"] == 0
    before = client.get("/api/compare?sku=TV-001&sku=TV-002").get_json()
    kiosk.services.catalog.apply_changes(
        [
            CatalogChange("product", "Z-1", {"name": "Zorglub", "price": 1.0}),
            CatalogChange("product", "TV-002", {"name": "Renamed", "price": 1.0}),
        ]
    )
    assert client.get("/api/products?q=zorglub").get_json()["total"] == 1
    after = client.get("/api/compare?sku=TV-001&sku=TV-002").get_json()
    assert before["products"][1]["name"] != "Renamed"
    assert after["products"][1]["name"] == "Renamed"


def test_without_a_catalog_the_catalog_calls_answer_503(kiosk: Kiosk, client: FlaskClient) -> None:
    """No catalog open: the API calls that need it say so as JSON with 503, the page with 503."""
    csrf = token(client)
    store, kiosk.services.catalog = kiosk.services.catalog, None
    try:
        answers = [
            client.get("/api/products?q=tv"),
            client.get("/api/products/TV-001"),
            client.get("/api/compare?sku=TV-001&sku=TV-002"),
            client.post("/api/reviews", json=review(), headers={"X-CSRF-Token": csrf}),
            client.post("/api/takeaway/qr", json={"skus": ["TV-001"]}),
        ]
        page = client.get("/products/TV-001")
    finally:
        kiosk.services.catalog = store
    for resp in answers:
        assert resp.status_code == 503, resp.request.path
        assert resp.get_json() == {"error": "the catalog is not available"}
    assert page.status_code == 503
    assert page.mimetype == "text/html"


def test_takeaway_refuses_other_sites(client: FlaskClient) -> None:
    """A take-away post from another site's page is refused (403); from the kiosk's, served."""
    body = {"skus": ["TV-001"]}
    foreign = client.post("/api/takeaway/qr", json=body, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    assert foreign.get_json() == {"error": "cross-origin requests are not accepted"}
    own = client.post("/api/takeaway/qr", json=body, headers={"Origin": "http://localhost"})
    assert own.status_code == 200, own.get_json()
