"""Keyboard-wedge scanners: key maps, the key-event state machine, device matching."""

from __future__ import annotations

import asyncio
import os
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.barcodes.hid import (
    EV_KEY,
    EV_SYN,
    INTER_KEY_TIMEOUT_S,
    KEY_CODES,
    LAYOUTS,
    MAX_CODE_LENGTH,
    DeviceInfo,
    KeyboardDecoder,
    key_events,
    keymap,
    matches,
)

EV_MSC = 4
MSC_SCAN = 4

# The event sequence a keyboard-wedge scanner in French AZERTY mode sends for the demo card,
# in the shape evtest prints it (per key: MSC_SCAN with the HID usage, key down, SYN, MSC_SCAN,
# key up, SYN; Shift held around every digit, as AZERTY needs). Written out by hand from the
# HID usage table (no scanner is attached here): the first three digits and the Enter; the
# rest of the code is generated the same way by key_events().
RECORDED_FR_PREFIX = [
    (EV_MSC, MSC_SCAN, 0x700E1), (EV_KEY, 42, 1), (EV_SYN, 0, 0),
    (EV_MSC, MSC_SCAN, 0x7001F), (EV_KEY, 3, 1), (EV_SYN, 0, 0),   # Shift+KEY_2 -> "2"
    (EV_MSC, MSC_SCAN, 0x7001F), (EV_KEY, 3, 0), (EV_SYN, 0, 0),
    (EV_MSC, MSC_SCAN, 0x700E1), (EV_KEY, 42, 0), (EV_SYN, 0, 0),
    (EV_MSC, MSC_SCAN, 0x700E1), (EV_KEY, 42, 1), (EV_SYN, 0, 0),
    (EV_MSC, MSC_SCAN, 0x70026), (EV_KEY, 10, 1), (EV_SYN, 0, 0),  # Shift+KEY_9 -> "9"
    (EV_MSC, MSC_SCAN, 0x70026), (EV_KEY, 10, 0), (EV_SYN, 0, 0),
    (EV_MSC, MSC_SCAN, 0x700E1), (EV_KEY, 42, 0), (EV_SYN, 0, 0),
    (EV_MSC, MSC_SCAN, 0x700E1), (EV_KEY, 42, 1), (EV_SYN, 0, 0),
    (EV_MSC, MSC_SCAN, 0x70027), (EV_KEY, 11, 1), (EV_SYN, 0, 0),  # Shift+KEY_0 -> "0"
    (EV_MSC, MSC_SCAN, 0x70027), (EV_KEY, 11, 0), (EV_SYN, 0, 0),
    (EV_MSC, MSC_SCAN, 0x700E1), (EV_KEY, 42, 0), (EV_SYN, 0, 0),
]  # fmt: skip
RECORDED_ENTER = [
    (EV_MSC, MSC_SCAN, 0x70028), (EV_KEY, 28, 1), (EV_SYN, 0, 0),
    (EV_MSC, MSC_SCAN, 0x70028), (EV_KEY, 28, 0), (EV_SYN, 0, 0),
]  # fmt: skip


def test_key_codes_match_the_kernel_abi() -> None:
    """Our key-code table equals evdev's (linux/input-event-codes.h)."""
    ecodes = pytest.importorskip("evdev.ecodes")
    for name, code in KEY_CODES.items():
        assert ecodes.ecodes[name] == code, name
    assert (ecodes.EV_KEY, ecodes.EV_SYN) == (EV_KEY, EV_SYN)


def test_recorded_azerty_sequence() -> None:
    """A recorded AZERTY scan (Shift+top row for digits, MSC/SYN noise) gives the digits."""
    decoder = KeyboardDecoder("fr")
    rest = key_events("0001234566", "fr", enter=False)
    assert decoder.feed_all(RECORDED_FR_PREFIX + rest + RECORDED_ENTER) == ["2900001234566"]


def test_same_keys_on_the_wrong_layout_are_not_digits() -> None:
    """AZERTY keys read with the US map give symbols: a misconfigured layout is visible."""
    assert KeyboardDecoder("us").feed_all(RECORDED_FR_PREFIX + RECORDED_ENTER) == ["@()"]
    # And a US scanner's unshifted digits read on the French map are "&é\"'(-è_çà".
    us_digits = key_events("1234567890", "us")
    assert KeyboardDecoder("fr").feed_all(us_digits) == ["&é\"'(-è_çà"]


