"""The kiosk pages with Flask's test client: rendering, escaping, CSRF, languages, idle reset."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from edge.catalog.models import CatalogChange
from edge.privacy import hash_identifier
from edge.session import SessionManager
from tests.support.kiosk_app import Kiosk, make_kiosk

DEMO_HASH = hash_identifier("demo-salt-not-secret", "loyalty", "2900001234566")


class Clock:
    """A hand-turned monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kiosk(tmp_path: Path, clock: Clock) -> Kiosk:
    k = make_kiosk(tmp_path)
    k.services.session = SessionManager(k.services.catalog, k.services.publish, 90.0, clock=clock)
    yield k  # type: ignore[misc]
    k.services.catalog.close()


@pytest.fixture
def client(kiosk: Kiosk) -> FlaskClient:
    return kiosk.client()


def csrf(client: FlaskClient, path: str = "/") -> str:
    html = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_home_shows_categories_and_starts_no_session(kiosk: Kiosk, client: FlaskClient) -> None:
    """The attract screen lists the five categories; merely showing it starts no session."""
    resp = client.get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    for name in ("Téléviseurs", "Casques audio", "Ordinateurs portables", "Aspirateurs"):
        assert name in html
    assert "Scannez un produit ou votre carte" in html
    assert kiosk.of_type("kiosk.session.start") == []
    assert "Content-Security-Policy" in resp.headers
    assert resp.headers["X-Frame-Options"] == "DENY"


def test_search_page_escapes_the_query(client: FlaskClient) -> None:
    """Typed text comes back escaped, never as markup."""
    html = client.get("/search?q=<script>alert(1)</script>").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_search_page_filters_and_bad_filters(client: FlaskClient) -> None:
    """Category and price filters narrow the cards; a bad filter is ignored with a notice."""
    html = client.get("/search?category=tv&price_max=1000").get_data(as_text=True)
    prices = [
        float(p.replace("\u202f", "").replace("\xa0", "").replace(",", "."))
        for p in re.findall(r'class="price">([\d\u202f\xa0,]+)', html)
    ]
    assert prices
    assert all(p <= 1000 for p in prices)
    bad = client.get("/search?price_min=abc").get_data(as_text=True)
    assert "ignorés" in bad


def test_product_page_shows_specs_offers_and_reviews(client: FlaskClient) -> None:
    """Specs with units, the product's offer, the rating distribution, approved reviews."""
    html = client.get("/products/TV-001").get_data(as_text=True)
    assert "Caractéristiques" in html
    assert "Diagonale" in html
    assert "Barre de son à 1 €" in html
    assert html.count("<progress") == 5
    assert "Avis clients" in html
    assert client.get("/products/NOPE").status_code == 404


def test_review_html_is_escaped_once_approved(kiosk: Kiosk, client: FlaskClient) -> None:
    """A review with markup is stored as text and shown escaped after central approves it."""
    token = csrf(client, "/products/TV-002/review")
    resp = client.post(
        "/products/TV-002/review",
        data={
            "csrf_token": token,
            "rating": "5",
            "title": "<img src=x onerror=alert(1)>",
            "text": "<script>alert('x')</script> super",
            "author": "Léa <b>M</b>",
            "consent": "on",
        },
    )
    assert resp.status_code == 200
    assert "après modération" in resp.get_data(as_text=True)
    store = kiosk.services.catalog
    (pending,) = store.reviews_for("TV-002", statuses=("pending",))
    page = client.get("/products/TV-002").get_data(as_text=True)
    assert "onerror=alert(1)&gt;" not in page  # pending: not shown at all yet
    approved = {
        "id": pending.id,
        "rating": 5,
        "title": pending.title,
        "text": pending.text,
        "author": pending.author,
        "date": "2026-11-01",
        "status": "approved",
    }
    store.apply_changes([CatalogChange("reviews", "TV-002", {"reviews": [approved]})])
    page = client.get("/products/TV-002").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; super" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>alert" not in page
    assert "<img src=x" not in page


