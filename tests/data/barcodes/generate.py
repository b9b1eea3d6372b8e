"""Deterministic corpus of camera-like barcode frames for the barcode tests and benchmark.

Each frame is 640x480 BGR: a photo-like background (gradients, blobs, clutter, texture) and,
on most frames, one loyalty card or product label (EAN-13, Code 128 or QR rendered with
python-barcode and segno) 2 to 6 pixels a module at its narrowest (far to close), placed with
rotation up to 30 degrees and a keystone perspective (one side up to 1.35 times the
opposite one), then degraded with defocus blur, sensor noise, low contrast (down to 0.35)
and, on a quarter of the frames, a glare spot on the card. Some frames carry no code at all.
The manifest records each frame's faults (module width, tilt, blur, contrast, glare) so a
benchmark can say where misses come from.

Run ``python tests/data/barcodes/generate.py`` to rebuild the committed corpus (same seed,
same files); the benchmark calls :func:`generate` for a bigger one in a temporary folder.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import barcode
import cv2
import numpy as np
import segno
from barcode.writer import ImageWriter
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # run as a script, too

from edge.barcodes.loyalty import gs1_check_digit

FRAME_W: Final = 640
FRAME_H: Final = 480
# The committed corpus: small enough for git (about 2 MB), varied enough for tests.
COMMITTED_SEED: Final = 20261124
COMMITTED_COUNT: Final = 40
HERE: Final = Path(__file__).resolve().parent
DEMO_LOYALTY: Final = "2900001234566"
DEMO_EANS: Final = ("3760000000017", "3760000000024")
# Codes are drawn at 4 px a module, then scaled so one module spans MODULE_PX_MIN to
# MODULE_PX_MAX frame pixels: about 2 px is a card at arm's length from a 640x480 camera
# (below that no decoder reads a blurred 1D code reliably), 6 px a card held close, which
# the decoder must downscale.
SOURCE_MODULE_PX: Final = 4
MODULE_PX_MIN: Final = 2.0
MODULE_PX_MAX: Final = 6.0
# Perspective: one side of the card is up to this share shorter, the opposite one longer
# (two thirds of it top to bottom): 0.15 makes one side 1.35 times the other, a card turned
# about 30 degrees held 15 cm from the lens.
PERSPECTIVE_MAX: Final = 0.15
# Contrast factors (1 = the printed card): 0.35 is a dim phone screen or a faded print.
CONTRASTS: Final = (1.0, 1.0, 0.7, 0.5, 0.35)
# Gaussian defocus blur sigmas in frame pixels.
BLURS: Final = (0.0, 0.0, 0.6, 1.0, 1.3)
# Share of frames with a glare spot; glare always lands on the card (a laminated card or a
# phone screen under the store's lights), where it hurts.
GLARE_SHARE: Final = 0.25


@dataclass(frozen=True)
class Sample:
    """One generated frame and what a correct decoder must read from it."""

    file: str
    symbology: str  # "ean13", "code128", "qrcode" or "" for a frame with no code
    text: str  # the encoded text ("" when there is no code)
    angle: float
    blur: float
    contrast: float
    glare: bool
    module_px: float = 0.0  # frame pixels per module (narrowest bar), 0 without a code
    tilt: float = 0.0  # perspective: larger over smaller side of the card, minus 1


def random_loyalty(rng: random.Random) -> str:
    """A valid demo-format loyalty number: prefix 29, 13 digits, GS1 check digit."""
    body = "29" + "".join(rng.choice("0123456789") for _ in range(10))
    return body + str(gs1_check_digit(body))


def random_ean(rng: random.Random) -> str:
    """A valid EAN-13 product code with a French (376) prefix."""
    body = "376" + "".join(rng.choice("0123456789") for _ in range(9))
    return body + str(gs1_check_digit(body))


def render_code(symbology: str, text: str, module_px: int) -> np.ndarray:
    """The code as a grayscale image with its quiet zone and human-readable text."""
    if symbology == "qrcode":
        qr = segno.make(text, error="m", micro=False)
        buf = io.BytesIO()
        qr.save(buf, kind="png", scale=module_px + 1, border=4)  # QR modules a bit larger
        img = Image.open(io.BytesIO(buf.getvalue())).convert("L")
        return np.asarray(img, dtype=np.uint8).copy()
    # python-barcode's ImageWriter draws in mm at a given dpi: pick dpi so 1 module = module_px.
    dpi = round(module_px * 25.4 / 0.2)
    code = barcode.get(symbology if symbology != "ean13" else "ean13", text, writer=ImageWriter())
    img = code.render(
        {
            "module_width": 0.2,
            "module_height": 13.0 if symbology == "ean13" else 9.0,
            "quiet_zone": 2.5,
            "font_size": 6,
            "text_distance": 2.5,
            "dpi": dpi,
            "write_text": True,
        }
    )
    return np.asarray(img.convert("L"), dtype=np.uint8).copy()


def background(rng: random.Random, nrng: np.random.Generator) -> np.ndarray:
    """A photo-like cluttered scene: a lit gradient, soft blobs, shapes and fine texture."""
    yy, xx = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
    base = np.array([rng.uniform(40, 200) for _ in range(3)], np.float32)
    tilt = np.array([rng.uniform(-80, 80) for _ in range(3)], np.float32)
    grad = (xx / FRAME_W * math.cos(rng.uniform(0, 6.28)) + yy / FRAME_H * 0.5)[..., None]
    img = base + grad * tilt
    for _ in range(rng.randint(4, 9)):
        cx, cy = rng.uniform(0, FRAME_W), rng.uniform(0, FRAME_H)
        r = rng.uniform(30, 180)
        col = np.array([rng.uniform(-70, 70) for _ in range(3)], np.float32)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
        img = img + blob * col
    img8 = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.randint(3, 10)):  # clutter: furniture edges, shelf labels, text lines
        color = tuple(rng.randint(0, 255) for _ in range(3))
        kind = rng.random()
        p1 = (rng.randint(0, FRAME_W), rng.randint(0, FRAME_H))
        if kind < 0.4:
            p2 = (rng.randint(0, FRAME_W), rng.randint(0, FRAME_H))
            cv2.line(img8, p1, p2, color, rng.randint(1, 6), cv2.LINE_AA)
        elif kind < 0.7:
            p2 = (p1[0] + rng.randint(20, 160), p1[1] + rng.randint(10, 120))
            cv2.rectangle(img8, p1, p2, color, -1 if rng.random() < 0.5 else 2)
        else:
            cv2.putText(
                img8,
                "PROMO -20%",
                p1,
                cv2.FONT_HERSHEY_SIMPLEX,
                rng.uniform(0.4, 1.2),
                color,
                rng.randint(1, 2),
                cv2.LINE_AA,
            )
    texture = nrng.normal(0, 6, (FRAME_H // 4, FRAME_W // 4, 3)).astype(np.float32)
    texture = cv2.resize(texture, (FRAME_W, FRAME_H), interpolation=cv2.INTER_CUBIC)
    return np.clip(img8.astype(np.float32) + texture, 0, 255).astype(np.uint8)


def card(code: np.ndarray, rng: random.Random, symbology: str) -> np.ndarray:
    """A white (or tinted) card or phone screen holding the code, with a title line."""
    h, w = code.shape
    pad_x, pad_top, pad_bottom = rng.randint(20, 60), rng.randint(50, 90), rng.randint(15, 40)
    tint = rng.choice([(255, 255, 255), (245, 240, 230), (235, 245, 255)])
    out = np.full((h + pad_top + pad_bottom, w + 2 * pad_x, 3), tint, np.uint8)
    title = "CARTE FIDELITE" if symbology != "ean13" or rng.random() < 0.5 else "TV 55 4K"
    cv2.putText(
        out,
        title,
        (pad_x, pad_top // 2 + 10),
        cv2.FONT_HERSHEY_DUPLEX,
        1.1,
        (rng.randint(0, 120), rng.randint(0, 120), rng.randint(60, 200)),
        2,
        cv2.LINE_AA,
    )
    out[pad_top : pad_top + h, pad_x : pad_x + w] = code[..., None]
    return out


def place(
    scene: np.ndarray, item: np.ndarray, rng: random.Random, angle: float, source_module: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Warp the card into the scene: scale, rotation, perspective tilt and position.

    Returns the frame, the card's corners in it and the module width in frame pixels.
    """
    ih, iw = item.shape[:2]
    # Size the card by the code's module width in the frame, as a scanner spec does;
    # log-uniform, so small far codes are as common as large close ones. The module width
    # is that of the card's narrowest part: perspective shrinks one side.
    module = math.exp(rng.uniform(math.log(MODULE_PX_MIN), math.log(MODULE_PX_MAX)))
    # Perspective (keystone): a card turned about its vertical axis has one short and one
    # long vertical side (k); tipped about its horizontal axis, a short and a long
    # horizontal side (kv). Corners: top-left, top-right, bottom-right, bottom-left.
    k = rng.uniform(-PERSPECTIVE_MAX, PERSPECTIVE_MAX)
    kv = rng.uniform(-PERSPECTIVE_MAX, PERSPECTIVE_MAX) * 2 / 3
    s = module / source_module / (1 - max(abs(k), abs(kv)))
    src = np.float32([[0, 0], [iw, 0], [iw, ih], [0, ih]])
    pts = (src - [iw / 2, ih / 2]) * s
    pts = pts * np.float32([[1 - kv, 1 - k], [1 - kv, 1 + k], [1 + kv, 1 + k], [1 + kv, 1 - k]])
    a = math.radians(angle)
    rot = np.float32([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    pts = pts @ rot.T
    # A card too big for the frame is shrunk until all of it shows: a code cut by the frame's
    # edge is unreadable by any decoder and would measure nothing.
    span = pts.max(axis=0) - pts.min(axis=0)
    fit = min(1.0, (FRAME_W - 12) / span[0], (FRAME_H - 12) / span[1])
    pts, span, module = pts * fit, span * fit, module * fit
    cx = rng.uniform(span[0] / 2 + 5, max(span[0] / 2 + 6, FRAME_W - span[0] / 2 - 5))
    cy = rng.uniform(span[1] / 2 + 5, max(span[1] / 2 + 6, FRAME_H - span[1] / 2 - 5))
    dst = (pts + np.float32([cx, cy])).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(item, m, (FRAME_W, FRAME_H), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((ih, iw), 255, np.uint8), m, (FRAME_W, FRAME_H))
    out = scene.copy()
    out[mask > 127] = warped[mask > 127]
    return out, dst, module


def tilt(corners: np.ndarray) -> float:
    """How far from a rectangle a placed card is: longer over shorter opposite side, minus 1."""
    side = [float(np.linalg.norm(corners[(i + 1) % 4] - corners[i])) for i in range(4)]
    return max(side[0] / side[2], side[2] / side[0], side[1] / side[3], side[3] / side[1]) - 1


def degrade(
    img: np.ndarray,
    rng: random.Random,
    nrng: np.random.Generator,
    blur: float,
    contrast: float,
    glare: tuple[float, float] | None,
) -> np.ndarray:
    """Camera faults: defocus blur, low contrast, a glare spot centred at ``glare``, noise."""
    out = img.astype(np.float32)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    if contrast < 1:
        out = (out - 128) * contrast + 128 + rng.uniform(-20, 20)
    if glare is not None:
        yy, xx = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
        (cx, cy), r = glare, rng.uniform(30, 90)
        spot = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
        out = out + spot * rng.uniform(60, 110)
    out = out + nrng.normal(0, rng.uniform(2, 7), out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def make_frame(
    rng: random.Random,
    nrng: np.random.Generator,
    symbology: str,
    text: str,
) -> tuple[np.ndarray, dict[str, float | bool]]:
    """One frame (BGR) and the distortions used (the Sample fields)."""
    scene = background(rng, nrng)
    angle = rng.uniform(-30, 30)
    blur = rng.choice(BLURS)
    contrast = rng.choice(CONTRASTS)
    glare_at: tuple[float, float] | None = None
    has_glare = rng.random() < GLARE_SHARE
    module = skew = 0.0
    if has_glare:
        glare_at = (rng.uniform(100, 540), rng.uniform(80, 400))
    if symbology:
        code = render_code(symbology, text, module_px=SOURCE_MODULE_PX)
        source_module = SOURCE_MODULE_PX + 1 if symbology == "qrcode" else SOURCE_MODULE_PX
        scene, corners, module = place(scene, card(code, rng, symbology), rng, angle, source_module)
        skew = tilt(corners)
        if has_glare:  # somewhere on the card's middle half
            centre = corners.mean(axis=0)
            u, v = rng.uniform(-0.25, 0.25), rng.uniform(-0.25, 0.25)
            spot = centre + u * (corners[1] - corners[0]) + v * (corners[3] - corners[0])
            glare_at = (float(spot[0]), float(spot[1]))
    frame = degrade(scene, rng, nrng, blur, contrast, glare_at)
    params: dict[str, float | bool] = {
        "angle": round(angle, 2),
        "blur": blur,
        "contrast": contrast,
        "glare": has_glare,
        "module_px": round(float(module), 2),
        "tilt": round(skew, 3),
    }
    return frame, params


def generate(
    out_dir: Path, count: int, seed: int, *, no_code_share: float = 0.15, ext: str = "jpg"
) -> list[Sample]:
    """Write ``count`` frames and manifest.json to out_dir; one seed, the same files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    samples: list[Sample] = []
    n_empty = round(count * no_code_share)
    kinds = ["ean13", "code128", "qrcode"]
    for i in range(count):
        if i < 3 and count >= 10:  # the shared demo codes come first
            symbology, text = ("code128", DEMO_LOYALTY) if i == 0 else ("ean13", DEMO_EANS[i - 1])
        elif i >= count - n_empty:
            symbology, text = "", ""
        else:
            symbology = kinds[i % 3]
            if symbology == "ean13":
                text = random_loyalty(rng) if rng.random() < 0.5 else random_ean(rng)
            else:
                text = random_loyalty(rng)
        frame, faults = make_frame(rng, nrng, symbology, text)
        name = f"frame_{i:03d}.{ext}"
        params = [cv2.IMWRITE_JPEG_QUALITY, 85] if ext == "jpg" else []
        cv2.imwrite(str(out_dir / name), frame, params)
        samples.append(Sample(name, symbology, text, **faults))  # type: ignore[arg-type]
    manifest = {
        "seed": seed,
        "width": FRAME_W,
        "height": FRAME_H,
        "samples": [asdict(s) for s in samples],
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return samples


def load_manifest(folder: Path) -> list[Sample]:
    """The samples listed in a corpus folder's manifest.json."""
    data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return [Sample(**s) for s in data["samples"]]


def main() -> None:
    """Rebuild the committed corpus (or write one elsewhere)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "corpus")
    parser.add_argument("--count", type=int, default=COMMITTED_COUNT)
    parser.add_argument("--seed", type=int, default=COMMITTED_SEED)
    args = parser.parse_args()
    for old in args.out.glob("frame_*"):
        old.unlink()
    samples = generate(args.out, args.count, args.seed)
    print(f"{len(samples)} frames in {args.out}")


if __name__ == "__main__":
    main()
