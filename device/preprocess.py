"""The one definition of preprocessing. Training calls it, the Pi calls it.

An image (file path, encoded bytes or an RGB frame) becomes the model's input array:
RGB, resized to the model's square input with INTER_AREA (it averages pixels when
shrinking a camera frame, so no aliasing; on the 224x224 dataset images it is a no-op),
in the dtype the model takes. Normalisation lives inside the models, so uint8 0-255 is
what every model sees, float or int8.

White point (bundles whose manifest has `preprocessing.white_point`): each input is scaled,
channel by channel, so that its bright part (the given percentile of each channel: the
smear's background, a brightfield's white) lands where the bundle's training images have
theirs. Exposure, lamp colour and white balance then reach the model as the training fields
did. Applied after the resize, on the model-sized image, on the desktop and the Pi alike.

A white point may be for overexposed fields only (`clipped_above`): a field is scaled to it
only when more of its pixels are at the sensor's ceiling than on all but a few training
fields. A model that learnt from unnormalised fields reads an ordinary field best as it is
(the default's grouped-split recipe through the device: 98.77% of the test part right with a
white point for overexposed fields, 98.06% with every field scaled: results/grouped/); what
it cannot read is a background blown out past anything it saw, and scaling that field down
gives its cells back their level (its top class on the test part under exposure x1.15:
95.50% read as they are, 97.95% scaled; a scratch measurement, 2026-11-27).
"""
import cv2
import numpy as np

from .images import read_rgb

INTERPOLATION = cv2.INTER_AREA
INTERPOLATION_NAME = "cv2.INTER_AREA"
WHITE_PERCENTILE = 75  # a smear's background covers well over a quarter of a field
CLIPPED_LEVEL = 250     # a pixel at the sensor's ceiling (alledge.device.quality's `clipped`)
OVEREXPOSED_PERCENTILE = 95  # `clipped_above`: the training fields' 95th percentile


def resize(rgb, size):
    """Resize an HxWx3 uint8 RGB array to size x size."""
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    return cv2.resize(rgb, (size, size), interpolation=INTERPOLATION)


def level_percentile(image, percentile, channel=0):
    """The given percentile of one channel of a uint8 image (HxW or HxWxC), as a level.
    From a 256-bin histogram: a tenth of np.percentile's time on a 224 px image."""
    counts = cv2.calcHist([image], [channel], None, [256], [0, 256]).ravel()
    n = image.shape[0] * image.shape[1]
    return float(np.searchsorted(np.cumsum(counts), percentile / 100.0 * n))


def channel_percentiles(rgb, percentile):
    """The given percentile of each channel of an HxWx3 uint8 image, as 3 floats."""
    return [level_percentile(rgb, percentile, c) for c in range(3)]


def clipped_share(rgb):
    """The share of an RGB uint8 image's pixels whose grey level is CLIPPED_LEVEL or more."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return np.count_nonzero(grey >= CLIPPED_LEVEL) / grey.size


def white_point_of(manifest):
    """A bundle's `preprocessing.white_point` ({percentile, target[, clipped_above]}), None
    without one. Raises ValueError when it is malformed."""
    part = (manifest.get("preprocessing") or {}).get("white_point")
    if part is None:
        return None
    p = part.get("percentile") if isinstance(part, dict) else None
    t = part.get("target") if isinstance(part, dict) else None
    if type(p) not in (int, float) or not 1 <= p <= 99:
        raise ValueError("manifest 'preprocessing.white_point.percentile' must be 1-99")
    if (not isinstance(t, list) or len(t) != 3
            or any(type(v) not in (int, float) or not 1 <= v <= 255 for v in t)):
        raise ValueError("manifest 'preprocessing.white_point.target' must be 3 levels 1-255")
    wp = {"percentile": float(p), "target": [float(v) for v in t]}
    if "clipped_above" in part:
        c = part["clipped_above"]
        if type(c) not in (int, float) or not 0 <= c < 1:
            raise ValueError("manifest 'preprocessing.white_point.clipped_above' must be 0-1")
        wp["clipped_above"] = float(c)
    return wp


def white_point_from(images, percentile=WHITE_PERCENTILE, overexposed=False):
    """The white point {percentile, target, measured_on} of a bundle's training images (any
    iterable of RGB arrays): the median, over them, of each channel's `percentile` level.
    `overexposed`: for overexposed fields only, those with a clipped share over the training
    images' OVEREXPOSED_PERCENTILE-th (`clipped_above`)."""
    levels, clipped = [], []
    for rgb in images:
        levels.append(channel_percentiles(rgb, percentile))
        if overexposed:
            clipped.append(clipped_share(rgb))
    wp = {"percentile": percentile,
          "target": [round(float(v), 1) for v in np.median(levels, axis=0)],
          "measured_on": f"{len(levels)} training images, median of each channel's "
                         f"{percentile}th percentile"}
    if overexposed:
        wp["clipped_above"] = round(float(np.percentile(clipped, OVEREXPOSED_PERCENTILE)), 4)
        wp["measured_on"] += (f"; applied to fields with more pixels at {CLIPPED_LEVEL} or above "
                              f"than the {OVEREXPOSED_PERCENTILE}th percentile of theirs")
    return wp


def scales(rgb, white_point):
    """Whether the white point scales this model-sized field: every field, or with
    `clipped_above` only one with a larger clipped share."""
    above = white_point.get("clipped_above")
    return above is None or clipped_share(rgb) > above


def apply_white_point(rgb, white_point, gated=True):
    """Scale each channel so its `percentile` becomes `target` (white_point dict); a field
    the white point does not scale (`scales`) as it is, unless `gated` is False."""
    if gated and not scales(rgb, white_point):
        return rgb
    here = channel_percentiles(rgb, white_point["percentile"])
    gains = np.asarray(white_point["target"], np.float32) / np.maximum(here, 1.0)
    levels = np.arange(256, dtype=np.float32)[:, None] * gains[None, :]
    lut = np.clip(levels + 0.5, 0, 255).astype(np.uint8).reshape(1, 256, 3)
    return cv2.LUT(np.ascontiguousarray(rgb), lut)


def preprocess(rgb, size, dtype=np.uint8, white_point=None):
    """HxWx3 uint8 RGB -> size x size x 3 array of `dtype` holding 0..255."""
    x = resize(rgb, size)
    if white_point is not None:
        x = apply_white_point(x, white_point)
    return x.astype(dtype, copy=False)


def colour_input(rgb, size, x, white_point=None):
    """What a field's stain colour is judged on (alledge.device.colour): the model's input
    `x`, or, where the white point is for overexposed fields only, the field scaled to it all
    the same. Lamp colour and white balance are taken out either way, so the training fields'
    colour range stays narrow: with the model's input as it is (white balance x1.08/x0.92
    among the ordinary captures) it widened from [-107.3, -4.7] to [-104.7, 24.7], and a field
    with red and blue swapped (about +10) fell inside it."""
    if white_point is None or "clipped_above" not in white_point:
        return x
    field = resize(rgb, size)
    if scales(field, white_point):  # the model's input is the field scaled already
        return x
    return apply_white_point(field, white_point, gated=False)


def load_input(path, size, dtype=np.uint8, white_point=None):
    """Image file -> model input array (no batch axis). Raises ImageError on bad files."""
    return preprocess(read_rgb(path), size, dtype, white_point)
