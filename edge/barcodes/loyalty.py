"""Loyalty-number and product-code classification, check digits and duplicate suppression.

Pure logic over strings and timestamps: the camera and the USB scanner hand every decoded
text here. A text that matches a configured loyalty pattern (prefix, length, check digit) is
a loyalty card; anything else that is a well-formed EAN/UPC is a product; a wrong check digit
is rejected so a misread never opens the wrong page or greets the wrong shopper.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

_LOGGER = logging.getLogger(__name__)

ScanClass = Literal["loyalty", "product", "other"]

# Symbologies that carry retail product codes (GTIN-8/12/13). A QR code or Code 128 holding
# 13 digits is not a product label, so those are never taken for products.
PRODUCT_SYMBOLOGIES: Final = frozenset({"ean13", "ean8", "upca", "upce"})
# A keyboard-wedge scanner does not say which symbology it read.
UNKNOWN_SYMBOLOGY: Final = "unknown"
# GTIN lengths accepted as product codes: EAN-8, UPC-A, EAN-13.
PRODUCT_LENGTHS: Final = frozenset({8, 12, 13})
# Longest text considered at all: a keyboard wedge stuck in a loop must not grow memory.
MAX_TEXT_LENGTH: Final = 256


class PatternLike(Protocol):
    """A loyalty number format (edge.config.LoyaltyPattern has this shape)."""

    @property
    def prefix(self) -> str: ...
    @property
    def length(self) -> int: ...
    @property
    def check(self) -> str: ...


@dataclass(frozen=True)
class Pattern:
    """A loyalty number format as plain values (for tests and callers without a config)."""

    prefix: str = ""
    length: int = 13
    check: str = "gs1"


@dataclass(frozen=True)
class Classified:
    """What a decoded text is: its class, the normalised code and whether it validated."""

    kind: ScanClass
    code: str  # normalised: stripped; UPC-A widened to 13 digits for products
    valid: bool
    reason: str = ""  # why it is invalid (never contains the code itself)


def gs1_check_digit(body: str) -> int:
    """The GS1 mod-10 check digit for the digits in ``body`` (the code without its check)."""
    if not body.isdigit():
        raise ValueError("GS1 check digits are defined for digits only")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def gs1_valid(code: str) -> bool:
    """True when ``code`` is digits whose last digit is the GS1 mod-10 check digit."""
    if len(code) < 2 or not code.isascii() or not code.isdigit():
        return False
    return gs1_check_digit(code[:-1]) == int(code[-1])


def luhn_valid(code: str) -> bool:
    """True when ``code`` is digits passing the Luhn (mod 10, doubling) check."""
    if len(code) < 2 or not code.isascii() or not code.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(code)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def check_passes(code: str, check: str) -> bool:
    """Apply a named check-digit algorithm ("gs1", "luhn" or "none")."""
    if check == "gs1":
        return gs1_valid(code)
    if check == "luhn":
        return luhn_valid(code)
    if check == "none":
        return True
    raise ValueError(f"unknown check algorithm {check!r}; use gs1, luhn or none")


def upce_to_upca(code: str) -> str | None:
    """The 12-digit UPC-A a zero-suppressed 8-digit UPC-E stands for (None if not UPC-E).

    UPC-E's check digit is the UPC-A's, so validation and catalog look-ups need the
    expanded form; number systems other than 0 and 1 do not exist in UPC-E.
    """
    if len(code) != 8 or not code.isascii() or not code.isdigit() or code[0] not in "01":
        return None
    system, d, check = code[0], code[1:7], code[7]
    last = d[5]
    if last in "012":
        body = d[0:2] + last + "0000" + d[2:5]
    elif last == "3":
        body = d[0:3] + "00000" + d[3:5]
    elif last == "4":
        body = d[0:4] + "00000" + d[4]
    else:
        body = d[0:5] + "0000" + last
    return system + body + check


def normalise(text: str) -> str:
    """Strip whitespace and control characters a scanner may add around the code."""
    return "".join(ch for ch in text.strip() if ch.isprintable())


def matching_pattern(code: str, patterns: Iterable[PatternLike]) -> PatternLike | None:
    """The first loyalty pattern whose prefix and length fit ``code``, if any."""
    for pattern in patterns:
        if len(code) == pattern.length and code.startswith(pattern.prefix):
            return pattern
    return None


def classify(text: str, symbology: str, patterns: Sequence[PatternLike]) -> Classified:
    """Classify a decoded text as a loyalty number, a product code or something else."""
    code = normalise(text)
    if not code or len(code) > MAX_TEXT_LENGTH:
        return Classified("other", code[:MAX_TEXT_LENGTH], False, "empty or too long")
    pattern = matching_pattern(code, patterns)
    if pattern is not None:
        if check_passes(code, pattern.check):
            return Classified("loyalty", code, True)
        return Classified("loyalty", code, False, f"{pattern.check} check digit is wrong")
    if symbology == "upce":
        upca = upce_to_upca(code)
        if upca is None:
            return Classified("other", code, False, "not a UPC-E code")
        code, symbology = upca, "upca"
    if (
        (symbology in PRODUCT_SYMBOLOGIES or symbology == UNKNOWN_SYMBOLOGY)
        and code.isascii()
        and code.isdigit()
        and len(code) in PRODUCT_LENGTHS
    ):
        gtin = "0" + code if len(code) == 12 else code  # UPC-A is EAN-13 with a leading 0
        if gs1_valid(gtin):
            return Classified("product", gtin, True)
        return Classified("product", gtin, False, "EAN/UPC check digit is wrong")
    return Classified("other", code, False, "neither a loyalty number nor a product code")


class DuplicateFilter:
    """Turns repeated reads of one code into one scan.

    A code counts again only after it has not been read for ``window_s`` seconds: a card held
    in front of the camera for a minute (read at every frame) is one scan, and holding it
    again after a pause is a new one. Time comes from the caller (monotonic seconds).
    """

    def __init__(self, window_s: float) -> None:
        if window_s < 0:
            raise ValueError("the duplicate window must be zero or more seconds")
        self.window_s = window_s
        self._last_seen: dict[str, float] = {}

    def accept(self, key: str, now: float) -> bool:
        """Record a read of ``key`` at ``now``; True when it is a new scan, not a repeat."""
        last = self._last_seen.get(key)
        self._last_seen[key] = now
        if len(self._last_seen) > 64:
            self._prune(now)
        return last is None or now - last > self.window_s or now < last

    def _prune(self, now: float) -> None:
        stale = [k for k, t in self._last_seen.items() if now - t > self.window_s]
        for key in stale:
            del self._last_seen[key]
