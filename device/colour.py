"""The stain's colour: is this field stained and lit like the training smears?

One number per field: the mean of red minus blue over its cell pixels (those darker than 0.9
times the field's 75th-percentile grey level, i.e. not the bright background), read on the
model's input after the bundle's white point, which takes out lamp colour (a white point for
overexposed fields only is applied to every field for this: preprocess.colour_input). A bundle may
record the range its training fields span (manifest `colour`, fitted by `alledge gate`); a
field outside it is out of domain before the model runs. The out-of-domain score reads cell
morphology more than colour, so a camera pipeline that swaps red and blue (OpenCV's BGR
order taken for RGB) would otherwise pass it.

Measured on every 5th training image of the paper split (2026-11-27): -97 to -8 (this
dataset's cells are bluer than red); the same fields with red and blue swapped +8 to +97;
hue +10 (OpenCV units, the suite's strong hue change) up to -11, HED stain jitter 0.2 up to
-12; BCCD's photos (another stain) -10 to +22.
"""
import cv2
import numpy as np

from .preprocess import level_percentile

BACKGROUND_LEVEL = 0.9


def cell_red_minus_blue(rgb):
    """Mean R - B over the field's cell pixels (0.0 for a field with none)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    mask = (grey < BACKGROUND_LEVEL * level_percentile(grey, 75)).astype(np.uint8)
    if not mask.any():
        return 0.0
    r, _, b, _ = cv2.mean(rgb, mask=mask)
    return float(r - b)


def colour_range_of(manifest):
    """The bundle's (low, high) range of cell_red_minus_blue, None without one. Raises
    ValueError when it is malformed."""
    part = manifest.get("colour")
    if part is None:
        return None
    rng = part.get("red_minus_blue") if isinstance(part, dict) else None
    if (not isinstance(rng, list) or len(rng) != 2
            or any(type(v) not in (int, float) or not np.isfinite(v) for v in rng)
            or rng[0] >= rng[1]):
        raise ValueError("manifest 'colour.red_minus_blue' must be [low, high] numbers")
    return float(rng[0]), float(rng[1])


def judge(rgb, colour_range):
    """None when the field's colour is within the range, else a reason in words."""
    value = cell_red_minus_blue(rgb)
    low, high = colour_range
    if low <= value <= high:
        return None
    return (f"stain colours unlike the training smears (cells' red minus blue {value:+.1f}, "
            f"training {low:+.0f} to {high:+.0f}): another stain, or the camera's red and "
            "blue channels swapped")
