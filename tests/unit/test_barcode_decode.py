"""Frame decoding: each symbology, rotations, configured symbologies only, no false reads."""

from __future__ import annotations

import math
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.barcodes.decode import (
    FrameDecoder,
    check_symbologies,
    deblur,
    locate,
    rectify,
    to_gray,
)
from tests.conftest import DATA_DIR
from tests.support.scripts import load_script

CORPUS = DATA_DIR / "barcodes" / "corpus"
ALL = ["ean13", "ean8", "upca", "code128", "qrcode"]


GEN = load_script("barcodes/generate.py")


def _scene(symbology: str, text: str, angle: float, seed: int = 1) -> np.ndarray:
    """A clean card at a given angle on a plain background (no random distortions)."""
    code = GEN.render_code(symbology, text, module_px=4)
    item = GEN.card(code, __import__("random").Random(seed), symbology)
    scene = np.full((480, 640, 3), 120, np.uint8)
    ih, iw = item.shape[:2]
    s = min(2.6 / 4, 560 / iw, 400 / ih)
    m = cv2.getRotationMatrix2D((iw / 2, ih / 2), angle, s)
    m[0, 2] += 320 - iw / 2
    m[1, 2] += 240 - ih / 2
    warped = cv2.warpAffine(item, m, (640, 480), flags=cv2.INTER_AREA)
    mask = cv2.warpAffine(np.full((ih, iw), 255, np.uint8), m, (640, 480))
    scene[mask > 127] = warped[mask > 127]
    return scene


@pytest.fixture(scope="module")
def decoder() -> FrameDecoder:
    return FrameDecoder(ALL)


@pytest.mark.parametrize(
    ("symbology", "text"),
    [
        ("ean13", "3760000000017"),
        ("ean13", "2900001234566"),
        ("code128", "2900001234566"),
        ("qrcode", "2900001234566"),
        ("ean8", "73513537"),
    ],
)
@pytest.mark.parametrize("angle", [0.0, 17.0, -30.0, 180.0])
def test_reads_each_symbology_at_each_angle(
    decoder: FrameDecoder, symbology: str, text: str, angle: float
) -> None:
    """A clean code of every configured symbology is read upright, tilted and upside down."""
    readings = decoder.decode(_scene(symbology, text, angle))
    assert [(r.symbology, r.text) for r in readings] == [(symbology, text)]


def test_restricted_symbologies_are_not_reported() -> None:
    """A decoder for QR codes only does not report an EAN-13 in view."""
    qr_only = FrameDecoder(["qrcode"])
    assert qr_only.decode(_scene("ean13", "3760000000017", 10.0)) == []
    assert [r.text for r in qr_only.decode(_scene("qrcode", "hello", 10.0))] == ["hello"]


def test_zbar_only_still_reads_upright_codes() -> None:
    """Without the second engine, zbar alone reads the common case."""
    zbar_only = FrameDecoder(ALL, use_zxing=False)
    for sym, text in [("ean13", "3760000000024"), ("code128", "2900001234566")]:
        assert [r.engine for r in zbar_only.decode(_scene(sym, text, 12.0))] == ["zbar"]


def test_unknown_symbology_is_named() -> None:
    """A misspelt symbology is rejected with the list of choices."""
    with pytest.raises(ValueError, match=r"ean14.*choose from"):
        check_symbologies(["ean13", "ean14"])


def test_locate_finds_the_code_and_its_direction() -> None:
    """The locator's angle turns the bars upright: the rectified crop's gradient is horizontal."""
    for angle in (-25.0, 0.0, 20.0):
        gray = to_gray(_scene("ean13", "3760000000017", angle))
        cands = locate(gray)
        assert cands
        assert cands[0].linear
        crop = rectify(gray, cands[0]).astype(np.float32)
        gx = np.abs(cv2.Sobel(crop, cv2.CV_32F, 1, 0)).sum()
        gy = np.abs(cv2.Sobel(crop, cv2.CV_32F, 0, 1)).sum()
        assert gx > 2.5 * gy, (angle, math.degrees(cands[0].angle))


def test_roi_limits_the_search(decoder: FrameDecoder) -> None:
    """A region of interest that excludes the code finds nothing; one around it finds it."""
    frame = _scene("ean13", "3760000000017", 0.0)
    assert FrameDecoder(ALL, roi=(0.0, 0.0, 0.2, 0.2)).decode(frame) == []
    assert FrameDecoder(ALL, roi=(0.05, 0.05, 0.9, 0.9)).decode(frame)
    with pytest.raises(ValueError, match="roi"):
        FrameDecoder(ALL, roi=(0, 0, 0, 1))


