"""The take-away buttons in Debian's Chromium: print, e-mail with consent, QR on screen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import shot
from tests.conftest import ConfigWriter, free_port
from tests.support.daemon import InProcessDaemon
from tests.support.escpos_text import decode
from tests.support.printer_listener import PrinterListener

pytestmark = pytest.mark.browser

CATALOG = Path(__file__).resolve().parent.parent / "data" / "receipts" / "comparison.json"
ADDRESS = "camille.durand@exemple-boutique.fr"


@pytest.fixture
def kiosk(
    write_config: ConfigWriter, tmp_path: Path
) -> Iterator[tuple[InProcessDaemon, PrinterListener]]:
    port = free_port()
    listener = PrinterListener(port).start()
    path = write_config(
        kiosk={"catalog_file": str(CATALOG)},
        printer={"enabled": True, "url": f"tcp://127.0.0.1:{port}", "retry_interval_s": 0.2},
        mail={"enabled": True, "outbox_dir": str(tmp_path / "mail")},
    )
    try:
        with InProcessDaemon(path) as daemon:
            yield daemon, listener
    finally:
        listener.stop()


def test_print_email_and_qr_from_the_compare_page(
    page: Page, kiosk: tuple[InProcessDaemon, PrinterListener], tmp_path: Path
) -> None:
    """A shopper prints, e-mails (after consent) and shows the QR code of a comparison."""
    daemon, listener = kiosk
    page.goto(f"{daemon.base_url}/compare?sku=TV-001&sku=TV-002")
    actions = page.locator("[data-takeaway]")
    expect(actions).to_be_visible()

    actions.locator("[data-action=print]").click()
    status = actions.locator(".takeaway-status")
    expect(status).to_have_text("Votre ticket est imprimé.")
    assert any("Éclat" in line for line in decode(listener.received).lines)

    actions.locator("[data-action=email]").click()
    field = actions.locator("input[type=email]")
    send = actions.locator("button[type=submit]")
    field.fill("camille.durand")
    actions.locator("[data-append='@gmail.com']").click()
    expect(field).to_have_value("camille.durand@gmail.com")
    field.fill(ADDRESS)
    expect(send).to_be_disabled()  # no consent yet
    actions.locator("input[name=consent]").check()
    expect(send).to_be_enabled()
    shot(page, "takeaway-email-form")
    send.click()
    expect(status).to_have_text("E-mail envoyé.")
    expect(field).to_have_value("")  # the address leaves the page once the kiosk has it
    assert len(list((tmp_path / "mail").glob("m-*.eml"))) == 1

    actions.locator("[data-action=qr]").click()
    image = actions.locator(".takeaway-qr img")
    expect(image).to_be_visible()
    expect(image).to_have_attribute("alt", "https://shop.example/compare?skus=TV-001,TV-002")
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    shot(page, "takeaway-compare")


def test_bad_address_is_explained(
    page: Page, kiosk: tuple[InProcessDaemon, PrinterListener]
) -> None:
    """An address the kiosk refuses shows the reason next to the field; nothing is queued."""
    daemon, _ = kiosk
    page.goto(f"{daemon.base_url}/products/TV-003")
    actions = page.locator("[data-takeaway]")
    actions.locator("[data-action=email]").click()
    actions.locator("input[type=email]").fill("camille@exemple.f-r")
    actions.locator("input[name=consent]").check()
    actions.locator("button[type=submit]").click()
    expect(actions.locator(".takeaway-error")).to_contain_text("domain")
    assert daemon.services.mail.depth() == 0
