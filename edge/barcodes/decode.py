"""Decoding barcodes in one camera frame: locate, rectify, read; no I/O, no clocks.

Reading the whole 640x480 frame with zbar costs 8-13 ms and misses codes that are tilted,
blurred or low in contrast. Instead the frame is searched at half resolution for patches
dense in edges (a 1D code's bars, a QR code's modules); each patch is turned upright by its
dominant gradient direction and cropped, and zbar reads just that crop along its rows
(about 1 ms). An EAN/UPC read counts only when a second view of the crop agrees (their
mod-10 check digit alone lets blurred misreads through). Crops that fail are retried with
an equalised and sharpened image (another binarisation) and with zxing-cpp, a second engine
that reads blurred QR codes zbar misses; codes about 2 px a module under a strong defocus
also get the crop enlarged 3x (bicubic) and unsharp-masked, or deconvolved. Where zxing-cpp
locates a 2D symbol but cannot decode it (and only there: frames without a code never pay
for it) longer deconvolutions for a range of defocus follow, 5-60 ms. As a last resort zbar
scans the whole frame.
Decoders are not thread-safe: use one FrameDecoder per thread.
"""

from __future__ import annotations

import ctypes
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

_LOGGER = logging.getLogger(__name__)

# Frames are uint8 arrays (H x W grayscale or H x W x 3 BGR); OpenCV's stubs type them loosely.
Frame = npt.NDArray[Any]

# Our symbology names (config and events) -> zbar symbol ids (zbar.h). zbar has no Data Matrix
# and its PDF417 support is incomplete: those are read by zxing-cpp only.
ZBAR_SYMBOLS: Final[dict[str, int]] = {
    "ean8": 8,
    "upce": 9,
    "upca": 12,
    "ean13": 13,
    "code128": 128,
    "qrcode": 64,
}
ZBAR_NAMES: Final[dict[int, str]] = {v: k for k, v in ZBAR_SYMBOLS.items()}
# Our names -> zxing-cpp BarcodeFormat member names.
ZXING_FORMATS: Final[dict[str, str]] = {
    "ean8": "EAN8",
    "upce": "UPCE",
    "upca": "UPCA",
    "ean13": "EAN13",
    "code128": "Code128",
    "qrcode": "QRCode",
    "pdf417": "PDF417",
    "datamatrix": "DataMatrix",
}
ZXING_NAMES: Final[dict[str, str]] = {v: k for k, v in ZXING_FORMATS.items()} | {
    "MicroQRCode": "qrcode",
    "QRCodeModel1": "qrcode",
    "QRCodeModel2": "qrcode",
}
SYMBOLOGIES: Final = frozenset(ZXING_FORMATS)
LINEAR: Final = frozenset({"ean8", "upce", "upca", "ean13", "code128"})

# zbar configuration keys (zbar.h, zbar_config_t).
_ZBAR_CFG_ENABLE: Final = 0
_ZBAR_CFG_X_DENSITY: Final = 0x100  # spacing of vertical scan lines (0: none)
_ZBAR_CFG_Y_DENSITY: Final = 0x101  # spacing of horizontal scan lines (0: none)
_ZBAR_Y800: Final = 0x30303859  # fourcc "Y800": 8-bit grayscale

