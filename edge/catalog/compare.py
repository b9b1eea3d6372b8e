"""Side-by-side comparison of 2-4 products (pure, no I/O).

One row per attribute: values converted to the row's unit so they line up, rows whose values
differ flagged, and the best value marked where the attribute says which direction is better
(price lowest, battery largest...). The kiosk page, the JSON API and receipts share it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from edge.catalog.models import Better, Product

_LOGGER = logging.getLogger(__name__)

# Units a catalog may mix for one attribute, as (dimension, factor to the dimension's base).
# Only exact, well-known conversions: a row with units outside this table is not converted.
UNIT_FACTORS: Final[dict[str, tuple[str, float]]] = {
    "mm": ("length", 0.001),
    "cm": ("length", 0.01),
    "m": ("length", 1.0),
    "in": ("length", 0.0254),
    "\u2033": ("length", 0.0254),
    "g": ("mass", 0.001),
    "kg": ("mass", 1.0),
    "mAh": ("charge", 1.0),
    "Ah": ("charge", 1000.0),
    "Wh": ("energy", 1.0),
    "kWh": ("energy", 1000.0),
    "W": ("power", 1.0),
    "kW": ("power", 1000.0),
    "MB": ("data", 1.0),
    "GB": ("data", 1000.0),
    "TB": ("data", 1_000_000.0),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "s": ("time", 1.0),
    "Hz": ("frequency", 1.0),
    "kHz": ("frequency", 1000.0),
    "MHz": ("frequency", 1_000_000.0),
    "GHz": ("frequency", 1_000_000_000.0),
    "ml": ("volume", 0.001),
    "cl": ("volume", 0.01),
    "l": ("volume", 1.0),
    "L": ("volume", 1.0),
}
# Floating-point noise from unit conversion must not make equal values "differ".
_EPSILON: Final = 1e-9

Value = float | int | str | bool


@dataclass(frozen=True)
class CompareCell:
    """One product's value in a row (None: the product does not have the attribute)."""

    value: Value | None
    best: bool = False

    @property
    def missing(self) -> bool:
        """True when the product has no value for this attribute."""
        return self.value is None


@dataclass(frozen=True)
class CompareRow:
    """One attribute across the compared products."""

    key: str
    label: str
    unit: str
    better: Better | None
    cells: tuple[CompareCell, ...]
    differs: bool

    @property
    def numeric(self) -> bool:
        """True when every present value is a number (aligned right on screen)."""
        present = [c.value for c in self.cells if c.value is not None]
        return bool(present) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in present
        )


def convert(value: float, unit: str, target: str) -> float | None:
    """``value`` in ``unit`` expressed in ``target``, or None when they do not convert."""
    if unit == target:
        return value
    a = UNIT_FACTORS.get(unit)
    b = UNIT_FACTORS.get(target)
    if a is None or b is None or a[0] != b[0]:
        return None
    return value * a[1] / b[1]


def _same(a: Value | None, b: Value | None) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        if isinstance(a, bool) or isinstance(b, bool):
            return a == b
        return abs(float(a) - float(b)) <= _EPSILON * max(1.0, abs(float(a)), abs(float(b)))
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return a == b


def _rank_value(value: Value | None) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


def _mark_best(values: list[Value | None], better: Better | None) -> list[bool]:
    ranks = [_rank_value(v) for v in values]
    present = [r for r in ranks if r is not None]
    if better is None or len(present) < 2 or max(present) - min(present) <= _EPSILON:
        return [False] * len(values)
    target = max(present) if better == "higher" else min(present)
    return [r is not None and abs(r - target) <= _EPSILON for r in ranks]


def _row(
    key: str, label: str, unit: str, better: Better | None, values: list[Value | None]
) -> CompareRow:
    present = [v for v in values if v is not None]
    differs = len(present) != len(values) or any(not _same(present[0], v) for v in present[1:])
    best = _mark_best(values, better)
    cells = tuple(CompareCell(v, b) for v, b in zip(values, best, strict=True))
    return CompareRow(key, label, unit, better, cells, differs)


def compare_rows(products: Sequence[Product], lang: str = "") -> list[CompareRow]:
    """The comparison table: a price row, then one row per spec in first-seen order."""
    rows: list[CompareRow] = []
    currency = products[0].currency if products else ""
    if products and all(p.currency == currency for p in products):
        rows.append(_row("price", "price", currency, "lower", [p.price for p in products]))
    keys: list[str] = []
    for product in products:
        keys.extend(s.key for s in product.specs if s.key not in keys)
    for key in keys:
        specs = [p.spec(key) for p in products]
        present = [s for s in specs if s is not None]
        first = present[0]
        # The row's unit is the one most products use; others convert to it when they can.
        unit = Counter(s.unit for s in present).most_common(1)[0][0]
        better = next((s.better for s in present if s.better), None)
        values: list[Value | None] = []
        unconvertible = False
        for maybe in specs:
            if maybe is None:
                values.append(None)
                continue
            value = maybe.value
            if (
                maybe.unit != unit
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                converted = convert(float(value), maybe.unit, unit)
                if converted is None:
                    unconvertible = True
                else:
                    value = round(converted, 6)
            values.append(value)
        if unconvertible:
            # Mixed units with no known conversion: show each value with its own unit as text.
            values = [None if s is None else f"{s.value} {s.unit}".strip() for s in specs]
            unit, better = "", None
        rows.append(_row(key, first.label_for(lang), unit, better, values))
    return rows


def identical_rows(rows: Sequence[CompareRow]) -> list[str]:
    """Keys of rows whose values are the same for every product (the shopper may hide them)."""
    return [r.key for r in rows if not r.differs]
