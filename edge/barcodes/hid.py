"""USB keyboard-wedge barcode scanners, read with evdev and grabbed so the browser sees nothing.

A keyboard-wedge scanner types each code as key presses ending with Enter. The daemon
grabs the scanner's input device exclusively (EVIOCGRAB), so a scan never types into the
kiosk browser, and turns key codes back into characters with the layout the scanner is set
to emulate (US or French AZERTY: on AZERTY the digits need Shift). The key map and the state
machine below are pure; only :class:`HidComponent` touches evdev and /dev/input.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from edge.barcodes.loyalty import UNKNOWN_SYMBOLOGY

if TYPE_CHECKING:
    from edge.barcodes.scans import ScanRouter
    from edge.services import Services

_LOGGER = logging.getLogger(__name__)

# Event types and key codes from linux/input-event-codes.h (a stable kernel ABI), so the
# pure part needs no evdev import; a test checks them against evdev.ecodes.
EV_SYN: Final = 0
EV_KEY: Final = 1
KEY_CODES: Final[dict[str, int]] = {
    "KEY_ESC": 1, "KEY_1": 2, "KEY_2": 3, "KEY_3": 4, "KEY_4": 5, "KEY_5": 6, "KEY_6": 7,
    "KEY_7": 8, "KEY_8": 9, "KEY_9": 10, "KEY_0": 11, "KEY_MINUS": 12, "KEY_EQUAL": 13,
    "KEY_BACKSPACE": 14, "KEY_TAB": 15, "KEY_Q": 16, "KEY_W": 17, "KEY_E": 18, "KEY_R": 19,
    "KEY_T": 20, "KEY_Y": 21, "KEY_U": 22, "KEY_I": 23, "KEY_O": 24, "KEY_P": 25,
    "KEY_LEFTBRACE": 26, "KEY_RIGHTBRACE": 27, "KEY_ENTER": 28, "KEY_LEFTCTRL": 29,
    "KEY_A": 30, "KEY_S": 31, "KEY_D": 32, "KEY_F": 33, "KEY_G": 34, "KEY_H": 35, "KEY_J": 36,
    "KEY_K": 37, "KEY_L": 38, "KEY_SEMICOLON": 39, "KEY_APOSTROPHE": 40, "KEY_GRAVE": 41,
    "KEY_LEFTSHIFT": 42, "KEY_BACKSLASH": 43, "KEY_Z": 44, "KEY_X": 45, "KEY_C": 46,
    "KEY_V": 47, "KEY_B": 48, "KEY_N": 49, "KEY_M": 50, "KEY_COMMA": 51, "KEY_DOT": 52,
    "KEY_SLASH": 53, "KEY_RIGHTSHIFT": 54, "KEY_KPASTERISK": 55, "KEY_LEFTALT": 56,
    "KEY_SPACE": 57, "KEY_CAPSLOCK": 58, "KEY_KP7": 71, "KEY_KP8": 72, "KEY_KP9": 73,
    "KEY_KPMINUS": 74, "KEY_KP4": 75, "KEY_KP5": 76, "KEY_KP6": 77, "KEY_KPPLUS": 78,
    "KEY_KP1": 79, "KEY_KP2": 80, "KEY_KP3": 81, "KEY_KP0": 82, "KEY_KPDOT": 83,
    "KEY_102ND": 86, "KEY_KPENTER": 96, "KEY_RIGHTCTRL": 97, "KEY_KPSLASH": 98,
    "KEY_RIGHTALT": 100, "KEY_LEFTMETA": 125, "KEY_RIGHTMETA": 126,
}  # fmt: skip
_K = KEY_CODES
SHIFT_KEYS: Final = frozenset({_K["KEY_LEFTSHIFT"], _K["KEY_RIGHTSHIFT"]})
ALTGR_KEY: Final = _K["KEY_RIGHTALT"]
# Keys that make the other keys mean something else than text (Ctrl+J, Alt+Tab, Super).
CHORD_KEYS: Final = frozenset(
    {
        _K[n]
        for n in ("KEY_LEFTCTRL", "KEY_RIGHTCTRL", "KEY_LEFTALT", "KEY_LEFTMETA", "KEY_RIGHTMETA")
    }
)
END_KEYS: Final = frozenset({_K["KEY_ENTER"], _K["KEY_KPENTER"]})
CAPSLOCK_KEY: Final = _K["KEY_CAPSLOCK"]
# Scanners type a code in a few milliseconds a key; a pause longer than this means the
# partial code was a stray key press (or a human), so it is discarded.
INTER_KEY_TIMEOUT_S: Final = 0.5
# Longest code kept; beyond this the scanner is misconfigured (no Enter suffix).
MAX_CODE_LENGTH: Final = 256
# A character this decoder cannot map: keeps the length right and makes the code invalid.
UNMAPPED: Final = "\ufffd"
# How often to look for the scanner when it is not plugged in (hot-plug).
HOTPLUG_POLL_S: Final = 2.0
# Without a configured device, input devices whose name contains one of these are scanners.
DEFAULT_NAME_HINTS: Final = ("barcode", "scanner")

# (key name, plain, shift, altgr): "" where the layout produces nothing useful.
Entry = tuple[str, str, str, str]
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_KEYPAD: Final[list[Entry]] = [
    *[(f"KEY_KP{d}", d, d, "") for d in "0123456789"],
    ("KEY_KPDOT", ".", ".", ""), ("KEY_KPMINUS", "-", "-", ""), ("KEY_KPPLUS", "+", "+", ""),
    ("KEY_KPASTERISK", "*", "*", ""), ("KEY_KPSLASH", "/", "/", ""), ("KEY_SPACE", " ", " ", ""),
]  # fmt: skip
_US: Final[list[Entry]] = [
    *[(f"KEY_{c.upper()}", c, c.upper(), "") for c in _LETTERS],
    *[(f"KEY_{d}", d, s, "") for d, s in zip("1234567890", "!@#$%^&*()", strict=True)],
    ("KEY_MINUS", "-", "_", ""), ("KEY_EQUAL", "=", "+", ""), ("KEY_LEFTBRACE", "[", "{", ""),
    ("KEY_RIGHTBRACE", "]", "}", ""), ("KEY_SEMICOLON", ";", ":", ""),
    ("KEY_APOSTROPHE", "'", '"', ""), ("KEY_GRAVE", "`", "~", ""),
    ("KEY_BACKSLASH", "\\", "|", ""), ("KEY_COMMA", ",", "<", ""), ("KEY_DOT", ".", ">", ""),
    ("KEY_SLASH", "/", "?", ""), ("KEY_102ND", "\\", "|", ""),
]  # fmt: skip
# French AZERTY (Linux "fr" layout): A/Q and Z/W swapped, M right of L, digits with Shift.
_FR_LETTER_KEYS: Final = {
    "a": "KEY_Q",
    "q": "KEY_A",
    "z": "KEY_W",
    "w": "KEY_Z",
    "m": "KEY_SEMICOLON",
}
_FR: Final[list[Entry]] = [
    *[(_FR_LETTER_KEYS.get(c, f"KEY_{c.upper()}"), c, c.upper(), "") for c in _LETTERS],
    ("KEY_1", "&", "1", ""), ("KEY_2", "é", "2", "~"), ("KEY_3", '"', "3", "#"),
    ("KEY_4", "'", "4", "{"), ("KEY_5", "(", "5", "["), ("KEY_6", "-", "6", "|"),
    ("KEY_7", "è", "7", "`"), ("KEY_8", "_", "8", "\\"), ("KEY_9", "ç", "9", "^"),
    ("KEY_0", "à", "0", "@"), ("KEY_MINUS", ")", "°", "]"), ("KEY_EQUAL", "=", "+", "}"),
    ("KEY_RIGHTBRACE", "$", "£", "¤"), ("KEY_APOSTROPHE", "ù", "%", ""),
    ("KEY_BACKSLASH", "*", "µ", ""), ("KEY_GRAVE", "²", "", ""), ("KEY_M", ",", "?", ""),
    ("KEY_COMMA", ";", ".", ""), ("KEY_DOT", ":", "/", ""), ("KEY_SLASH", "!", "§", ""),
    ("KEY_102ND", "<", ">", ""),
]  # fmt: skip


@dataclass(frozen=True)
class KeyMap:
    """Key code -> (plain, shifted, AltGr) characters for one keyboard layout."""

    name: str
    keys: dict[int, tuple[str, str, str]]

    def char(self, code: int, shift: bool, altgr: bool) -> str | None:
        """The character a key types with the given modifiers; None for an unmapped key."""
        entry = self.keys.get(code)
        if entry is None:
            return None
        plain, shifted, alt = entry
        out = alt if altgr else (shifted if shift else plain)
        return out or None


def _keymap(name: str, entries: Iterable[Entry]) -> KeyMap:
    keys = {KEY_CODES[k]: (p, s, a) for k, p, s, a in [*entries, *_KEYPAD]}
    return KeyMap(name, keys)


LAYOUTS: Final[dict[str, KeyMap]] = {"us": _keymap("us", _US), "fr": _keymap("fr", _FR)}


def keymap(layout: str) -> KeyMap:
    """The key map of a layout name, raising ValueError naming the known layouts."""
    try:
        return LAYOUTS[layout]
    except KeyError:
        raise ValueError(f"unknown keyboard layout {layout!r}; use {', '.join(LAYOUTS)}") from None


class KeyboardDecoder:
    """The keyboard-wedge state machine: key events in, one code out at each Enter."""

    def __init__(self, layout: str = "us") -> None:
        self.keymap = keymap(layout)
        self._buffer: list[str] = []
        self._shift: set[int] = set()
        self._altgr = False
        self._chords: set[int] = set()
        self._capslock = False
        self._overflow = False
        self._last_t: float | None = None
        self.discarded = 0

    def feed(self, ev_type: int, code: int, value: int, t: float | None = None) -> str | None:
        """Process one input event; returns the code when Enter completes one."""
        if ev_type != EV_KEY or value == 2:  # sync/misc events and auto-repeat carry nothing
            return None
        pressed = value == 1
        if code in SHIFT_KEYS:
            (self._shift.add if pressed else self._shift.discard)(code)
            return None
        if code == ALTGR_KEY:
            self._altgr = pressed
            return None
        if code in CHORD_KEYS:
            (self._chords.add if pressed else self._chords.discard)(code)
            return None
        if not pressed:
            return None
        if code == CAPSLOCK_KEY:
            self._capslock = not self._capslock
            return None
        stale = (
            t is not None and self._last_t is not None and t - self._last_t > INTER_KEY_TIMEOUT_S
        )
        if stale and self._buffer:
            self._reset(discarded=True)
        self._last_t = t
        if code in END_KEYS:
            text = "".join(self._buffer)
            overflow = self._overflow
            self._reset()
            if overflow:
                self.discarded += 1
                return None
            return text or None
        if self._chords:
            return None
        char = self.keymap.char(code, bool(self._shift), self._altgr)
        if char is not None and self._capslock and char.isalpha():
            char = char.lower() if char.isupper() else char.upper()
        if len(self._buffer) >= MAX_CODE_LENGTH:
            self._overflow = True
            return None
        self._buffer.append(char if char is not None else UNMAPPED)
        return None

    def _reset(self, discarded: bool = False) -> None:
        if discarded:
            self.discarded += 1
        self._buffer.clear()
        self._overflow = False

    def feed_all(self, events: Iterable[tuple[int, int, int]]) -> list[str]:
        """Every code completed by a sequence of (type, code, value) events."""
        out = []
        for ev_type, code, value in events:
            text = self.feed(ev_type, code, value)
            if text is not None:
                out.append(text)
        return out


def key_events(text: str, layout: str = "us", enter: bool = True) -> list[tuple[int, int, int]]:
    """The (type, code, value) events a scanner in ``layout`` sends to type ``text``."""
    km = keymap(layout)
    reverse: dict[str, tuple[int, str]] = {}
    for code, (plain, shifted, alt) in km.keys.items():
        for mod, ch in (("altgr", alt), ("shift", shifted), ("", plain)):
            if ch and (ch not in reverse or reverse[ch][0] >= 71):  # prefer the main keys
                reverse[ch] = (code, mod)
    events: list[tuple[int, int, int]] = []
    for ch in text:
        if ch not in reverse:
            raise ValueError(f"{ch!r} cannot be typed on the {layout} layout")
        code, mod = reverse[ch]
        mod_code = {"shift": _K["KEY_LEFTSHIFT"], "altgr": ALTGR_KEY}.get(mod)
        if mod_code is not None:
            events.append((EV_KEY, mod_code, 1))
        events += [(EV_KEY, code, 1), (EV_SYN, 0, 0), (EV_KEY, code, 0), (EV_SYN, 0, 0)]
        if mod_code is not None:
            events.append((EV_KEY, mod_code, 0))
    if enter:
        events += [(EV_KEY, _K["KEY_ENTER"], 1), (EV_KEY, _K["KEY_ENTER"], 0), (EV_SYN, 0, 0)]
    return events


@dataclass(frozen=True)
class DeviceInfo:
    """What identifies an input device: its name and USB vendor/product ids."""

    path: str
    name: str
    vendor: int
    product: int


def matches(device: DeviceInfo, wanted: str) -> bool:
    """True when a device is the configured scanner (name, or vendor:product in hex)."""
    wanted = wanted.strip()
    if not wanted:
        return any(hint in device.name.lower() for hint in DEFAULT_NAME_HINTS)
    vid, sep, pid = wanted.partition(":")
    if sep and len(vid) == 4 and len(pid) == 4:
        try:
            return (device.vendor, device.product) == (int(vid, 16), int(pid, 16))
        except ValueError:
            pass
    return wanted in (device.name, device.path)


class HidComponent:
    """Finds, grabs and reads the configured scanner; waits for it when unplugged."""

    name = "hid"

    def __init__(self, services: Services, router: ScanRouter) -> None:
        self.services = services
        self.router = router
        cfg = services.config.barcodes
        self.wanted = cfg.hid_device
        self.layout = cfg.hid_layout
        keymap(self.layout)

    def _find(self, evdev: Any) -> Any:
        seen = denied = 0
        for path in evdev.list_devices():
            try:
                dev = evdev.InputDevice(path)
            except PermissionError:
                denied += 1
                continue
            except OSError:
                continue
            seen += 1
            info = DeviceInfo(path, dev.name, dev.info.vendor, dev.info.product)
            if matches(info, self.wanted):
                return dev
            dev.close()
        self._seen, self._denied = seen, denied
        return None

    async def run(self) -> None:
        """Read codes from the scanner until cancelled."""
        import evdev

        health = self.services.health
        self._seen = self._denied = 0
        wanted = self.wanted or "a device named *barcode* or *scanner*"
        while True:
            dev = self._find(evdev)
            if dev is None:
                reason = (
                    f"no scanner matching {wanted} among {self._seen} input devices; "
                    "plug it in or set barcodes.hid_device"
                )
                if self._denied:
                    reason += (
                        f" ({self._denied} devices not readable: give the service access to "
                        "/dev/input, e.g. the input group)"
                    )
                health.set(self.name, "degraded", reason)
                await asyncio.sleep(HOTPLUG_POLL_S)
                continue
            try:
                dev.grab()
            except OSError as exc:
                dev.close()
                health.set(self.name, "degraded", f"cannot grab {dev.path}: {exc.strerror}")
                await asyncio.sleep(HOTPLUG_POLL_S)
                continue
            health.set(self.name, "ok", f"reading {dev.name}")
            _LOGGER.info("barcode scanner %s (%s) grabbed", dev.name, dev.path)
            decoder = KeyboardDecoder(self.layout)
            try:
                async for event in dev.async_read_loop():
                    text = decoder.feed(event.type, event.code, event.value, event.timestamp())
                    if text is not None:
                        self.router.handle(text, UNKNOWN_SYMBOLOGY, "hid")
            except OSError as exc:
                if exc.errno != errno.ENODEV:
                    raise
                _LOGGER.warning("barcode scanner %s unplugged", dev.path)
                health.set(self.name, "degraded", "scanner unplugged; waiting for it")
            finally:
                with contextlib.suppress(OSError):
                    dev.ungrab()
                with contextlib.suppress(OSError):
                    dev.close()