def test_us_layout_letters_digits_symbols() -> None:
    """The US map: Shift for capitals and symbols, keypad digits, Enter on the keypad."""
    events = [*key_events("Ab1!-", "us", enter=False), (EV_KEY, KEY_CODES["KEY_KP7"], 1)]
    events += [(EV_KEY, KEY_CODES["KEY_KPENTER"], 1)]
    assert KeyboardDecoder("us").feed_all(events) == ["Ab1!-7"]


def test_azerty_letter_positions() -> None:
    """On AZERTY, the key labelled Q on a US board types a, W types z, ; types m."""
    fr = keymap("fr")
    assert fr.char(KEY_CODES["KEY_Q"], False, False) == "a"
    assert fr.char(KEY_CODES["KEY_W"], False, False) == "z"
    assert fr.char(KEY_CODES["KEY_SEMICOLON"], True, False) == "M"
    assert fr.char(KEY_CODES["KEY_0"], False, True) == "@"
    assert fr.char(KEY_CODES["KEY_0"], True, False) == "0"


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@given(text=st.text(alphabet=string.ascii_letters + string.digits + "-./+ ", max_size=40))
def test_round_trip_every_layout(layout: str, text: str) -> None:
    """Whatever a scanner types in a layout decodes back to the same text."""
    result = KeyboardDecoder(layout).feed_all(key_events(text, layout))
    assert result == ([text] if text else [])


def test_repeat_and_modifier_chords_are_ignored() -> None:
    """Auto-repeat adds nothing; keys under Ctrl/Alt are not text; release is not a press."""
    k = KEY_CODES
    events = [
        (EV_KEY, k["KEY_1"], 1), (EV_KEY, k["KEY_1"], 2), (EV_KEY, k["KEY_1"], 2),
        (EV_KEY, k["KEY_1"], 0),
        (EV_KEY, k["KEY_LEFTCTRL"], 1), (EV_KEY, k["KEY_J"], 1), (EV_KEY, k["KEY_J"], 0),
        (EV_KEY, k["KEY_LEFTCTRL"], 0),
        (EV_KEY, k["KEY_2"], 1), (EV_KEY, k["KEY_ENTER"], 1),
    ]  # fmt: skip
    assert KeyboardDecoder("us").feed_all(events) == ["12"]


def test_capslock_inverts_letters_only() -> None:
    """Caps Lock changes the case of letters, not digits."""
    k = KEY_CODES
    events = [(EV_KEY, k["KEY_CAPSLOCK"], 1), (EV_KEY, k["KEY_CAPSLOCK"], 0)]
    events += key_events("ab12", "us")
    assert KeyboardDecoder("us").feed_all(events) == ["AB12"]


def test_pause_discards_a_partial_code() -> None:
    """Keys separated by a long pause (a person, a stray key) are dropped, not glued on."""
    d = KeyboardDecoder("us")
    k = KEY_CODES
    assert d.feed(EV_KEY, k["KEY_9"], 1, t=10.0) is None
    assert d.feed(EV_KEY, k["KEY_1"], 1, t=10.0 + INTER_KEY_TIMEOUT_S + 0.1) is None
    assert d.feed(EV_KEY, k["KEY_2"], 1, t=10.7) is None
    assert d.feed(EV_KEY, k["KEY_ENTER"], 1, t=10.71) == "12"
    assert d.discarded == 1


def test_unmapped_keys_and_overflow() -> None:
    """An unmapped key poisons the code (no silent shortening); a code without end is dropped."""
    k = KEY_CODES
    d = KeyboardDecoder("us")
    events = [(EV_KEY, k["KEY_1"], 1), (EV_KEY, k["KEY_ESC"], 1), (EV_KEY, k["KEY_ENTER"], 1)]
    assert d.feed_all(events) == ["1\ufffd"]
    long = key_events("1" * (MAX_CODE_LENGTH + 5), "us")
    assert d.feed_all(long) == []
    assert d.feed_all(key_events("42", "us")) == ["42"]
    assert d.feed_all([(EV_KEY, k["KEY_ENTER"], 1)]) == []  # Enter alone is nothing