def test_blank_odd_and_noise_frames_give_nothing(decoder: FrameDecoder) -> None:
    """Empty, tiny, grayscale, BGRA and pure-noise frames never raise and read nothing."""
    rng = np.random.default_rng(3)
    frames = [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((3, 3), np.uint8),
        np.full((480, 640), 255, np.uint8),
        np.full((480, 640, 4), 10, np.uint8),
        rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
    ]
    for frame in frames:
        assert decoder.decode(frame) == []


def test_committed_corpus_images(decoder: FrameDecoder) -> None:
    """Every committed corpus frame is read correctly; no-code frames read nothing."""
    samples = GEN.load_manifest(CORPUS)
    assert len(samples) >= 30
    misses = []
    for s in samples:
        frame = cv2.imread(str(CORPUS / s.file))
        assert frame is not None, s.file
        texts = [r.text for r in decoder.decode(frame)]
        assert set(texts) <= {s.text}, f"{s.file}: misread {texts}"  # never a wrong code
        if s.text and s.text not in texts:
            misses.append(s.file)
    # 34 frames with a code: allow one miss (recall >= 0.97) so a tuning change shows up here.
    assert len(misses) <= 1, misses


@pytest.mark.parametrize("seed", [50, 262])
def test_small_blurred_qr_code_under_glare(decoder: FrameDecoder, seed: int) -> None:
    """A QR loyalty card about 2 px a module, defocused, under glare and tilted, is read."""
    frame, faults = GEN.make_frame(
        random.Random(seed), np.random.default_rng(seed), "qrcode", "2900001234566"
    )
    assert faults["module_px"] < 2.2
    assert faults["blur"] >= 1.0
    assert faults["glare"]
    assert [r.text for r in decoder.decode(frame)] == ["2900001234566"]


@pytest.mark.parametrize("seed", [59, 321, 371, 425])
def test_qr_code_at_two_px_a_module_under_the_strongest_defocus(
    decoder: FrameDecoder, seed: int
) -> None:
    """A QR card about 2 px a module under the corpus's strongest blur is read (enlarged,
    unsharp-masked or deconvolved; the decoder before these views missed all four)."""
    frame, faults = GEN.make_frame(
        random.Random(seed), np.random.default_rng(seed), "qrcode", "2900001234566"
    )
    assert faults["module_px"] < 2.3
    assert faults["blur"] >= 1.3
    assert [r.text for r in decoder.decode(frame)] == ["2900001234566"]


@pytest.mark.parametrize("seed", [26, 217])
def test_ean13_at_two_px_a_module_under_the_strongest_defocus(
    decoder: FrameDecoder, seed: int
) -> None:
    """An EAN-13 card about 2 px a bar under the corpus's strongest blur is read and confirmed
    (enlarged and deconvolved views vote; the decoder before them left it unconfirmed)."""
    frame, faults = GEN.make_frame(
        random.Random(seed), np.random.default_rng(seed), "ean13", "2900001234566"
    )
    assert faults["module_px"] < 2.3
    assert faults["blur"] >= 1.3
    assert [(r.symbology, r.text) for r in decoder.decode(frame)] == [("ean13", "2900001234566")]


@pytest.mark.parametrize("seed", [638, 813])
def test_located_but_unread_qr_code_gets_the_deep_deblurring(seed: int) -> None:
    """A QR symbol zxing-cpp locates but cannot decode is read by the costly deblurring views."""
    frame, faults = GEN.make_frame(
        random.Random(seed), np.random.default_rng(seed), "qrcode", "2900001234566"
    )
    assert faults["blur"] >= 1.3
    fresh = FrameDecoder(ALL)
    assert [r.text for r in fresh.decode(frame)] == ["2900001234566"]
    assert fresh.stats == {"located": 1, "deblur": 1}


def test_frames_without_a_code_never_pay_for_deep_deblurring() -> None:
    """The costly views run only where zxing-cpp located a symbol, never on clutter."""
    fresh = FrameDecoder(ALL)
    blank = [s for s in GEN.load_manifest(CORPUS) if not s.text]
    assert blank
    for s in blank:
        frame = cv2.imread(str(CORPUS / s.file))
        assert frame is not None, s.file
        assert fresh.decode(frame) == []
    assert "located" not in fresh.stats
    assert fresh.stats.get("none") == len(blank)


def test_deblur_restores_the_contrast_of_two_px_bars() -> None:
    """Deconvolution brings blurred 2 px bars closer to the sharp ones than the blur left them."""
    sharp = np.tile(np.repeat(np.array([40, 210], np.uint8), 2), (64, 16))
    blurred = cv2.GaussianBlur(sharp, (0, 0), 1.0)
    restored = deblur(blurred, 1.0, 10)
    assert restored.shape == sharp.shape
    assert restored.dtype == np.uint8
    error_before = np.abs(blurred.astype(int) - sharp)[8:-8, 8:-8].mean()
    error_after = np.abs(restored.astype(int) - sharp)[8:-8, 8:-8].mean()
    assert error_after < error_before / 2