# Candidate search runs at half resolution: 4x fewer pixels, and 2-3 px modules still show
# as dense edges after a 2x area downscale.
LOCATE_SCALE: Final = 2
# Box size (half-resolution pixels) over which edge density and orientation are averaged:
# a few modules wide, so a code's bars merge into one patch but a lone edge stays thin.
DENSITY_BOX: Final = 9
# Edge density below this (sum of |dx|+|dy| Sobel responses, averaged) is flat background
# even in a low-contrast frame; above it, a patch must also reach 45 % of the frame's top 1 %.
MIN_DENSITY: Final = 40.0
DENSITY_SHARE: Final = 0.45
# Patches smaller than this (half-resolution pixels) cannot hold a readable code.
MIN_PATCH_AREA: Final = 400.0
# Orientation coherence above this: parallel bars (a 1D code); below: a 2D code or clutter.
LINEAR_COHERENCE: Final = 0.3
# Crops are the patch's longest side times this, plus a fixed border: room for quiet zones.
CROP_MARGIN: Final = 1.25
CROP_BORDER_PX: Final = 16
# A crop longer than this is downscaled: a big, close code reads as well and faster smaller.
MAX_CROP_PX: Final = 480
DEFAULT_MAX_CANDIDATES: Final = 4
# Symbologies protected only by a mod-10 check digit: their zbar reads are confirmed.
WEAK_CHECK: Final = frozenset({"ean13", "ean8", "upca", "upce"})
# The confirming read samples the crop at this scale (a different phase of every bar).
CONFIRM_SCALE: Final = 0.8
# Contrast-limited equalisation over 4x4 tiles of a crop: lifts a washed-out or glared code
# without amplifying sensor noise into false bars (clip limit 2, OpenCV's usual).
CLAHE_CLIP: Final = 2.0
CLAHE_TILES: Final = 4
# A 1D code zbar decoded on fewer scan lines than this is ignored: EAN-13's check digit lets
# about one random misread in ten through, and on the benchmark corpus every zbar misread
# came from one or two lines, while real codes crossed by the locator's crop agree on many.
MIN_LINEAR_QUALITY: Final = 3
# Small, blurred 2D codes (about 2 px a module under the corpus's strongest defocus) are
# retried enlarged 3x (bicubic) so zxing-cpp's binariser gets several pixels a module, and
# deblurred by a Gaussian of 1 px (native scale), the defocus at which they stop reading.
SUPERSAMPLE: Final = 3.0
DEFOCUS_SIGMA: Final = 1.0
DEBLUR_ITERATIONS: Final = 10
# Where zxing-cpp located a 2D symbol but could not decode it, deconvolution is iterated
# longer, also for a stronger defocus (1.3 px, the corpus's strongest), and on the crop
# enlarged 3x: best of all views on the hardest codes but 5-60 ms, so only then.
DEEP_DEBLUR_ITERATIONS: Final = 20
STRONG_DEFOCUS_SIGMA: Final = 1.3
# 1D crops that fail are also voted on enlarged 2x (bars along one axis need less).
LINEAR_SUPERSAMPLE: Final = 2.0


@dataclass(frozen=True)
class Reading:
    """One decoded code: its symbology (our name), its text and the engine that read it."""

    symbology: str
    text: str
    engine: str  # "zbar" or "zxing"
    quality: int = 0  # zbar: how many scan lines agreed on this text


@dataclass(frozen=True)
class Candidate:
    """A patch of the frame that looks like a code, in full-resolution coordinates."""

    cx: float
    cy: float
    size: float  # longest side of the patch's rotated bounding box
    angle: float  # radians: the dominant gradient direction (across a 1D code's bars)
    coherence: float  # 0 (no dominant direction) .. 1 (perfectly parallel edges)
    area: float

    @property
    def linear(self) -> bool:
        """True when the patch's edges are parallel, as a 1D code's bars are."""
        return self.coherence > LINEAR_COHERENCE


def check_symbologies(names: Iterable[str]) -> list[str]:
    """Validate symbology names, raising ValueError naming the unknown ones and the choices."""
    names = list(names)
    unknown = [n for n in names if n not in SYMBOLOGIES]
    if unknown:
        raise ValueError(
            f"unknown symbology {', '.join(unknown)}; choose from {', '.join(sorted(SYMBOLOGIES))}"
        )
    return names


