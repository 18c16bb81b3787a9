"""The capture quality gate: is a camera frame worth classifying?

Measures, on the frame's grey image (shrunk with INTER_AREA so its longer side is at most
WORK_SIDE pixels, so that thresholds do not depend on the camera's resolution):

    brightness  mean grey level, 0..255
    clipped     fraction of pixels at 250 or above (blown-out highlights)
    contrast    standard deviation of the grey levels
    sharpness   variance of the Laplacian (low = out of focus)

A frame is rejected, in this order, as
    too small      shorter side < min_side pixels    (default 64: a 1x1 image, a 10000x10
                   strip; the dataset's fields are 224 px, a blood cell is ~20-60 px)
    too dark       brightness < min_brightness      (default 40)
    overexposed    clipped > max_clipped             (default 0.80)
    blank          contrast < min_contrast           (default 8)
    out of focus   sharpness < min_sharpness         (default 30)

A brightfield smear has a bright background, often partly at the sensor's ceiling, so
overexposure is judged by the clipped fraction, and generously. Measured on every 5th image
of the real dataset (652 images): brightness 189-244, clipped 0.004-0.62 (95th percentile
0.49), contrast 14-45, sharpness 47-2059 (1st percentile 93); the same images blurred with a
9x9 Gaussian have sharpness 3.9-17.7. The defaults accept all of the former and reject all
of the latter (tests/test_quality_real.py). Another microscope camera may need other values:
the capture command's --min-brightness, --max-clipped, --min-contrast and --min-sharpness
set them.

A bundle may carry its own thresholds (manifest `quality`, fitted by `alledge gate` from
what its model can still read: alledge.convert.gate); they replace these defaults for it.
"""
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .preprocess import CLIPPED_LEVEL

WORK_SIDE = 640


@dataclass(frozen=True)
class Thresholds:
    min_brightness: float = 40.0
    max_clipped: float = 0.80
    min_contrast: float = 8.0
    min_sharpness: float = 30.0
    min_side: int = 64


def measure(rgb):
    """HxWx3 uint8 RGB -> dict of the measures (plain numbers)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    size = {"width": int(w), "height": int(h)}
    if max(h, w) > WORK_SIDE:
        f = WORK_SIDE / max(h, w)
        grey = cv2.resize(grey, (max(1, round(w * f)), max(1, round(h * f))),
                          interpolation=cv2.INTER_AREA)
    # OpenCV's one-pass mean/std and a float32 Laplacian: the same figures as numpy's
    # mean/std/var on a float64 Laplacian, in a fifth of the time (0.10 vs 0.58 ms at 224 px)
    mean, std = cv2.meanStdDev(grey)
    _, lap_std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_32F))
    return {
        "brightness": round(float(mean[0, 0]), 3),
        "clipped": round(np.count_nonzero(grey >= CLIPPED_LEVEL) / grey.size, 4),
        "contrast": round(float(std[0, 0]), 3),
        "sharpness": round(float(lap_std[0, 0]) ** 2, 3),
        **size,
    }


def judge(measures, t=Thresholds()):
    """None if the frame passes, else (reason, message with the measured value)."""
    m = measures
    if "width" in m and min(m["width"], m["height"]) < t.min_side:
        return "too small", (f"{m['width']}x{m['height']} pixels, shorter side "
                             f"< {t.min_side}")
    if m["brightness"] < t.min_brightness:
        return "too dark", f"brightness {m['brightness']:.1f} < {t.min_brightness:g}"
    if m["clipped"] > t.max_clipped:
        return "overexposed", f"clipped fraction {m['clipped']:.3f} > {t.max_clipped:g}"
    if m["contrast"] < t.min_contrast:
        return "blank", f"contrast {m['contrast']:.2f} < {t.min_contrast:g}"
    if m["sharpness"] < t.min_sharpness:
        return "out of focus", f"sharpness {m['sharpness']:.1f} < {t.min_sharpness:g}"
    return None


FITTED = ("min_brightness", "max_clipped", "min_contrast", "min_sharpness")


def thresholds_of(manifest):
    """The bundle's thresholds (manifest `quality`, its missing keys the defaults); the
    defaults without the section. Raises ValueError when it is malformed."""
    part = manifest.get("quality")
    if part is None:
        return Thresholds()
    if not isinstance(part, dict):
        raise ValueError("manifest 'quality' must be an object")
    values = {}
    for key in FITTED:
        v = part.get(key)
        if v is None:
            continue
        if type(v) not in (int, float) or not np.isfinite(v) or v < 0:
            raise ValueError(f"manifest 'quality.{key}' must be a number >= 0")
        values[key] = float(v)
    return Thresholds(**values)


def thresholds_dict(t):
    return asdict(t)
