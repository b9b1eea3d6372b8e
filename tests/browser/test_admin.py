"""Store IT's /admin page in Debian's Chromium, served by the real daemon."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from playwright.sync_api import Page, expect
from werkzeug.security import generate_password_hash

from tests.browser.conftest import shot, type_on_screen
from tests.conftest import ConfigWriter
from tests.support.daemon import InProcessDaemon

PASSWORD = "store-it-2026"


def test_admin_sign_in_status_and_actions(
    write_config: ConfigWriter, page: Page, tmp_path: Path
) -> None:
    """Wrong password refused; right one shows checks, components, printer; locate, test print,
    restart and the support bundle work from the page."""
    receipts = tmp_path / "receipts.bin"
    config = write_config(
        kiosk={"admin_password": generate_password_hash(PASSWORD, "pbkdf2:sha256:20000")},
        printer={"enabled": True, "url": f"file://{receipts}"},
    )
    with InProcessDaemon(config) as daemon:
        identify = daemon.services.bus.subscribe_thread("local.kiosk.identify")
        page.goto(daemon.base_url + "/admin/")
        expect(page.locator("#admin-password")).to_be_visible()
        page.fill("#admin-password", "not-it")
        page.click("button[type=submit]")
        expect(page.get_by_test_id("admin-error")).to_contain_text("Wrong password")

        # The kiosk has no physical keyboard: store IT types on the on-screen one.
        page.fill("#admin-password", "")
        page.click("#admin-password")
        expect(page.locator("[data-osk]")).to_be_visible()
        type_on_screen(page, PASSWORD)
        page.click("button[type=submit]")
        checks = page.get_by_test_id("admin-checks")
        expect(checks).to_be_visible()
        expect(checks.locator('tr[data-check="printer"]')).to_contain_text("ok")
        expect(checks.locator('tr[data-check="disk"]')).to_be_visible()
        expect(page.locator('tr[data-component="kiosk"]')).to_contain_text("ok")
        expect(page.get_by_test_id("admin-printer")).to_contain_text("job(s) waiting")
        shot(page, "admin-status")

        page.get_by_test_id("admin-locate").click()
        expect(page.get_by_test_id("admin-message")).to_contain_text("flashes")
        event = identify.get(timeout=5)
        assert event is not None
        assert event.type == "local.kiosk.identify"

        page.get_by_test_id("admin-test-print").click()
        expect(page.get_by_test_id("admin-message")).to_contain_text("Test page queued")

        page.locator('tr[data-component="doctor"] button').click()
        expect(page.get_by_test_id("admin-message")).to_contain_text("Restarting doctor")

        with page.expect_download() as info:
            page.get_by_test_id("admin-bundle").click()
        data = Path(info.value.path()).read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            config_json = json.loads(zf.read("config.json"))
            assert config_json["kiosk"]["admin_password"] == "<redacted>"
            assert "logs.jsonl" in zf.namelist()

        # The shopper screen in the same browser has no way in: no link, and a fresh
        # browser context (a shopper) only ever gets the sign-in form.
        page.goto(daemon.base_url + "/")
        assert page.locator("a[href*='/admin']").count() == 0
        shopper = page.context.browser.new_context()  # type: ignore[union-attr]
        try:
            other = shopper.new_page()
            other.goto(daemon.base_url + "/")
            response = other.goto(daemon.base_url + "/admin/")
            assert response is not None
            assert response.status == 401
        finally:
            shopper.close()