def test_review_form_errors_and_csrf(client: FlaskClient) -> None:
    """Invalid fields are 400 with the field's message; a post without token is refused."""
    token = csrf(client, "/products/TV-001/review")
    resp = client.post(
        "/products/TV-001/review",
        data={"csrf_token": token, "rating": "9", "title": "ok", "text": "short", "author": "A"},
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "Choisissez une note de 1 à 5 étoiles." in html
    assert "Merci d'accepter la publication" in html
    no_token = client.post("/products/TV-001/review", data={"rating": "5"})
    assert no_token.status_code == 400
    assert "session est terminée" in no_token.get_data(as_text=True)


def test_compare_page_marks_differences_and_best(client: FlaskClient, kiosk: Kiosk) -> None:
    """Rows that differ are flagged, one best price is marked, identical rows can be hidden."""
    html = client.get("/compare?sku=TV-001&sku=TV-002").get_data(as_text=True)
    assert 'data-row="price"' in html
    assert html.count('class="differs"') >= 1
    assert html.count(" best") >= 1
    hidden = client.get("/compare?sku=TV-001&sku=TV-002&hide_same=1").get_data(as_text=True)
    assert 'class="same"' not in hidden
    assert kiosk.of_type("kiosk.compare")[-1].data["skus"] == ["TV-001", "TV-002"]
    one = client.get("/compare?sku=TV-001").get_data(as_text=True)
    assert "Ajoutez au moins un autre produit" in one


def test_compare_list_through_forms(client: FlaskClient, kiosk: Kiosk) -> None:
    """Adding two products to the list shows them on /compare; removing one leaves one."""
    token = csrf(client)
    for sku in ("TV-001", "HP-001"):
        resp = client.post("/compare/add", data={"csrf_token": token, "sku": sku, "next": "/"})
        assert resp.status_code == 303
    assert kiosk.session.snapshot().compare == ["TV-001", "HP-001"]
    html = client.get("/compare").get_data(as_text=True)
    assert html.count('class="compare-product"') == 2
    client.post("/compare/remove", data={"csrf_token": token, "sku": "TV-001"})
    assert kiosk.session.snapshot().compare == ["HP-001"]
    # An unknown SKU is never added; an absolute "next" URL is not followed.
    resp = client.post(
        "/compare/add", data={"csrf_token": token, "sku": "NOPE", "next": "//evil.example/"}
    )
    assert resp.headers["Location"].endswith("/compare")
    assert kiosk.session.snapshot().compare == ["HP-001"]


def test_language_switch_and_prices(client: FlaskClient) -> None:
    """English shows English text and English price format; French uses a decimal comma."""
    fr = client.get("/products/TV-001").get_data(as_text=True)
    assert re.search(r"\d,\d\d\u00a0€", fr)
    token = csrf(client)
    client.post("/prefs", data={"csrf_token": token, "lang": "en", "next": "/products/TV-001"})
    en = client.get("/products/TV-001").get_data(as_text=True)
    assert '<html lang="en"' in en
    assert "Specifications" in en
    assert re.search(r"€\d,?\d+\.\d\d", en)
    client.post("/prefs", data={"csrf_token": token, "large": "1"})
    assert 'class="large-text"' in client.get("/").get_data(as_text=True)


def test_welcome_is_rendered_and_escaped(kiosk: Kiosk, client: FlaskClient) -> None:
    """After a loyalty scan every page greets the shopper; a name with markup is escaped."""
    kiosk.services.catalog.apply_changes(
        [CatalogChange("shopper", "h1", {"first_name": "<i>Zoé</i>", "segments": ["gold"]})]
    )
    kiosk.session.identify("h1", "loyalty")
    html = client.get("/").get_data(as_text=True)
    assert "Bienvenue, &lt;i&gt;Zoé&lt;/i&gt; !" in html
    assert "Offre Gold" in html
    assert "Ce n'est pas moi / Terminer" in html


def test_idle_reset_forgets_everything(kiosk: Kiosk, client: FlaskClient, clock: Clock) -> None:
    """After the idle time: no welcome, empty compare list, language back to the default."""
    token = csrf(client)
    client.post("/prefs", data={"csrf_token": token, "lang": "en"})
    kiosk.session.identify(DEMO_HASH, "loyalty")
    client.post("/compare/add", data={"csrf_token": token, "sku": "TV-001"})
    html = client.get("/").get_data(as_text=True)
    # Camille's profile says French: her welcome switches the screen from the English chosen
    # before she identified; her own choice after that holds until the session ends.
    assert "Bienvenue, Camille !" in html
    client.post("/prefs", data={"csrf_token": token, "lang": "en"})
    assert "Welcome, Camille!" in client.get("/").get_data(as_text=True)
    clock.now += 91
    assert kiosk.session.check_idle() is True
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="fr"' in html
    assert "Camille" not in html
    assert "data-compare-count>0<" in html
    assert kiosk.of_type("local.session.cleared")
    end = kiosk.of_type("kiosk.session.end")[-1]
    assert end.data["reason"] == "idle"
    assert end.data["id_hash"] == DEMO_HASH


def test_end_session_button(kiosk: Kiosk, client: FlaskClient) -> None:
    """ "Not me / end session" forgets the shopper and returns home."""
    kiosk.session.identify(DEMO_HASH, "loyalty")
    token = csrf(client)
    resp = client.post("/session/end", data={"csrf_token": token})
    assert resp.status_code == 303
    assert not kiosk.session.snapshot().identified
    assert kiosk.of_type("kiosk.session.end")[-1].data["reason"] == "ended"


def test_its_me_identifies_the_nearby_phone(kiosk: Kiosk, client: FlaskClient) -> None:
    """With a phone in the near zone the prompt shows, and "It's me" identifies by its hash."""
    from edge.events import new_event

    kiosk.session.on_event(
        new_event("kiosk.beacon.enter", {"beacon_class": "phone", "id": "ph1", "zone": "near"})
    )
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'class="its-me"\s+data-its-me', html)
    client.post("/session/its-me", data={"csrf_token": csrf(client)})
    assert kiosk.session.snapshot().id_hash == "ph1"


