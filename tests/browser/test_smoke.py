"""The kiosk home page renders in Debian's Chromium served by the real daemon."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import shot
from tests.conftest import ConfigWriter
from tests.support.daemon import InProcessDaemon


def test_home_renders_in_chromium(write_config: ConfigWriter, page: Page) -> None:
    """The daemon serves the home page and healthz to a real browser."""
    with InProcessDaemon(write_config()) as daemon:
        page.goto(daemon.base_url + "/")
        assert page.locator("h1").count() >= 1
        shot(page, "smoke-home")
        response = page.request.get(daemon.base_url + "/api/healthz")
        assert response.status in (200, 503)
        assert "components" in response.json()
