"""French and English for the kiosk: language choice, compiled catalogs, locale-aware values.

Templates use English message ids with ``_()``; ``translations/fr/LC_MESSAGES/messages.po``
holds the French. The ``.po`` files are compiled to ``.mo`` with Babel when the app is
created (into the data directory, so a read-only install still works): no build step.
Prices and numbers are formatted for the shopper's language with Babel.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any, Final

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from flask import Flask, current_app, g, session
from flask_babel import Babel, get_locale, get_translations, lazy_gettext
from markupsafe import Markup, escape

_LOGGER = logging.getLogger(__name__)

TRANSLATIONS_SRC: Final = Path(__file__).parent / "translations"
# Languages offered on screen, in the order of the switch.
LANGUAGES: Final = ("fr", "en")
# Formatting locale per language when the configured locale is for another language.
DEFAULT_REGION: Final = {"fr": "fr_FR", "en": "en_GB"}

# Category slugs of the catalog and their names on screen; unknown slugs are shown as they are.
CATEGORY_LABELS: Final[dict[str, Any]] = {
    "tv": lazy_gettext("Televisions"),
    "headphones": lazy_gettext("Headphones"),
    "laptops": lazy_gettext("Laptops"),
    "smartphones": lazy_gettext("Smartphones"),
    "vacuums": lazy_gettext("Vacuum cleaners"),
}
# Units displayed differently from how the catalog spells them.
UNIT_DISPLAY: Final = {"in": "\u2033"}


def compile_translations(target: Path, source: Path = TRANSLATIONS_SRC) -> Path:
    """Compile every ``.po`` under ``source`` into ``target`` (only when newer); returns target."""
    for po_path in source.glob("*/LC_MESSAGES/*.po"):
        rel = po_path.relative_to(source).with_suffix(".mo")
        mo_path = target / rel
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        with po_path.open("rb") as fh:
            catalog = read_po(fh)
        tmp = mo_path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            write_mo(out, catalog)
        tmp.replace(mo_path)
    return target


def default_language(config_locale: str) -> str:
    """The screen language for the configured locale (fr_FR -> fr); French if unsupported."""
    lang = config_locale.split("_", maxsplit=1)[0]
    return lang if lang in LANGUAGES else LANGUAGES[0]


def formatting_locale(lang: str, config_locale: str) -> str:
    """The Babel locale for numbers in ``lang``: the configured one when it matches."""
    if config_locale.split("_", maxsplit=1)[0] == lang:
        return config_locale
    return DEFAULT_REGION.get(lang, "en_GB")


def profile_language(locale: str) -> str | None:
    """The screen language of a shopper profile's locale ("en", "en_GB", "fr-FR"), if offered."""
    lang = locale.replace("-", "_").split("_", maxsplit=1)[0].lower()
    return lang if lang in LANGUAGES else None


def choose_language(
    chosen: object, chosen_in: object, session_id: str, profile_locale: str, default: str
) -> str:
    """The screen language: the shopper's on-screen choice, else their profile's, else default.

    A profile's locale wins over a choice made before the shopper identified (the welcome
    switches the screen to their language); a choice made after it wins over the profile.
    """
    profile = profile_language(profile_locale)
    if isinstance(chosen, str) and chosen in LANGUAGES and (not profile or chosen_in == session_id):
        return chosen
    return profile or default


def current_language() -> str:
    """The language of this request (see :func:`choose_language`); looked up once a request."""
    found = g.get("_kiosk_lang")
    if found is None:
        manager = current_app.extensions["kiosk_services"].session
        state = manager.snapshot() if manager is not None else None
        found = choose_language(
            session.get("lang"),
            session.get("lang_session"),
            state.session_id if state else "",
            state.locale if state and state.identified else "",
            current_app.config["KIOSK_DEFAULT_LANG"],
        )
        g._kiosk_lang = found
    lang: str = found
    return lang


def _select_locale() -> str:
    return formatting_locale(current_language(), current_app.config["KIOSK_LOCALE"])


def _translations() -> Any:
    """This request's translations, looked up once per request."""
    found = g.get("_kiosk_translations")
    if found is None:
        found = get_translations()
        g._kiosk_translations = found
    return found


def price(value: float, currency: str = "EUR") -> str:
    """A price in the current locale, e.g. "1 299,99 €" or "€1,299.99"."""
    return format_currency(value, currency, locale=str(get_locale()))


def number(value: float | int) -> str:
    """A number in the current locale (decimal comma in French)."""
    return format_decimal(value, locale=str(get_locale()))


def unit_label(unit: str) -> str:
    """How a unit is written on screen."""
    return UNIT_DISPLAY.get(unit, unit)


def spec_value(value: Any, unit: str = "") -> str:
    """A spec value for display: localised number with its unit, Yes/No, or text."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return str(lazy_gettext("Yes") if value else lazy_gettext("No"))
    if isinstance(value, int | float):
        shown = number(value)
        if not unit:
            return shown
        label = unit_label(unit)
        return f"{shown}{label}" if label == "\u2033" else f"{shown}\u00a0{label}"
    return str(value)


def day(value: date) -> str:
    """A date in the current locale, e.g. "21 oct. 2026" or "21 Oct 2026"."""
    return format_date(value, "medium", locale=str(get_locale()))


def stars(value: float, count: int | None = None) -> Markup:
    """Five stars filled to ``value`` (halves included), labelled for screen readers."""
    cells = []
    for i in range(1, 6):
        state = " full" if value >= i - 0.25 else " half" if value >= i - 0.75 else ""
        cells.append(f'<span class="star{state}" aria-hidden="true">★</span>')
    label = escape(lazy_gettext("%(avg)s out of 5", avg=number(round(value, 1))))
    out = f'<span class="stars" role="img" aria-label="{label}">{"".join(cells)}</span>'
    if count is not None:
        out += f' <span class="rating-count">({int(count)})</span>'
    return Markup(out)  # noqa: S704 - built from fixed markup, a number and an escaped label


def category_label(slug: str) -> str:
    """The on-screen name of a category slug."""
    label = CATEGORY_LABELS.get(slug)
    return str(label) if label is not None else slug


def init_i18n(app: Flask, data_dir: Path, config_locale: str) -> None:
    """Compile the catalogs, install Flask-Babel and the template filters."""
    try:
        compiled = compile_translations(data_dir / "translations")
    except OSError:
        _LOGGER.exception("cannot write compiled translations; the kiosk shows English")
        compiled = data_dir / "translations"
    app.config["KIOSK_LOCALE"] = config_locale
    app.config["KIOSK_DEFAULT_LANG"] = default_language(config_locale)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled)
    Babel(app, locale_selector=_select_locale)
    # Flask-Babel looks its context up again on every _() call (dozens per page); templates
    # use the request's translations fetched once instead.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _translations().ugettext(s),
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
    )
    app.jinja_env.filters.update(
        price=price,
        number=number,
        day=day,
        spec_value=spec_value,
        category=category_label,
        unit=unit_label,
    )
    app.jinja_env.globals.update(
        current_language=current_language, LANGUAGES=LANGUAGES, stars=stars
    )