def test_media_is_served_and_confined(client: FlaskClient) -> None:
    """Product images come from the media folder; no path escapes it."""
    assert client.get("/media/TV-001.svg").status_code == 200
    assert client.get("/media/../catalog.sqlite3").status_code == 404
    assert client.get("/media/%2e%2e/catalog.sqlite3").status_code == 404


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/search?q=tv", True),
        ("/products/TV-001", True),
        ("//evil.example/", False),
        ("/\\evil.example", False),
        ("https://evil.example/", False),
        ("/x\r\nSet-Cookie: a=b", False),
        ("", False),
    ],
)
def test_form_redirects_stay_on_the_kiosk(client: FlaskClient, target: str, safe: bool) -> None:
    """The "next" field of a form only ever leads to a page of the kiosk itself."""
    from kiosk_ui.security import safe_next

    assert (safe_next(target) == target) is safe
    resp = client.post("/prefs", data={"csrf_token": csrf(client), "lang": "fr", "next": target})
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert location == target if safe else location == "/"


def test_unknown_paths_and_static_files_start_no_session(kiosk: Kiosk, client: FlaskClient) -> None:
    """/favicon.ico (asked by every browser), static files and healthz are not activity."""
    for path in ("/favicon.ico", "/static/kiosk.css", "/api/healthz", "/media/TV-001.svg", "/"):
        client.get(path)
    assert not kiosk.session.snapshot().active
    client.get("/search?q=tv")
    assert kiosk.session.snapshot().active


def test_shared_product_page_is_personal_where_it_must_be(kiosk: Kiosk) -> None:
    """The product page is rendered once for many views, yet each browser gets its own CSRF
    token, and identification, the compare list and the language show at once."""
    first, second = kiosk.client(), kiosk.client()
    page_1 = first.get("/products/TV-001").get_data(as_text=True)
    page_2 = second.get("/products/TV-001").get_data(as_text=True)
    token_1 = re.findall(r'name="csrf_token" value="([^"]+)"', page_1)
    token_2 = re.findall(r'name="csrf_token" value="([^"]+)"', page_2)
    assert token_1
    assert token_2
    assert set(token_1) != set(token_2)
    assert len(set(token_1)) == 1
    assert "csrf-" not in page_1  # no placeholder left behind
    # Each browser's own token works for its own post.
    resp = first.post("/compare/add", data={"csrf_token": token_1[0], "sku": "TV-001"})
    assert resp.status_code == 303
    assert (
        second.post("/compare/add", data={"csrf_token": token_1[0], "sku": "TV-002"}).status_code
        == 400
    )
    after_add = first.get("/products/TV-001").get_data(as_text=True)
    assert "Dans le comparateur" in after_add
    assert "Bienvenue, Camille" not in after_add
    kiosk.session.identify(DEMO_HASH, "loyalty")
    welcomed = first.get("/products/TV-001").get_data(as_text=True)
    assert "Bienvenue, Camille !" in welcomed
    assert "Offre Gold" in welcomed


def test_profile_locale_switches_the_screen_until_the_session_ends(tmp_path: Path) -> None:
    """A shopper whose profile says "en" is welcomed in English on a French kiosk (prices
    too); a profile without a locale keeps the screen's language; the end brings French back."""
    k = make_kiosk(tmp_path)
    try:
        k.services.catalog.apply_changes(
            [
                CatalogChange("shopper", "h-en", {"first_name": "Ann", "locale": "en-GB"}),
                CatalogChange("shopper", "h-none", {"first_name": "Zoé"}),
            ]
        )
        client = k.client()
        assert '<html lang="fr"' in client.get("/products/TV-001").get_data(as_text=True)
        k.session.identify("h-en", "loyalty")
        html = client.get("/products/TV-001").get_data(as_text=True)
        assert '<html lang="en"' in html
        assert "Welcome, Ann!" in html
        assert re.search(r"€\d,?\d+\.\d\d", html)
        welcome = k.of_type("local.session.welcome")[-1]
        assert welcome.data["locale"] == "en-GB"  # the screen reloads itself in English
        k.session.end("ended")
        assert '<html lang="fr"' in client.get("/products/TV-001").get_data(as_text=True)
        k.session.identify("h-none", "loyalty")
        assert '<html lang="fr"' in client.get("/").get_data(as_text=True)
    finally:
        k.services.catalog.close()
