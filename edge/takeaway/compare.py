"""The comparison table shared by the receipt, the e-mail and the screen (pure, no I/O).

A comparison is a list of products side by side: one row per spec key (in order of first
appearance), each cell formatted for the shopper's language, and the best value of each row
marked where the spec says which way is better. Keeping this in one place means the printed
receipt, the e-mail and the kiosk screen never disagree about which product "wins" a row.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from babel.numbers import format_currency, format_decimal

from edge.catalog.compare import compare_rows
from edge.catalog.models import Product

_LOGGER = logging.getLogger(__name__)

# Languages the take-away texts exist in; anything else falls back to the first.
LANGUAGES: Final = ("fr", "en")
# Babel groups thousands with narrow / no-break spaces that receipt code pages lack; a plain
# space reads the same on paper and in a text e-mail.
_SPACES: Final = {"\u202f": " ", "\u00a0": " "}
# The price row's key, as the catalog's compare_rows names it.
PRICE_KEY: Final = "price"

_TEXTS: Final[dict[str, dict[str, str]]] = {
    "fr": {
        "price": "Prix",
        "yes": "Oui",
        "no": "Non",
        "missing": "-",
        "title": "Votre comparatif",
        "product": "Votre produit",
        "best": "* meilleure valeur",
        "scan": "Ce comparatif en ligne :",
        "thanks": "Merci de votre visite !",
        "kiosk": "Borne",
        "subject_compare": "Votre comparatif : {names}",
        "subject_product": "Votre produit : {names}",
        "intro": "Voici le comparatif que vous avez consulté en magasin.",
        "intro_product": "Voici le produit que vous avez consulté en magasin.",
        "footer": "Votre adresse n'est conservée que le temps d'envoyer ce message.",
        "test_title": "Page de test",
        "test_chars": "Accents : é è à ç ù â ê ô « » €",
    },
    "en": {
        "price": "Price",
        "yes": "Yes",
        "no": "No",
        "missing": "-",
        "title": "Your comparison",
        "product": "Your product",
        "best": "* best value",
        "scan": "This comparison online:",
        "thanks": "Thank you for your visit!",
        "kiosk": "Kiosk",
        "subject_compare": "Your comparison: {names}",
        "subject_product": "Your product: {names}",
        "intro": "Here is the comparison you looked at in the store.",
        "intro_product": "Here is the product you looked at in the store.",
        "footer": "Your address is kept only until this message is sent.",
        "test_title": "Test page",
        "test_chars": "Accents: é è à ç ù â ê ô « » €",
    },
}


def language_of(locale: str | None) -> str:
    """The take-away language for a locale such as "fr_FR", "en" or None (falls back to fr)."""
    lang = (locale or "").replace("-", "_").split("_")[0].lower()
    return lang if lang in LANGUAGES else LANGUAGES[0]


def text(lang: str, key: str) -> str:
    """A fixed take-away text in ``lang``."""
    return _TEXTS[language_of(lang)][key]


def clean_text(value: str) -> str:
    """Catalog text made safe for paper and mail: NFC, no control characters, one line."""
    normal = unicodedata.normalize("NFC", value)
    out = []
    for ch in normal:
        if ch in _SPACES:
            out.append(_SPACES[ch])
        elif unicodedata.category(ch).startswith("C") or ch in "\u2028\u2029":
            # Control characters (ESC, DLE, newlines) from the catalog would be printer
            # commands or break the layout: a space keeps the words apart.
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).split())


def format_price(amount: float, currency: str, lang: str) -> str:
    """A price as the shopper reads it, e.g. "1 299,00 €" (fr) or "€1,299.00" (en)."""
    locale = "fr_FR" if language_of(lang) == "fr" else "en_GB"
    try:
        formatted = format_currency(amount, currency or "EUR", locale=locale)
    except (ArithmeticError, ValueError):  # absurd amounts babel cannot quantize
        formatted = f"{amount:.6g} {clean_text(currency)}"
    return "".join(_SPACES.get(ch, ch) for ch in formatted)


def format_value(value: float | int | str | bool, unit: str, lang: str) -> str:
    """A value with its unit as the shopper reads it, e.g. "20 h", "Oui", "4,5 kg", '55"'."""
    if isinstance(value, bool):
        shown = text(lang, "yes") if value else text(lang, "no")
    elif isinstance(value, int | float):
        locale = "fr_FR" if language_of(lang) == "fr" else "en_GB"
        try:
            raw = format_decimal(value, locale=locale, group_separator=False)
        except (ArithmeticError, ValueError):  # beyond babel's precision (1e25 and up)
            raw = f"{value:.6g}"
        shown = "".join(_SPACES.get(ch, ch) for ch in raw)
    else:
        shown = clean_text(value)
    unit = clean_text(unit)
    if not unit:
        return shown
    # Inch and degree marks hug the number; words get a space.
    return f"{shown}{unit}" if unit in ('"', "″", "°", "%") else f"{shown} {unit}"


@dataclass(frozen=True)
class Row:
    """One line of the comparison: a label, one cell per product, the best products' indexes."""

    key: str
    label: str
    cells: tuple[str, ...]
    best: frozenset[int]


@dataclass(frozen=True)
class Comparison:
    """Products side by side, ready for any layout."""

    names: tuple[str, ...]
    prices: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def any_best(self) -> bool:
        """True when at least one row marks a best value (the legend is then shown)."""
        return any(row.best for row in self.rows)


def build_comparison(products: Sequence[Product], lang: str) -> Comparison:
    """The comparison of ``products`` in ``lang``: a price row, then every spec row.

    Which value is best (and unit conversion between products) comes from the catalog's
    :func:`~edge.catalog.compare.compare_rows`, the same rows the kiosk screen shows.
    """
    lang = language_of(lang)
    prices = tuple(format_price(p.price, p.currency, lang) for p in products)
    rows: list[Row] = []
    source = compare_rows(products, lang)
    if not source or source[0].key != "price":
        # Mixed currencies: prices are shown but not ranked.
        rows.append(Row(PRICE_KEY, text(lang, "price"), prices, frozenset()))
    for row in source:
        best = frozenset(i for i, cell in enumerate(row.cells) if cell.best)
        if row.key == "price" and not rows:
            rows.append(Row(PRICE_KEY, text(lang, "price"), prices, best))
            continue
        cells = tuple(
            text(lang, "missing")
            if cell.value is None
            else format_value(cell.value, row.unit, lang)
            for cell in row.cells
        )
        rows.append(Row(row.key, clean_text(row.label), cells, best))
    return Comparison(
        names=tuple(clean_text(p.name) for p in products), prices=prices, rows=tuple(rows)
    )
