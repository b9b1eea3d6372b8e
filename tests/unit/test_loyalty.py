"""Loyalty validation: check digits, patterns, classification and duplicate suppression."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.barcodes.loyalty import (
    DuplicateFilter,
    Pattern,
    check_passes,
    classify,
    gs1_check_digit,
    gs1_valid,
    luhn_valid,
)
from edge.barcodes.scans import ScanRouter
from edge.config import Config, ConfigError, parse_config
from edge.events import Event
from edge.privacy import hash_identifier

DEMO_CARD = "2900001234566"
DEMO_HASH = "49698d7f90c7344b7552e55142b73e35"
DEMO_PATTERNS = [Pattern(prefix="29", length=13, check="gs1")]


def test_gs1_check_digits_of_published_codes() -> None:
    """GS1 mod 10 matches real EAN-13, EAN-8 and UPC-A codes and the demo constants."""
    for code in ("4006381333931", "9780306406157", "73513537", "036000291452", DEMO_CARD):
        assert gs1_valid(code), code
    assert gs1_valid("3760000000017")
    assert gs1_valid("3760000000024")
    assert gs1_check_digit("400638133393") == 1


def test_gs1_rejects_every_single_digit_error() -> None:
    """Changing any one digit of a valid code breaks the GS1 check (its design guarantee)."""
    for i in range(len(DEMO_CARD)):
        for d in "0123456789":
            if d != DEMO_CARD[i]:
                assert not gs1_valid(DEMO_CARD[:i] + d + DEMO_CARD[i + 1 :])


def test_luhn_known_numbers() -> None:
    """Luhn accepts the textbook examples and rejects a one-digit change."""
    assert luhn_valid("79927398713")
    assert luhn_valid("4539578763621486")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("7992739871a")
    assert not luhn_valid("7")


def test_unknown_check_name_is_a_clear_error() -> None:
    """A typo in the check name says which names exist."""
    with pytest.raises(ValueError, match="gs1, luhn or none"):
        check_passes("123", "mod11")


@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_appending_the_check_digit_always_validates(body: str) -> None:
    """Any digit string plus its computed GS1 check digit is valid."""
    assert gs1_valid(body + str(gs1_check_digit(body)))


def test_classify_demo_loyalty_card() -> None:
    """The demo card matches the default pattern (prefix 29, 13 digits, GS1)."""
    result = classify(DEMO_CARD, "code128", DEMO_PATTERNS)
    assert (result.kind, result.code, result.valid) == ("loyalty", DEMO_CARD, True)


def test_classify_loyalty_with_wrong_check_digit_is_rejected() -> None:
    """A loyalty-shaped number with a wrong check digit is invalid, and the reason hides it."""
    result = classify("2900001234567", "ean13", DEMO_PATTERNS)
    assert result.kind == "loyalty"
    assert not result.valid
    assert "2900001234567" not in result.reason


def test_classify_products() -> None:
    """EAN-13/EAN-8 are products; UPC-A is widened to 13 digits; bad checks rejected."""
    assert classify("3760000000017", "ean13", DEMO_PATTERNS) == classify(
        " 3760000000017\r\n", "ean13", DEMO_PATTERNS
    )
    assert classify("3760000000017", "ean13", DEMO_PATTERNS).kind == "product"
    upc = classify("036000291452", "upca", DEMO_PATTERNS)
    assert (upc.kind, upc.code, upc.valid) == ("product", "0036000291452", True)
    assert classify("73513537", "ean8", DEMO_PATTERNS).valid
    bad = classify("3760000000018", "ean13", DEMO_PATTERNS)
    assert bad.kind == "product"
    assert not bad.valid
    # From a keyboard wedge the symbology is unknown: digits of the right shape still count.
    assert classify("3760000000024", "unknown", DEMO_PATTERNS).kind == "product"


def test_upce_is_expanded_to_its_gtin_and_checked_as_upca() -> None:
    """UPC-E 01234565 is UPC-A 012345000065 (its check digit is the UPC-A's), GTIN 0012345000065.

    Read as an EAN-8 it would pass by chance here but name a product the catalog lacks, and
    a valid UPC-E such as 04252614 (UPC-A 042100005264) would be rejected.
    """
    for upce, gtin in [
        ("01234565", "0012345000065"),
        ("04252614", "0042100005264"),
        ("01234531", "0012300000451"),
        ("01234543", "0012340000053"),
    ]:
        result = classify(upce, "upce", DEMO_PATTERNS)
        assert (result.kind, result.code, result.valid) == ("product", gtin, True), upce
    assert not classify("04252615", "upce", DEMO_PATTERNS).valid  # wrong check digit
    assert classify("24252614", "upce", DEMO_PATTERNS).kind == "other"  # no number system 2


def test_classify_other() -> None:
    """A URL in a QR code, or 13 digits in a QR code, is neither loyalty nor product."""
    assert classify("https://shop.example/", "qrcode", DEMO_PATTERNS).kind == "other"
    assert classify("3760000000017", "qrcode", DEMO_PATTERNS).kind == "other"
    assert classify("", "ean13", DEMO_PATTERNS).kind == "other"
    assert classify("9" * 300, "code128", DEMO_PATTERNS).kind == "other"


def test_loyalty_in_qr_and_luhn_patterns() -> None:
    """A QR card carries the same number; a Luhn pattern with another prefix works too."""
    patterns = [*DEMO_PATTERNS, Pattern(prefix="", length=16, check="luhn")]
    assert classify(DEMO_CARD, "qrcode", patterns).kind == "loyalty"
    luhn = classify("4539578763621486", "code128", patterns)
    assert (luhn.kind, luhn.valid) == ("loyalty", True)
    assert not classify("4539578763621487", "code128", patterns).valid


def test_config_patterns_work_as_patterns() -> None:
    """The config's LoyaltyPattern objects are accepted as they are."""
    patterns = Config().barcodes.loyalty_patterns
    assert classify(DEMO_CARD, "ean13", patterns).kind == "loyalty"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ({"prefix": "2900000000000", "length": 13}, "leaves no room"),
        ({"prefix": "CARD", "length": 10, "check": "luhn"}, "needs digits only"),
    ],
)
def test_config_refuses_a_pattern_no_card_can_match(
    pattern: dict[str, object], message: str
) -> None:
    """A loyalty pattern that would silently turn every card away is a config error."""
    with pytest.raises(ConfigError, match=message):
        parse_config({"barcodes": {"loyalty_patterns": [pattern]}})
    ok = parse_config({"barcodes": {"loyalty_patterns": [{"prefix": "CARD", "check": "none"}]}})
    assert classify("CARD123456789", "code128", ok.barcodes.loyalty_patterns).kind == "loyalty"


