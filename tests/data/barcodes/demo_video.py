"""Write firmware_config/demo/camera.mp4: the demo camera's view, scripted and deterministic.

The demo daemon plays it instead of a camera (barcodes.camera = "demo/camera.mp4", looped).
Scenes at 10 frames a second: an empty counter, the demo loyalty card (2900001234566, EAN-13
as French loyalty cards usually are), an empty counter, product 3760000000017, empty,
product 3760000000024, empty. Each code is shown for 2 s with a little hand shake, and the
gaps are longer than the duplicate window so each scene is one scan.

Run ``python tests/data/barcodes/demo_video.py`` to rebuild it (same output every time).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Final

import cv2
import numpy as np

HERE: Final = Path(__file__).resolve().parent
REPO: Final = HERE.parents[2]
sys.path.insert(0, str(REPO))

from tests.support.scripts import load_script  # noqa: E402

DEFAULT_OUT: Final = REPO / "firmware_config" / "demo" / "camera.mp4"
FPS: Final = 10
EMPTY_S: Final = 3.5  # longer than the default 3 s duplicate window
SHOW_S: Final = 2.0
SEED: Final = 5


def _generator() -> ModuleType:
    """The corpus generator beside this file (card rendering, backgrounds)."""
    return load_script("barcodes/generate.py")


def scenes() -> list[tuple[str, str]]:
    """(symbology, text) per scene; empty text for an empty counter."""
    gen = _generator()
    return [
        ("", ""),
        ("ean13", gen.DEMO_LOYALTY),
        ("", ""),
        ("ean13", gen.DEMO_EANS[0]),
        ("", ""),
        ("ean13", gen.DEMO_EANS[1]),
        ("", ""),
    ]


def write_demo_video(out: Path, fps: int = FPS) -> list[tuple[int, str]]:
    """Write the video; returns (first frame index, text) of each code scene."""
    gen = _generator()
    rng = random.Random(SEED)
    nrng = np.random.default_rng(SEED)
    # A smooth counter top: fine texture changes little on screen but doubles the file.
    base = cv2.GaussianBlur(gen.background(rng, nrng), (0, 0), 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {out}")
    shown: list[tuple[int, str]] = []
    index = 0
    try:
        for symbology, text in scenes():
            n = round((SHOW_S if text else EMPTY_S) * fps)
            item = None
            if text:
                code = gen.render_code(symbology, text, module_px=4)
                item = gen.card(code, rng, symbology)
                shown.append((index, text))
            for i in range(n):
                frame = base.copy()
                if item is not None:
                    angle = 8 * math.sin(i / 5) - 4
                    frame = _place(frame, item, angle, 320 + 12 * math.sin(i / 3), 250)
                writer.write(frame)  # no per-frame noise: it would triple the file size
                index += 1
    finally:
        writer.release()
    return shown


def _place(scene: np.ndarray, item: np.ndarray, angle: float, cx: float, cy: float) -> np.ndarray:
    ih, iw = item.shape[:2]
    s = 2.8 / 4  # 2.8 px a module
    m = cv2.getRotationMatrix2D((iw / 2, ih / 2), angle, s)
    m[0, 2] += cx - iw / 2
    m[1, 2] += cy - ih / 2
    warped = cv2.warpAffine(item, m, (640, 480), flags=cv2.INTER_AREA)
    mask = cv2.warpAffine(np.full((ih, iw), 255, np.uint8), m, (640, 480))
    out = scene.copy()
    out[mask > 127] = warped[mask > 127]
    return out


def main() -> None:
    """Rebuild the demo video."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    shown = write_demo_video(args.out)
    print(f"{args.out}: codes at frames {shown}")


if __name__ == "__main__":
    main()