class ZbarScanner:
    """A persistent zbar image scanner for a fixed set of symbologies and scan densities."""

    def __init__(
        self,
        symbologies: Iterable[str],
        x_density: int = 1,
        y_density: int = 1,
        min_linear_quality: int = MIN_LINEAR_QUALITY,
    ) -> None:
        from pyzbar import wrapper as zw

        self.min_linear_quality = min_linear_quality
        self._zw = zw
        self._get_type = zw.zbar_function(
            "zbar_symbol_get_type", ctypes.c_int, ctypes.POINTER(zw.zbar_symbol)
        )
        self._scanner = zw.zbar_image_scanner_create()
        zw.zbar_image_scanner_set_config(self._scanner, 0, _ZBAR_CFG_ENABLE, 0)
        self.symbologies = [s for s in symbologies if s in ZBAR_SYMBOLS]
        for name in self.symbologies:
            zw.zbar_image_scanner_set_config(self._scanner, ZBAR_SYMBOLS[name], _ZBAR_CFG_ENABLE, 1)
        zw.zbar_image_scanner_set_config(self._scanner, 0, _ZBAR_CFG_X_DENSITY, x_density)
        zw.zbar_image_scanner_set_config(self._scanner, 0, _ZBAR_CFG_Y_DENSITY, y_density)

    def scan(self, gray: Frame) -> list[Reading]:
        """Every code zbar finds in a grayscale image."""
        if not self.symbologies:
            return []
        zw = self._zw
        data = np.ascontiguousarray(gray, dtype=np.uint8).tobytes()
        height, width = gray.shape[:2]
        image = zw.zbar_image_create()
        try:
            zw.zbar_image_set_format(image, _ZBAR_Y800)
            zw.zbar_image_set_size(image, width, height)
            zw.zbar_image_set_data(
                image, ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p), len(data), None
            )
            if zw.zbar_scan_image(self._scanner, image) <= 0:
                return []
            out: list[Reading] = []
            symbol = zw.zbar_image_first_symbol(image)
            while symbol:
                raw = ctypes.string_at(
                    zw.zbar_symbol_get_data(symbol), zw.zbar_symbol_get_data_length(symbol)
                )
                name = ZBAR_NAMES.get(int(self._get_type(symbol)), "unknown")
                quality = int(zw.zbar_symbol_get_quality(symbol))
                if name not in LINEAR or quality >= self.min_linear_quality:
                    text = raw.decode("utf-8", errors="replace")
                    out.append(Reading(name, text, "zbar", quality))
                symbol = zw.zbar_symbol_next(symbol)
            return out
        finally:
            zw.zbar_image_destroy(image)

    def close(self) -> None:
        """Release the zbar scanner."""
        if self._scanner is not None:
            self._zw.zbar_image_scanner_destroy(self._scanner)
            self._scanner = None

    def __del__(self) -> None:
        self.close()


class ZxingReader:
    """zxing-cpp restricted to the configured formats (optional: None when not installed)."""

    def __init__(self, symbologies: Iterable[str]) -> None:
        import zxingcpp

        self._zx = zxingcpp
        names = [ZXING_FORMATS[s] for s in symbologies]
        self._formats = zxingcpp.barcode_formats_from_str(",".join(names)) if names else None

    def read(self, gray: Frame) -> list[Reading]:
        """Every code zxing-cpp finds (upright only: crops are already rectified)."""
        return self.read_or_detect(gray)[0]

    def read_or_detect(self, gray: Frame) -> tuple[list[Reading], bool]:
        """The codes zxing-cpp reads, and whether it located a symbol it could not decode.

        A located but undecodable symbol (a QR code's finder patterns found, its checksum
        failing) is worth the costly deblurring views; clutter never gets that far.
        """
        if not self._formats:
            return [], False
        results = self._zx.read_barcodes(
            gray,
            formats=self._formats,
            try_rotate=False,
            try_downscale=False,
            text_mode=self._zx.TextMode.Plain,
            return_errors=True,
        )
        found = [
            Reading(ZXING_NAMES.get(r.format.name, r.format.name.lower()), r.text, "zxing")
            for r in results
            if r.valid
        ]
        return found, any(not r.valid for r in results)


