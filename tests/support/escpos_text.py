"""A small ESC/POS decoder for the commands our receipts use: text lines, code page, images.

No package parses ESC/POS back into text, so tests that assert on printed receipts decode
the few commands :mod:`edge.takeaway.receipt` emits and fail loudly on anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ESC = 0x1B
GS = 0x1D
DLE = 0x10
# Code page numbers (ESC t n) to Python codecs for the pages the receipt may choose.
CODECS = {19: "cp858", 16: "cp1252", 40: "iso8859_15", 2: "cp850", 0: "cp437"}


class DecodeError(ValueError):
    """The bytes contain a command this decoder does not know."""


@dataclass
class Decoded:
    """What a printer would show: text lines, the code pages selected, images, cuts."""

    lines: list[str] = field(default_factory=list)
    codepages: list[int] = field(default_factory=list)
    images: list[tuple[int, int]] = field(default_factory=list)  # (width dots, height dots)
    native_qr: list[bytes] = field(default_factory=list)
    status_queries: list[int] = field(default_factory=list)
    cuts: int = 0
    inits: int = 0


def decode(data: bytes) -> Decoded:
    """Decode receipt bytes; raises DecodeError on an unknown command."""
    out = Decoded()
    codec = "cp437"
    current = bytearray()
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == 0x0A:
            out.lines.append(current.decode(codec))
            current = bytearray()
            i += 1
        elif b == ESC:
            cmd = data[i + 1]
            if cmd == ord("@"):
                out.inits += 1
                i += 2
            elif cmd == ord("t"):
                page = data[i + 2]
                out.codepages.append(page)
                if page not in CODECS:
                    raise DecodeError(f"code page {page} unknown to the decoder")
                codec = CODECS[page]
                i += 3
            elif cmd in (ord("!"), ord("E"), ord("a"), ord("-"), ord("M"), ord("d")):
                if cmd == ord("d"):
                    out.lines.extend([current.decode(codec)] + [""] * (data[i + 2] - 1))
                    current = bytearray()
                i += 3
            else:
                raise DecodeError(f"unknown command ESC {cmd:#04x} at {i}")
        elif b == GS:
            cmd = data[i + 1]
            if cmd == ord("v") and data[i + 2] == ord("0"):
                xb = data[i + 4] | data[i + 5] << 8
                y = data[i + 6] | data[i + 7] << 8
                out.images.append((xb * 8, y))
                i += 8 + xb * y
            elif cmd == ord("V"):
                out.cuts += 1
                i += 3 if data[i + 2] in (0, 1, 48, 49) else 4
            elif cmd == ord("(") and data[i + 2] == ord("k"):
                size = data[i + 3] | data[i + 4] << 8
                body = data[i + 5 : i + 5 + size]
                if body[:2] == b"1P":
                    out.native_qr.append(body[3:])
                i += 5 + size
            elif cmd == ord("!"):
                i += 3
            else:
                raise DecodeError(f"unknown command GS {cmd:#04x} at {i}")
        elif b == DLE and i + 2 < n and data[i + 1] == 0x04:
            out.status_queries.append(data[i + 2])
            i += 3
        elif b < 0x20:
            raise DecodeError(f"unexpected control byte {b:#04x} at {i}")
        else:
            current.append(b)
            i += 1
    if current:
        out.lines.append(current.decode(codec))
    return out