def test_duplicate_filter_scripted_timestamps() -> None:
    """Reads within the window (since the last read) are one scan; after a gap, a new one."""
    f = DuplicateFilter(3.0)
    assert f.accept("a", 100.0)
    assert not f.accept("a", 101.0)
    assert not f.accept("a", 103.5)  # held in view: the window slides with each read
    assert not f.accept("a", 106.4)
    assert f.accept("b", 106.5)  # another code is independent
    assert f.accept("a", 109.5)  # 3.1 s without a read
    assert not f.accept("a", 109.6)


def test_duplicate_filter_zero_window_and_many_codes() -> None:
    """Window 0 still merges reads at the same instant; many codes do not grow without bound."""
    f = DuplicateFilter(0.0)
    assert f.accept("x", 1.0)
    assert not f.accept("x", 1.0)
    assert f.accept("x", 1.001)
    g = DuplicateFilter(1.0)
    for i in range(1000):
        assert g.accept(str(i), float(i))
    assert len(g._last_seen) <= 65
    with pytest.raises(ValueError):
        DuplicateFilter(-1)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_router_events_follow_the_contract() -> None:
    """Loyalty events carry only the salted hash; product events the EAN; repeats dropped."""
    published: list[Event] = []
    clock = _Clock()
    router = ScanRouter(DEMO_PATTERNS, 3.0, "demo-salt-not-secret", published.append, clock)
    router.handle(DEMO_CARD, "code128", "camera")
    clock.now = 1.0
    router.handle(DEMO_CARD, "code128", "hid")  # same card on the USB scanner: a repeat
    router.handle("3760000000017", "ean13", "camera")
    router.handle("3760000000018", "ean13", "camera")  # bad check digit
    router.handle("hello", "qrcode", "camera")
    assert [e.type for e in published] == ["kiosk.loyalty.scan", "kiosk.product.scan"]
    loyalty, product = published
    assert loyalty.data == {"id_hash": DEMO_HASH, "source": "camera", "symbology": "code128"}
    assert hash_identifier("demo-salt-not-secret", "loyalty", DEMO_CARD) == DEMO_HASH
    assert DEMO_CARD not in repr(loyalty)
    assert product.data == {"ean": "3760000000017", "source": "camera", "symbology": "ean13"}
    c = router.counters
    assert (c.loyalty, c.product, c.duplicates, c.rejected, c.other) == (1, 1, 1, 1, 1)
    clock.now = 10.0
    assert router.handle(DEMO_CARD, "ean13", "camera") is not None


def test_router_never_raises_on_garbage() -> None:
    """Random bytes decoded as text never raise and never produce an event."""
    rng = random.Random(5)
    published: list[Event] = []
    router = ScanRouter(DEMO_PATTERNS, 3.0, "s", published.append)
    for _ in range(500):
        text = "".join(chr(rng.randrange(0, 0x2FF)) for _ in range(rng.randrange(0, 40)))
        router.handle(text, rng.choice(["ean13", "qrcode", "unknown", "code128"]), "camera")
    assert all(e.type in ("kiosk.loyalty.scan", "kiosk.product.scan") for e in published)