def to_gray(frame: Frame) -> Frame:
    """A grayscale view of a BGR or grayscale frame."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    raise ValueError(f"a frame must be grayscale, BGR or BGRA, not of shape {frame.shape}")


def crop_roi(gray: Frame, roi: Sequence[float]) -> tuple[Frame, int, int]:
    """The region of interest (x, y, w, h as fractions of the frame) and its offset."""
    height, width = gray.shape[:2]
    x, y, w, h = roi
    x0, y0 = round(x * width), round(y * height)
    x1, y1 = min(width, round((x + w) * width)), min(height, round((y + h) * height))
    return gray[y0:y1, x0:x1], x0, y0


def locate(gray: Frame, max_candidates: int = DEFAULT_MAX_CANDIDATES) -> list[Candidate]:
    """Patches dense in edges, largest first, with their dominant edge direction."""
    height, width = gray.shape[:2]
    f = LOCATE_SCALE
    if width < 4 * f or height < 4 * f:
        return []
    small = cv2.resize(gray, (width // f, height // f), interpolation=cv2.INTER_AREA)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    box = (DENSITY_BOX, DENSITY_BOX)
    jxx = cv2.boxFilter(gx * gx, -1, box)
    jyy = cv2.boxFilter(gy * gy, -1, box)
    jxy = cv2.boxFilter(gx * gy, -1, box)
    density = cv2.boxFilter(np.abs(gx) + np.abs(gy), -1, box)
    top = float(np.percentile(density[::2, ::2], 99))
    threshold = max(MIN_DENSITY, top * DENSITY_SHARE)
    mask: Frame = (density > threshold).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, box))
    # Opening with a box wider than a line removes lone edges (shelf edges, cables, text).
    opening = cv2.getStructuringElement(cv2.MORPH_RECT, (DENSITY_BOX + 2, DENSITY_BOX + 2))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, opening)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    order = sorted(range(1, count), key=lambda i: -int(stats[i, cv2.CC_STAT_AREA]))
    found: list[Candidate] = []
    for label in order[:max_candidates]:
        area = float(stats[label, cv2.CC_STAT_AREA])
        if area < MIN_PATCH_AREA:
            break
        x, y, w, h = (int(v) for v in stats[label, :4])
        sub = labels[y : y + h, x : x + w] == label
        sxx = float(jxx[y : y + h, x : x + w][sub].sum())
        syy = float(jyy[y : y + h, x : x + w][sub].sum())
        sxy = float(jxy[y : y + h, x : x + w][sub].sum())
        angle = 0.5 * math.atan2(2 * sxy, sxx - syy)
        coherence = math.hypot(sxx - syy, 2 * sxy) / (sxx + syy + 1e-6)
        ys, xs = np.nonzero(sub)
        points = np.column_stack((xs + x, ys + y)).astype(np.float32)
        (cx, cy), (rw, rh), _ = cv2.minAreaRect(points)
        found.append(
            Candidate(cx * f + f / 2, cy * f + f / 2, max(rw, rh) * f, angle, coherence, area)
        )
    return found


def rectify(gray: Frame, candidate: Candidate, supersample: float = 1.0) -> Frame:
    """The candidate's square neighbourhood rotated so a 1D code's bars stand vertical.

    With ``supersample`` > 1 the crop is enlarged in the same warp (bicubic, one resampling
    instead of two), for small codes whose modules are only about 2 px wide.
    """
    side = candidate.size * CROP_MARGIN + CROP_BORDER_PX
    scale = min(supersample, MAX_CROP_PX / side)
    out = round(side * scale)
    m = cv2.getRotationMatrix2D((candidate.cx, candidate.cy), math.degrees(candidate.angle), scale)
    m[0, 2] += out / 2 - candidate.cx
    m[1, 2] += out / 2 - candidate.cy
    interpolation = cv2.INTER_LINEAR if supersample == 1.0 else cv2.INTER_CUBIC
    return cv2.warpAffine(gray, m, (out, out), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)


def square_crop(gray: Frame, candidate: Candidate) -> Frame:
    """The candidate's upright square neighbourhood, sliced without resampling.

    A 2D code needs no turning (zxing-cpp reads it at any angle), and skipping the
    interpolation keeps a 2 px module's edges as sharp as the camera left them.
    """
    height, width = gray.shape[:2]
    half = (candidate.size * CROP_MARGIN + CROP_BORDER_PX) / 2
    x0, y0 = max(0, round(candidate.cx - half)), max(0, round(candidate.cy - half))
    x1, y1 = min(width, round(candidate.cx + half)), min(height, round(candidate.cy + half))
    return gray[y0:y1, x0:x1]


def sharpen(gray: Frame, sigma: float = 1.5) -> Frame:
    """Unsharp mask: restores the edges of a slightly defocused code (the second binarisation)."""
    blurred = cv2.GaussianBlur(gray, (0, 0), sigma)
    return cv2.addWeighted(gray, 2.0, blurred, -1.0, 0)


def unsharp(gray: Frame, sigma: float, amount: float) -> Frame:
    """Unsharp mask of a given radius and strength (sized to an enlarged crop's blur)."""
    blurred = cv2.GaussianBlur(gray, (0, 0), sigma)
    return cv2.addWeighted(gray, 1.0 + amount, blurred, -amount, 0)


def deblur(gray: Frame, sigma: float, iterations: int) -> Frame:
    """Richardson-Lucy deconvolution by a Gaussian of ``sigma`` px: undoes a camera's defocus.

    Unlike an unsharp mask it restores contrast between modules narrower than the blur
    (a 2 px QR module under a 1 px defocus) without ringing into false modules.
    """
    observed = gray.astype(np.float32) + 1.0
    estimate = observed.copy()
    for _ in range(iterations):
        blurred = cv2.GaussianBlur(estimate, (0, 0), sigma) + 1e-3
        estimate *= cv2.GaussianBlur(observed / blurred, (0, 0), sigma)
    restored: Frame = np.clip(estimate, 0, 255).astype(np.uint8)
    return restored


def enhance(gray: Frame, clahe: Any = None) -> Frame:
    """Local contrast equalisation (CLAHE) then an unsharp mask, for a crop that failed."""
    if clahe is None:
        clahe = new_clahe()
    return sharpen(clahe.apply(gray))


def new_clahe() -> Any:
    """A CLAHE operator (one per thread: OpenCV's keeps working buffers)."""
    return cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(CLAHE_TILES, CLAHE_TILES))


