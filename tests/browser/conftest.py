"""Playwright driving Debian's Chromium (never a downloaded browser) for the kiosk pages."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.conftest import ARTIFACTS_DIR

CHROMIUM: Final = "/usr/bin/chromium"
# Flags from shared/TESTING.md: the machine has no network, so every background connection
# Chromium would try must be off; --no-sandbox because tests run as root.
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The kiosk runs on a 1080p touch screen.
VIEWPORT: Final = {"width": 1920, "height": 1080}


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is alive, which would break asyncio.run() in later (non-browser) tests.
@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    """One Playwright driver per browser test module."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (scripts/test installs it)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Headless Debian Chromium."""
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh kiosk-sized page (its own context: no cookies shared between tests)."""
    context = browser.new_context(viewport=VIEWPORT, has_touch=True, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/ (kept as a test artefact)."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def type_on_screen(page: Page, text: str) -> None:
    """Tap ``text`` on the on-screen keyboard: shift for capitals, the accents layer for
    accented letters (as a shopper would, with no physical keyboard)."""
    osk = page.locator("[data-osk]")
    for char in text:
        plain = char.lower()
        accented = osk.get_attribute("data-layout") == "accents"
        wants_accent = plain in "éèêëàâäæçùûüôöœîïñ«»!?;:"
        if wants_accent != accented:
            osk.locator("[data-key=accents]").click()
        if char != plain:
            osk.locator("[data-key=shift]").click()
        osk.locator(f'[data-key="char:{char}"]').click()
