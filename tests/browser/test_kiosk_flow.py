"""A shopper's whole visit in Debian's Chromium against the real daemon and waitress server.

search -> product -> add two products to compare -> compare shows differing rows -> write a
review -> a loyalty scan on the bus shows the welcome without reload -> a product scan opens
its page -> idle timeout returns home with nothing left. Screenshots of each screen are saved
under tests/artifacts/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from edge.catalog.models import CatalogChange
from edge.events import new_event
from edge.privacy import hash_identifier
from tests.browser.conftest import shot, type_on_screen
from tests.conftest import REPO_ROOT, ConfigWriter
from tests.support.daemon import InProcessDaemon

pytestmark = pytest.mark.browser

DEMO_CATALOG = REPO_ROOT / "firmware_config" / "demo" / "catalog.json"
DEMO_SALT = "demo-salt-not-secret"
IDLE_S = 10.0  # the smallest idle timeout the configuration allows


@pytest.fixture
def daemon(write_config: ConfigWriter) -> InProcessDaemon:
    config = write_config(
        device={"identity_salt": DEMO_SALT, "locale": "fr_FR"},
        kiosk={"catalog_file": str(DEMO_CATALOG), "idle_timeout_s": IDLE_S},
    )
    with InProcessDaemon(config) as running:
        yield running  # type: ignore[misc]


def publish(daemon: InProcessDaemon, event_type: str, data: dict[str, object]) -> None:
    daemon.run_on_loop(daemon.services.bus.publish, new_event(event_type, data))


def wait_live(page: Page) -> None:
    """Wait until the page's Server-Sent Events stream is open.

    A locator, not wait_for_function: polling a JS string needs eval, which the kiosk's
    Content-Security-Policy rightly forbids.
    """
    expect(page.locator("body[data-live-open='1']")).to_have_count(1)


def test_search_compare_review_welcome_scan_and_idle(daemon: InProcessDaemon, page: Page) -> None:
    """The whole visit, end to end, in French, with live events and the idle reset."""
    base = daemon.base_url
    page.goto(base + "/")
    expect(page.locator("h1")).to_contain_text("Trouvez")
    page.wait_for_load_state("networkidle")
    # Showing the attract screen (and whatever the browser fetches with it) starts nothing.
    assert not daemon.services.session.snapshot().active
    expect(page.locator(".category")).to_have_count(5)
    shot(page, "kiosk-01-home")

    # Search, accent-insensitive.
    page.fill("#hero-q", "televiseur oled")
    page.press("#hero-q", "Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=televiseur"))
    cards = page.locator(".grid .card")
    expect(cards.first).to_be_visible()
    assert cards.count() >= 2
    expect(page.locator(".card-name").first).to_contain_text("Téléviseur")
    shot(page, "kiosk-02-search")

    # First product: open and add to compare.
    first_name = page.locator(".card-name").nth(0).inner_text()
    page.locator(".card-link").nth(0).click()
    expect(page.locator("h1.product-name")).to_have_text(first_name)
    expect(page.locator(".spec-table tr").first).to_be_visible()
    expect(page.locator(".rating-summary")).to_be_visible()
    shot(page, "kiosk-03-product")
    page.get_by_role("button", name=re.compile("Comparer")).first.click()
    expect(page.locator("[data-compare-count]")).to_have_text("1")

    # Second product from the results, add to compare, open the comparison.
    page.go_back()
    page.go_back()
    page.locator(".card-link").nth(1).click()
    page.get_by_role("button", name=re.compile("Comparer")).first.click()
    expect(page.locator("[data-compare-count]")).to_have_text("2")
    page.locator(".compare-link").click()
    expect(page.locator(".compare-product")).to_have_count(2)
    assert page.locator("tr.differs").count() >= 1
    expect(page.locator("tr[data-row=price] th")).to_contain_text("Prix")
    shot(page, "kiosk-04-compare")
    same_before = page.locator("tbody tr.same").count()
    page.locator("[data-toggle-same]").click()
    expect(page).to_have_url(re.compile(r"hide_same=1"))
    expect(page.locator("tbody tr.differs").first).to_be_visible()
    expect(page.locator("tbody tr.same")).to_have_count(0)
    if same_before:
        expect(page.locator(".compare-tools")).to_contain_text("masqu")

    # Write a review (keyboard and touch friendly form), see the moderation notice.
    page.locator(".compare-product a").first.click()
    page.get_by_role("link", name="Donner mon avis").first.click()
    page.locator("label[for=rating-4]").click()
    page.fill("#title", "Très belle image")
    page.fill("#text", "Les couleurs sont superbes <b>vraiment</b>, le son correct.")
    # The display name typed on the on-screen keyboard (AZERTY: the page is French).
    page.locator("#author").click()
    osk = page.locator("[data-osk]")
    expect(osk).to_be_visible()
    expect(osk).to_have_attribute("data-layout", "azerty")
    type_on_screen(page, "Camille D.")
    expect(page.locator("#author")).to_have_value("Camille D.")
    shot(page, "kiosk-05-review-form")
    osk.locator("[data-key=hide]").click()
    expect(osk).to_be_hidden()
    page.locator("input[name=consent]").check()
    page.get_by_role("button", name="Envoyer mon avis").click()
    expect(page.locator("[data-thanks]")).to_contain_text("après modération")
    shot(page, "kiosk-06-review-thanks")
    pending = daemon.services.catalog.reviews_for(
        page.url.split("/products/")[1].split("/")[0], statuses=("pending",)
    )
    assert [r.title for r in pending] == ["Très belle image"]

    # A loyalty scan on the bus: the welcome appears live, without a reload.
    page.goto(base + "/products/TV-002")
    wait_live(page)
    page.evaluate("window.__noReload = 42")
    card_hash = hash_identifier(DEMO_SALT, "loyalty", "2900001234566")
    publish(daemon, "kiosk.loyalty.scan", {"id_hash": card_hash, "source": "camera"})
    expect(page.locator("[data-welcome-title]")).to_have_text("Bienvenue, Camille !")
    expect(page.locator("[data-welcome-offers]")).to_contain_text("Gold")
    assert page.evaluate("window.__noReload") == 42
    shot(page, "kiosk-07-welcome")

    # A product scanned at the camera opens its page.
    publish(daemon, "kiosk.product.scan", {"ean": "3760000000017", "source": "camera"})
    expect(page).to_have_url(re.compile(r"/products/TV-001"))
    expect(page.locator("[data-welcome-title]")).to_have_text("Bienvenue, Camille !")
    shot(page, "kiosk-08-scanned-product")

    # Type something, then walk away: the kiosk returns home with nothing left.
    wait_live(page)
    page.fill("#top-q", "casque sans fil")
    started = time.monotonic()
    page.wait_for_url(base + "/", timeout=(IDLE_S + 15) * 1000)
    assert time.monotonic() - started >= IDLE_S - 6  # the last activity ping was <= 5 s before
    expect(page.locator("[data-welcome]")).to_be_hidden()
    expect(page.locator("[data-compare-count]")).to_have_text("0")
    expect(page.locator("#hero-q")).to_have_value("")
    state = daemon.services.session.snapshot()
    assert state.id_hash is None
    assert state.compare == []
    page.wait_for_load_state("networkidle")
    assert not daemon.services.session.snapshot().active
    shot(page, "kiosk-09-after-idle")


def test_language_switch_and_larger_text(daemon: InProcessDaemon, page: Page) -> None:
    """The switch shows English with English prices; the larger-text mode grows the text."""
    page.goto(daemon.base_url + "/products/TV-001")
    price_fr = page.locator(".price-large").inner_text()
    assert "€" in price_fr
    assert "," in price_fr
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Specifications")).to_be_visible()
    price_en = page.locator(".price-large").inner_text()
    assert price_en.startswith("€")
    assert "." in price_en
    page.wait_for_load_state("load")
    size_before = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    page.locator("[data-testid=large-text]").click()
    expect(page.locator("html")).to_have_class(re.compile("large-text"))
    page.wait_for_load_state("load")  # the stylesheet, not only the new DOM
    size_after = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
    assert size_after > size_before * 1.2
    shot(page, "kiosk-10-english-large")
    # Keyboard operable: Tab reaches the search field and a button shows a visible focus ring.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.tagName")
    assert focused in ("A", "INPUT", "BUTTON")
    ring = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert ring != "none"
    # The whole search is doable without a pointer: focus the field, type, Enter.
    page.locator("#top-q").focus()
    page.keyboard.type("casque")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/search\?q=casque"))
    page.keyboard.press("Escape")  # the on-screen keyboard, if open, steps aside
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('card-link')"):
            break
    page.keyboard.press("Enter")
    expect(page.locator("h1.product-name")).to_be_visible()


def test_touch_targets_are_at_least_44px(daemon: InProcessDaemon, page: Page) -> None:
    """Every visible button and link on the main screens is at least 44 px tall."""
    base = daemon.base_url
    for path in ("/", "/search?q=casque", "/products/TV-001", "/compare?sku=TV-001&sku=TV-002"):
        page.goto(base + path)
        small = page.evaluate(
            """() => [...document.querySelectorAll('button, a.btn, a.chip, a.card-link, .category')]
                .filter(e => e.offsetParent !== null)
                .map(e => [e.textContent.trim().slice(0, 30), e.getBoundingClientRect().height])
                .filter(([, h]) => h < 44)"""
        )
        assert small == [], f"{path}: {small}"


CONTRAST_JS = """() => {
  const lum = (rgb) => {
    const c = rgb.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const parse = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const st = getComputedStyle(e);
      if (st.backgroundImage !== 'none') return null;  // gradients: not checked here
      const bg = parse(st.backgroundColor);
      if (bg.length === 3 || (bg.length === 4 && bg[3] === 1)) return bg.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!el.offsetParent && el.tagName !== 'BODY') continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || parseFloat(st.opacity) < 1) continue;
    const bg = background(el);
    if (!bg) continue;
    const fg = parse(st.color).slice(0, 3);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(st.fontSize);
    const large = size >= 24 || (size >= 18.66 && parseInt(st.fontWeight, 10) >= 700);
    // Decorative glyphs (aria-hidden, e.g. rating stars) are graphics: 3:1 (WCAG 1.4.11).
    const graphic = el.closest('[aria-hidden=true]') !== null;
    if (ratio < (large || graphic ? 3 : 4.5)) {
      bad.push([el.tagName, el.textContent.trim().slice(0, 30), ratio.toFixed(2)]);
    }
  }
  return bad;
}"""


def test_text_contrast_meets_wcag_aa(daemon: InProcessDaemon, page: Page) -> None:
    """Visible text has at least 4.5:1 contrast (3:1 when large or a decorative glyph)."""
    base = daemon.base_url
    for path in (
        "/",
        "/search?q=casque",
        "/products/TV-001",
        "/compare?sku=TV-001&sku=TV-002",
        "/products/TV-001/review",
    ):
        page.goto(base + path)
        bad = page.evaluate(CONTRAST_JS)
        assert bad == [], f"{path}: {bad}"


def test_phone_nearby_its_me_and_unknown_scan(daemon: InProcessDaemon, page: Page) -> None:
    """A phone near the kiosk brings "It's me" live; tapping it welcomes its owner; an
    unknown product code shows a notice instead of leaving the page."""
    phone = "5f0c2a9e1b7d4c3a8e6f1a2b3c4d5e6f"
    daemon.services.catalog.apply_changes(
        [CatalogChange("shopper", phone, {"first_name": "Hugo", "segments": ["gold"]})]
    )
    page.goto(daemon.base_url + "/search?q=aspirateur")
    wait_live(page)
    its_me = page.locator("[data-its-me]")
    expect(its_me).to_be_hidden()
    beacon = {"beacon_class": "phone", "id": phone, "kind": "ibeacon", "zone": "near"}
    publish(daemon, "kiosk.beacon.enter", {**beacon, "rssi": -58, "distance_m": 1.2})
    expect(its_me).to_be_visible()
    shot(page, "kiosk-11-its-me")
    page.get_by_role("button", name="C'est moi").click()
    expect(page.locator("[data-welcome-title]")).to_have_text("Bienvenue, Hugo !")
    expect(its_me).to_be_hidden()
    assert daemon.services.session.snapshot().source == "phone"

    wait_live(page)
    publish(daemon, "kiosk.product.scan", {"ean": "4006381333931", "source": "hid"})
    expect(page.locator("[data-toast]")).to_contain_text("pas dans notre catalogue")
    assert "/search" in page.url


def test_on_screen_keyboard_search_layouts_and_keys(daemon: InProcessDaemon, page: Page) -> None:
    """No physical keyboard at the kiosk: the search box gets an on-screen keyboard
    (AZERTY in French, QWERTY in English, accents, backspace, Enter searches); it never
    takes the caret from the field, is operable from a keyboard, and Escape closes it."""
    page.goto(daemon.base_url + "/")
    osk = page.locator("[data-osk]")
    expect(osk).to_have_count(0)  # built on first use only
    page.locator("#hero-q").click()
    expect(osk).to_be_visible()
    expect(osk.locator(".osk-row").nth(1)).to_have_text(re.compile(r"^\s*a\s*z\s*e\s*r\s*t\s*y"))
    type_on_screen(page, "Télé x")
    osk.locator("[data-key=back]").click()
    osk.locator("[data-key=back]").click()
    expect(page.locator("#hero-q")).to_have_value("Télé")
    assert page.evaluate("document.activeElement.id") == "hero-q"
    small = osk.evaluate(
        "el => [...el.querySelectorAll('button')].filter(b => b.offsetHeight < 44).length"
    )
    assert small == 0
    shot(page, "kiosk-12-on-screen-keyboard")
    osk.locator("[data-key=enter]").click()
    expect(page).to_have_url(re.compile(r"/search\?q=T%C3%A9l%C3%A9"))
    expect(page.locator(".card-name").first).to_contain_text("Téléviseur")

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.locator("#top-q").click()
    expect(osk).to_have_attribute("data-layout", "qwerty")
    expect(osk.locator(".osk-row").nth(1)).to_have_text(re.compile(r"^\s*q\s*w\s*e\s*r\s*t\s*y"))
    # Keyboard operable: a key reached with Tab types with Enter, and Escape closes the panel.
    osk.locator('[data-key="char:a"]').focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    expect(osk).to_be_hidden()
    expect(page.locator("#top-q")).to_be_focused()
    assert page.locator("#top-q").input_value().endswith("a")


def test_on_screen_keyboard_for_an_email_address(
    write_config: ConfigWriter, tmp_path: Path, page: Page
) -> None:
    """The take-away e-mail field gets "@" and domain keys; the address is typed where the
    caret is even though an e-mail input has no selection API."""
    config = write_config(
        kiosk={"catalog_file": str(DEMO_CATALOG)},
        mail={"enabled": True, "outbox_dir": str(tmp_path / "mail")},
    )
    with InProcessDaemon(config) as running:
        page.goto(running.base_url + "/products/TV-001")
        page.locator("[data-takeaway] [data-action=email]").click()
        field = page.locator("[data-takeaway] input[type=email]")
        field.click()
        osk = page.locator("[data-osk]")
        expect(osk.locator('[data-key="char:.fr"]')).to_be_visible()
        type_on_screen(page, "zoe")
        osk.locator('[data-key="char:@"]').click()
        type_on_screen(page, "exemple")
        osk.locator('[data-key="char:.fr"]').click()
        expect(field).to_have_value("zoe@exemple.fr")


def test_welcome_switches_to_the_shoppers_language(daemon: InProcessDaemon, page: Page) -> None:
    """A French kiosk welcomes a shopper whose profile says English in English, live; "not
    me" ends the session and the screen is French again."""
    daemon.services.catalog.apply_changes(
        [CatalogChange("shopper", "h-ann", {"first_name": "Ann", "locale": "en"})]
    )
    page.goto(daemon.base_url + "/products/TV-001")
    wait_live(page)
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    publish(daemon, "kiosk.loyalty.scan", {"id_hash": "h-ann", "source": "hid"})
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("[data-welcome-title]")).to_have_text("Welcome, Ann!")
    expect(page.get_by_role("heading", name="Specifications")).to_be_visible()
    page.get_by_role("button", name="Not me / End session").click()
    expect(page).to_have_url(daemon.base_url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("[data-welcome]")).to_be_hidden()
