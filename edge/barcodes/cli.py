"""`kiosk-edge scan FILE...`: decode images and videos, one JSON line per distinct code.

For checking a camera set-up or a printed card away from the kiosk: it decodes exactly as
the camera does (same decoder, same configured symbologies and loyalty patterns) and says
what each code is. Exit 0 when a code was found, 1 when none, 2 when a file is unreadable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.barcodes.camera import CaptureError, iter_file_frames
from edge.barcodes.decode import FrameDecoder
from edge.barcodes.loyalty import classify


def _cmd_scan(args: argparse.Namespace) -> int:
    from edge.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, optional_config

    config = optional_config(args)
    cfg = config.barcodes
    decoder = FrameDecoder(cfg.symbologies, roi=cfg.roi, use_zxing=cfg.use_zxing)
    found = 0
    unreadable = 0
    try:
        for name in args.files:
            path = Path(name)
            seen: set[tuple[str, str]] = set()
            try:
                for index, frame in iter_file_frames(path):
                    if index % args.every:
                        continue
                    for reading in decoder.decode(frame):
                        key = (reading.symbology, reading.text)
                        if key in seen:
                            continue
                        seen.add(key)
                        result = classify(reading.text, reading.symbology, cfg.loyalty_patterns)
                        line = {
                            "file": name,
                            "frame": index,
                            "symbology": reading.symbology,
                            "text": reading.text,
                            "class": result.kind,
                            "valid": result.valid,
                        }
                        print(json.dumps(line, ensure_ascii=False), flush=True)
                        found += 1
            except CaptureError as exc:
                unreadable += 1
                print(f"kiosk-edge: {exc}; give an image or a video file", file=sys.stderr)
    finally:
        decoder.close()
    if unreadable:
        return EXIT_USAGE
    return EXIT_OK if found else EXIT_FAILURE


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too small; give 1 or more")
    return value


def register(subparsers: Any, add_config_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the `scan` subcommand."""
    p = subparsers.add_parser(
        "scan",
        help="decode barcodes in images or videos (JSON lines)",
        description=(
            "Decode images, videos or image folders as the kiosk camera does and print one "
            'JSON object per distinct code: {"file", "frame", "symbology", "text", "class", '
            '"valid"}. Exit 0 if a code was found, 1 if none, 2 on an unreadable file.'
        ),
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="image, video or image folder")
    p.add_argument(
        "--every", type=_positive, default=1, metavar="N", help="decode every Nth video frame only"
    )
    add_config_option(p)
    p.set_defaults(func=_cmd_scan)