def test_config_accepts_exactly_the_symbologies_the_decoder_reads() -> None:
    """barcodes.symbologies (validated without importing OpenCV) and the decoder agree."""
    from edge.barcodes.decode import SYMBOLOGIES
    from edge.config import ConfigError, parse_config

    config = parse_config({"barcodes": {"symbologies": sorted(SYMBOLOGIES)}})
    assert set(config.barcodes.symbologies) == SYMBOLOGIES
    with pytest.raises(ConfigError, match="unknown symbology itf"):
        parse_config({"barcodes": {"symbologies": ["ean13", "itf"]}})
    check_symbologies(config.barcodes.symbologies)


def test_committed_corpus_has_every_fault_the_issue_names() -> None:
    """Rotation to 30 degrees, real perspective, blur, low contrast, glare, far and close codes.

    Each fault shows at its harshest on several frames, so the recall measured on the corpus
    says something about it (the first corpus had an affine shear called perspective, no
    glare on the card and no close-up codes).
    """
    coded = [s for s in GEN.load_manifest(CORPUS) if s.text]
    assert {s.symbology for s in coded} == {"ean13", "code128", "qrcode"}
    assert sum(abs(s.angle) >= 20 for s in coded) >= 5
    assert sum(s.tilt >= 0.25 for s in coded) >= 5  # one side >= 1.25 times the opposite one
    assert sum(s.blur >= 1.0 for s in coded) >= 5
    assert sum(s.contrast <= 0.35 for s in coded) >= 5
    assert sum(s.glare for s in coded) >= 5
    assert sum(s.module_px < 2.5 for s in coded) >= 5
    assert sum(s.module_px >= 4.0 for s in coded) >= 3
    assert min(s.module_px for s in coded) >= 2.0  # the documented floor, at the narrow side


def test_perspective_is_a_keystone_not_a_shear() -> None:
    """A placed card's opposite sides differ in length, as a card turned toward the lens."""
    rng = random.Random(3)
    card = np.full((200, 400, 3), 255, np.uint8)
    tilts = []
    for _ in range(20):
        _, corners, _ = GEN.place(np.zeros((480, 640, 3), np.uint8), card, rng, 0.0, 4)
        tilts.append(GEN.tilt(corners))
    assert max(tilts) > 0.2


def test_corpus_generator_is_deterministic(tmp_path: Path) -> None:
    """The same seed writes the same frames (the committed corpus can be rebuilt)."""
    a = GEN.generate(tmp_path / "a", 4, 11)
    b = GEN.generate(tmp_path / "b", 4, 11)
    assert a == b
    for s in a:
        assert (tmp_path / "a" / s.file).read_bytes() == (tmp_path / "b" / s.file).read_bytes()


@pytest.mark.parametrize(("fmt", "name"), [("DataMatrix", "datamatrix"), ("PDF417", "pdf417")])
def test_pdf417_and_data_matrix_cards_through_zxing(fmt: str, name: str) -> None:
    """Loyalty cards in PDF417 or Data Matrix (zbar cannot) are read when configured."""
    zxingcpp = pytest.importorskip("zxingcpp")
    symbol = zxingcpp.create_barcode("2900001234566", getattr(zxingcpp.BarcodeFormat, fmt))
    img = np.asarray(symbol.to_image(scale=4), dtype=np.uint8)
    h, w = img.shape[:2]
    card = np.full((h + 40, w + 40), 255, np.uint8)
    card[20 : 20 + h, 20 : 20 + w] = img
    m = cv2.getRotationMatrix2D((card.shape[1] / 2, card.shape[0] / 2), 15, 1.0)
    m[0, 2] += 320 - card.shape[1] / 2
    m[1, 2] += 240 - card.shape[0] / 2
    frame = cv2.warpAffine(card, m, (640, 480), borderValue=150)
    readings = FrameDecoder([*ALL, name]).decode(frame)
    assert [(r.symbology, r.text) for r in readings] == [(name, "2900001234566")]
    assert FrameDecoder(ALL).decode(frame) == []  # not configured: not reported


@pytest.mark.parametrize("symbology", ["ean13", "code128", "qrcode"])
def test_light_on_dark_codes(decoder: FrameDecoder, symbology: str) -> None:
    """A phone wallet in dark mode shows light bars on black: still read, and only once."""
    frame = cv2.bitwise_not(_scene(symbology, "2900001234566", 12.0))
    assert [r.text for r in decoder.decode(frame)] == ["2900001234566"]


def test_frame_of_unknown_layout_is_a_clear_error(decoder: FrameDecoder) -> None:
    """A two-channel frame is refused with its shape named (the camera counts and skips it)."""
    with pytest.raises(ValueError, match=r"grayscale, BGR or BGRA.*\(4, 4, 2\)"):
        decoder.decode(np.zeros((4, 4, 2), np.uint8))
