"""The scale of a blood-smear frame: the red cells' diameter in pixels, and the factor that
brings a frame to the scale the model was trained at.

Estimator (classical, no model): the autocorrelation of the frame's green channel (red cells
absorb green; it has the most cell contrast in both the dataset's and BCCD's stains). A field
of cells of diameter D decorrelates over a lag proportional to D, whatever their colour,
density or pale centres, so the lag where the autocorrelation (averaged along x and y) first
falls to ACF_LEVEL is proportional to D. DIAMETER_PER_LAG turns it into a diameter: 1.78
makes the training images' median (19.28 px) match their Hough-circle median (19.2 px). Measured
(results/captures/scale.json): scale-covariant within 1% from x1 to x4.5; on the 3256 dataset
fields 10.1% off the training median (median absolute; signed 0.0%); on BCCD's photos 15.5%
off the median of their red-cell boxes (median absolute; signed -3.6%). Segmenting cells
(Otsu, distance transform), scale-space blobs and the Laplacian energy peak all did worse.

Cost: one FFT of the central CROP_SIDE square of a copy shrunk so its longer side is at most
WORK_SIDE (about 1 ms); when the cells come out smaller than MIN_LAG pixels in that copy it is
redone at full resolution.
"""
import cv2
import numpy as np

ACF_LEVEL = 0.3
DIAMETER_PER_LAG = 1.78
WORK_SIDE = 512
CROP_SIDE = 320
MIN_LAG = 4.0


class ScaleError(ValueError):
    """No red-cell scale can be read from this frame (a reason, in words)."""


def estimate_diameter(rgb):
    """HxWx3 uint8 RGB -> the median red-cell diameter in pixels of this frame.

    Raises ScaleError when the frame shows no cell-sized structure (blank, or cells larger
    than a quarter of the frame)."""
    green = np.ascontiguousarray(rgb[:, :, 1])
    h, w = green.shape
    shrink = max(1.0, max(h, w) / WORK_SIDE)
    if shrink > 1.0:
        small = cv2.resize(green, (max(1, round(w / shrink)), max(1, round(h / shrink))),
                           interpolation=cv2.INTER_AREA)
        lag = decorrelation_lag(small)
        if lag is not None and lag >= MIN_LAG:
            return DIAMETER_PER_LAG * lag * shrink
    lag = decorrelation_lag(green)
    if lag is None:
        raise ScaleError("no red cells found (no cell-sized structure in the frame)")
    return DIAMETER_PER_LAG * lag