def _rescale(gray: Frame, factor: float, interpolation: int = cv2.INTER_AREA) -> Frame:
    return cv2.resize(gray, None, fx=factor, fy=factor, interpolation=interpolation)


def _distinct(readings: Iterable[Reading]) -> list[Reading]:
    seen: set[tuple[str, str]] = set()
    out: list[Reading] = []
    for r in readings:
        if (r.symbology, r.text) not in seen:
            seen.add((r.symbology, r.text))
            out.append(r)
    return out


class FrameDecoder:
    """Finds every configured code in a frame, fast on the common case, thorough on misses."""

    def __init__(
        self,
        symbologies: Sequence[str],
        *,
        roi: Sequence[float] = (0.0, 0.0, 1.0, 1.0),
        use_zxing: bool = True,
        max_candidates: int = DEFAULT_MAX_CANDIDATES,
    ) -> None:
        self.symbologies = check_symbologies(symbologies)
        if len(roi) != 4 or roi[2] <= 0 or roi[3] <= 0:
            raise ValueError("roi must be four fractions: x, y, width, height (width/height > 0)")
        self.roi = tuple(roi)
        self.max_candidates = max_candidates
        linear = [s for s in self.symbologies if s in LINEAR]
        matrix = [s for s in self.symbologies if s not in LINEAR]
        # Rectified crops hold upright bars: horizontal scan lines every 2nd row suffice.
        self._zbar_linear = ZbarScanner(linear, x_density=0, y_density=2)
        self._zbar_matrix = ZbarScanner(matrix, x_density=1, y_density=1)
        self._zbar_full = ZbarScanner(self.symbologies, x_density=2, y_density=2)
        self._zxing: ZxingReader | None = None
        if use_zxing:
            try:
                self._zxing = ZxingReader(self.symbologies)
            except ImportError:
                _LOGGER.info("zxing-cpp is not installed; decoding with zbar only")
        self._clahe = new_clahe()
        self.stats: dict[str, int] = {}

    def _count(self, stage: str) -> None:
        self.stats[stage] = self.stats.get(stage, 0) + 1

    def _vote(
        self,
        crop: Frame,
        first: list[Reading] | None,
        *,
        inverted: bool = False,
        source: tuple[Frame, Candidate] | None = None,
    ) -> list[Reading]:
        """Read a linear crop several ways until one text wins two votes and leads alone.

        A blurred EAN can be misread the same way on every row of an upright crop (zbar then
        reports it with a high quality), and its mod-10 check digit lets one such misread in
        ten through. Views that sample the bars differently (equalised and sharpened, the
        other engine, another scale) rarely repeat a misread, so a text two views agree on
        and no other view contradicts is taken. Code 128's stronger check needs no vote.
        """
        enhanced: list[Frame] = []

        def enhanced_crop() -> Frame:
            if not enhanced:
                enhanced.append(enhance(crop, self._clahe))
            return enhanced[0]

        views: list[Callable[[], list[Reading]]] = [
            lambda: first if first is not None else self._zbar_linear.scan(crop),
            lambda: self._zbar_linear.scan(enhanced_crop()),
        ]
        if self._zxing is not None:
            zx = self._zxing
            views += [lambda: zx.read(crop), lambda: zx.read(enhanced_crop())]
        views.append(lambda: self._zbar_linear.scan(_rescale(crop, CONFIRM_SCALE)))
        if source is not None and self._zxing is not None:
            # Bars about 2 px wide under a strong defocus: the crop enlarged in the warp and
            # unsharp-masked (both engines), and deconvolved (zxing-cpp only: zbar misread
            # deconvolved bars' ringing on the benchmark corpus).
            gray, cand = source
            zxd = self._zxing
            big: list[Frame] = []

            def enlarged() -> Frame:
                if not big:
                    big.append(
                        unsharp(
                            rectify(gray, cand, LINEAR_SUPERSAMPLE),
                            DEFOCUS_SIGMA * LINEAR_SUPERSAMPLE,
                            1.5,
                        )
                    )
                return big[0]

            views += [
                lambda: self._zbar_linear.scan(enlarged()),
                lambda: zxd.read(enlarged()),
                lambda: zxd.read(deblur(crop, DEFOCUS_SIGMA, DEBLUR_ITERATIONS)),
            ]
        if inverted:  # light bars on a dark screen (a phone in dark mode)
            views.append(lambda: self._zbar_linear.scan(cv2.bitwise_not(crop)))
            if self._zxing is not None:
                zxi = self._zxing
                views.append(lambda: zxi.read(cv2.bitwise_not(crop)))
        votes: dict[str, int] = {}
        readings: dict[str, Reading] = {}
        for view in views:
            found = view()
            strong = [r for r in found if r.symbology not in WEAK_CHECK]
            if strong:
                return _distinct(strong)
            for r in _distinct(found):
                votes[r.text] = votes.get(r.text, 0) + 1
                readings.setdefault(r.text, r)
            if votes:
                best = max(votes, key=lambda t: votes[t])
                if votes[best] >= 2 and all(v < votes[best] for t, v in votes.items() if t != best):
                    return [readings[best]]
        if votes:
            self._count("unconfirmed")
        return []

    def _read_matrix(self, gray: Frame, cand: Candidate, crop: Frame) -> tuple[list[Reading], bool]:
        """zxing-cpp on views of a 2D patch, cheapest first, until one reads.

        Also says whether any view located a symbol it could not decode.
        """
        assert self._zxing is not None
        zx = self._zxing
        views: list[Callable[[], Frame]] = [
            lambda: crop,
            lambda: enhance(crop, self._clahe),
            lambda: sharpen(_rescale(crop, 1.5, cv2.INTER_CUBIC), 2.0),
            # A small, blurred QR code (about 2 px a module): enlarged, then equalised
            # and sharpened, its finder patterns separate again.
            lambda: enhance(_rescale(crop, 2.0, cv2.INTER_CUBIC), self._clahe),
            # Enlarged 3x in the rectifying warp and unsharp-masked at the enlarged blur.
            lambda: unsharp(rectify(gray, cand, SUPERSAMPLE), DEFOCUS_SIGMA * SUPERSAMPLE, 1.5),
            # Deconvolved at native scale (no interpolation blur), then enlarged.
            lambda: _rescale(
                deblur(square_crop(gray, cand), DEFOCUS_SIGMA, DEBLUR_ITERATIONS),
                SUPERSAMPLE,
                cv2.INTER_CUBIC,
            ),
        ]
        detected = False
        for view in views:
            found, seen = zx.read_or_detect(view())
            if found:
                return found, True
            detected = detected or seen
        return [], detected

    def _read_located(self, gray: Frame, cand: Candidate) -> list[Reading]:
        """The costly views of a 2D patch where zxing-cpp located a symbol but misread it.

        Deconvolution sized to a range of defocus (the camera's is unknown): at native scale
        then enlarged (a few ms), then on the enlarged crop, longer (tens of ms each).
        """
        assert self._zxing is not None
        sliced = square_crop(gray, cand)
        found = self._zxing.read(
            _rescale(
                deblur(sliced, STRONG_DEFOCUS_SIGMA, DEEP_DEBLUR_ITERATIONS),
                SUPERSAMPLE,
                cv2.INTER_CUBIC,
            )
        )
        if found:
            return found
        enlarged = _rescale(sliced, SUPERSAMPLE, cv2.INTER_CUBIC)
        for sigma in (DEFOCUS_SIGMA, STRONG_DEFOCUS_SIGMA):
            found = self._zxing.read(deblur(enlarged, sigma * SUPERSAMPLE, DEEP_DEBLUR_ITERATIONS))
            if found:
                return found
        return []

    def decode(self, frame: Frame) -> list[Reading]:
        """The codes of the first patch that reads (a kiosk is shown one code at a time).

        Raises ValueError for a frame that is not grayscale, BGR or BGRA.
        """
        if frame.size == 0:
            return []
        gray = to_gray(frame)
        if self.roi != (0.0, 0.0, 1.0, 1.0):
            gray, _, _ = crop_roi(gray, self.roi)
            if gray.size == 0:
                return []
        candidates = locate(gray, self.max_candidates)
        crops = [(c, rectify(gray, c)) for c in candidates]
        # Pass 1: zbar on each upright crop; EAN/UPC reads are confirmed by a vote.
        first_reads: list[list[Reading]] = []
        for cand, crop in crops:
            found = (self._zbar_linear if cand.linear else self._zbar_matrix).scan(crop)
            first_reads.append(found)
            if found and cand.linear and all(r.symbology in WEAK_CHECK for r in found):
                found = self._vote(crop, found, source=(gray, cand))
            if found:
                self._count("crop")
                return _distinct(found)
        # Pass 2: other views of each crop: equalised and sharpened (another binarisation),
        # the second engine, and for 2D codes an enlarged crop.
        located: Candidate | None = None  # the first 2D patch where zxing-cpp saw a symbol
        for i, ((cand, crop), first) in enumerate(zip(crops, first_reads, strict=True)):
            if cand.linear:
                # Inverted views only for the largest patch: they are rare and cost time.
                found = (
                    self._vote(crop, first, inverted=i == 0, source=(gray, cand))
                    if not first
                    else []
                )
            elif self._zxing is not None:
                found, detected = self._read_matrix(gray, cand, crop)
                if detected and located is None:
                    located = cand
            else:
                found = self._zbar_matrix.scan(enhance(crop, self._clahe))
            if found:
                self._count("retry")
                return _distinct(found)
        # Pass 3: the costliest views, only for a symbol zxing-cpp located but could not read
        # (so frames without a code never pay for them).
        if located is not None:
            self._count("located")
            found = self._read_located(gray, located)
            if found:
                self._count("deblur")
                return _distinct(found)
        # Pass 4: the whole frame, for codes the locator missed (very large or odd ones).
        found = self._zbar_full.scan(gray)
        self._count("full" if found else "none")
        return _distinct(found)

    def close(self) -> None:
        """Release the native scanners."""
        for scanner in (self._zbar_linear, self._zbar_matrix, self._zbar_full):
            scanner.close()


def decoder_info() -> dict[str, Any]:
    """Engine versions for `kiosk-edge doctor` and benchmark notes."""
    info: dict[str, Any] = {"opencv": cv2.__version__}
    try:
        import zxingcpp

        info["zxing-cpp"] = getattr(zxingcpp, "__version__", "installed")
    except ImportError:
        info["zxing-cpp"] = None
    return info