def test_unknown_layout_is_named() -> None:
    """A layout typo lists the known layouts."""
    with pytest.raises(ValueError, match="us, fr"):
        KeyboardDecoder("de")
    with pytest.raises(ValueError, match="cannot be typed"):
        key_events("€", "us")


def test_device_matching() -> None:
    """By exact name, by vendor:product in hex, by path, or by name hints when unset."""
    dev = DeviceInfo("/dev/input/event5", "Honeywell Barcode Scanner", 0x0C2E, 0x0B61)
    kbd = DeviceInfo("/dev/input/event2", "AT Translated Set 2 keyboard", 0x0001, 0x0001)
    assert matches(dev, "Honeywell Barcode Scanner")
    assert matches(dev, "0c2e:0b61")
    assert matches(dev, "0C2E:0B61")
    assert not matches(dev, "0c2e:0b62")
    assert matches(dev, "/dev/input/event5")
    assert matches(dev, "")
    assert not matches(kbd, "")
    assert not matches(kbd, "zzzz:0001")


@pytest.mark.hardware
def test_real_input_device_is_grabbed_and_read() -> None:
    """Through /dev/uinput: a virtual scanner types the demo card; the component reads it."""
    if not os.path.exists("/dev/uinput"):
        pytest.skip("no /dev/uinput on this machine")
    from evdev import UInput
    from evdev import ecodes as e

    from edge.barcodes.hid import HidComponent
    from edge.barcodes.loyalty import Pattern
    from edge.barcodes.scans import ScanRouter
    from edge.bus import Bus
    from edge.config import Config
    from edge.events import Event
    from edge.health import Health
    from edge.services import Services

    config = Config()
    config.barcodes.hid_device = "kiosk-edge test scanner"
    services = Services(config=config, bus=Bus(), health=Health(), salt="s")
    got: list[Event] = []
    router = ScanRouter([Pattern("29", 13, "gs1")], 3.0, "s", got.append)
    caps = {e.EV_KEY: sorted(KEY_CODES.values())}

    async def scenario() -> None:
        with UInput(caps, name="kiosk-edge test scanner") as ui:
            task = asyncio.create_task(HidComponent(services, router).run())
            await asyncio.sleep(1.0)
            for ev_type, code, value in key_events("2900001234566", "us"):
                ui.write(ev_type, code, value)
                ui.syn()
            await asyncio.sleep(0.5)
            task.cancel()

    asyncio.run(scenario())
    assert [x.type for x in got] == ["kiosk.loyalty.scan"]


@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 300), st.integers(-1, 3)),
        max_size=200,
    )
)
def test_random_event_streams_never_raise(events: list[tuple[int, int, int]]) -> None:
    """Any event stream (a flaky device, another kind of device) only yields short strings."""
    for layout in LAYOUTS:
        for text in KeyboardDecoder(layout).feed_all(events):
            assert 0 < len(text) <= MAX_CODE_LENGTH


def test_component_without_scanner_waits_degraded() -> None:
    """With no matching input device the reader reports why and keeps looking (hot-plug)."""
    pytest.importorskip("evdev")
    from edge.barcodes.hid import HidComponent
    from edge.barcodes.service import hid_component, scan_router
    from edge.bus import Bus
    from edge.config import Config
    from edge.health import Health
    from edge.services import Services

    config = Config()
    config.barcodes.hid_enabled = True
    config.barcodes.hid_device = "05e0:1200"
    services = Services(config=config, bus=Bus(), health=Health(), salt="s")
    component = hid_component(services)
    assert isinstance(component, HidComponent)
    assert component.router is scan_router(services)

    async def scenario() -> None:
        task = asyncio.create_task(component.run())
        await asyncio.sleep(0.3)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    health = services.health.get("hid")
    assert health is not None
    assert health.state == "degraded"
    assert "no scanner matching 05e0:1200" in health.reason
    assert "barcodes.hid_device" in health.reason