def decorrelation_lag(grey):
    """Lag (px, interpolated) where the autocorrelation along x and y first falls to
    ACF_LEVEL; None if it never does within a quarter of the shorter side. Read on the
    central CROP_SIDE square at most: hundreds of cells, at a fraction of the FFT's cost."""
    h, w = grey.shape
    if max(h, w) > CROP_SIDE:
        y0, x0 = max(0, (h - CROP_SIDE) // 2), max(0, (w - CROP_SIDE) // 2)
        grey = grey[y0:y0 + CROP_SIDE, x0:x0 + CROP_SIDE]
        h, w = grey.shape
    max_lag = min(h, w) // 4
    if max_lag < 3:
        return None
    x = grey.astype(np.float32)
    x -= float(x.mean())
    # zero padding of max_lag: the lags we read are free of wrap-around
    ph, pw = cv2.getOptimalDFTSize(h + max_lag), cv2.getOptimalDFTSize(w + max_lag)
    padded = np.zeros((ph, pw), np.float32)
    padded[:h, :w] = x
    f = cv2.dft(padded)  # real input: the packed (CCS) spectrum, half the work
    power = cv2.mulSpectrums(f, f, 0, conjB=True)
    acf = cv2.idft(power, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
    if acf[0, 0] <= 0:
        return None  # a flat frame
    lags = np.arange(max_lag + 1)
    # each lag's sum covers fewer pixel pairs: divide by their number
    along_x = acf[0, :max_lag + 1] / (h * (w - lags))
    along_y = acf[:max_lag + 1, 0] / ((h - lags) * w)
    profile = (along_x + along_y) / (2.0 * acf[0, 0] / (h * w))
    below = np.nonzero(profile < ACF_LEVEL)[0]
    if len(below) == 0:
        return None
    i = int(below[0])
    return float(i - 1 + (profile[i - 1] - ACF_LEVEL) / (profile[i - 1] - profile[i]))


# Rescaling a frame to the training scale. factor = training diameter / frame's diameter.
# Never up: cells down to MAX_FACTOR times smaller than the training cells are used as they
# are (the training images' own estimates reach 0.70 x their median), smaller ones are
# rejected: the detail is not in the frame, a higher magnification is needed.
MAX_FACTOR = 1.6
# Down: a frame larger than one tile is shrunk whenever its cells are over TOLERANCE times
# the training size (resizing is cheap; within 15% the model does not care).
TOLERANCE = 1.15
# A frame of one tile or less cannot be shrunk (it would be less than a field): it is used
# as it is while its cells are within FIELD_TOLERANCE of the training size, as the training
# fields themselves are (their estimates reach 3.0 x their median in WBC-dense fields,
# results/captures/scale.json), and shrunk below a field, so rejected, beyond.
FIELD_TOLERANCE = 3.2
# ...and read with cells down to half the training size: one field holds few cells, so its
# estimate spreads more (the paper test split's fields reach 0.62 x the training median).
FIELD_MAX_FACTOR = 2.0
# Cells over 16 times the training size (300 px at the dataset's 19 px) are no smear at a
# usual magnification.
MIN_FACTOR = 1.0 / 16
# A red cell is 7.5 um across (normal adult mean diameter 7.5-8.3 um): how --um-per-px becomes
# a diameter in pixels.
RBC_UM = 7.5
SOURCES = ("estimated", "given", "calibrated")


def diameter_from_um_per_px(um_per_px):
    return RBC_UM / um_per_px


def training_diameter(manifest):
    """The bundle's training scale (median red-cell diameter, px), None for bundles without
    a `scale` section (they classify the whole frame as before)."""
    section = manifest.get("scale")
    if not isinstance(section, dict):
        return None
    value = section.get("rbc_diameter_px")
    if type(value) not in (int, float) or not np.isfinite(value) or value <= 0:
        raise ValueError("manifest 'scale.rbc_diameter_px' must be a positive number")
    return float(value)


def factor_for(frame_diameter, train_diameter, one_field=False):
    """The resize factor for a frame whose red cells are `frame_diameter` px across (1.0:
    used as it is). `one_field`: the frame is no larger than a tile. Raises ScaleError when
    the ratio is out of range."""
    factor = train_diameter / frame_diameter
    most = FIELD_MAX_FACTOR if one_field else MAX_FACTOR
    if factor > most:
        raise ScaleError(f"red cells {frame_diameter:.1f} px across, under the "
                         f"{train_diameter / most:.1f} px this model can read (it was "
                         f"trained at {train_diameter:.1f} px): use a higher magnification")
    if factor < MIN_FACTOR:
        raise ScaleError(f"red cells {frame_diameter:.1f} px across, over "
                         f"{train_diameter / MIN_FACTOR:.0f} px: not a blood smear at a usual "
                         "magnification")
    return 1.0 if factor >= 1.0 / (FIELD_TOLERANCE if one_field else TOLERANCE) else factor


def reduction_for(factor):
    """JPEG DCT-domain reduction (1, 2, 4 or 8) for a frame that will be resized by
    `factor`: the largest that still decodes at least the size the frame is resized to."""
    for r in (8, 4, 2):
        if r * factor <= 1.0:
            return r
    return 1


# Before the scale is known, a JPEG is decoded at the largest reduction that keeps its
# shorter side at least PROBE_SIDE px: enough to estimate the scale (cells of 19 px and more
# at any magnification that makes the frame that large), and the frame is decoded once.
PROBE_SIDE = 640


def probe_reduction(width, height):
    for r in (8, 4, 2):
        if min(width, height) / r >= PROBE_SIDE:
            return r
    return 1
