"""Capture changes: what another camera, another afternoon or another stain does to a smear.

One definition, used twice: to augment training images, and to build the evaluation suite
that measures robustness. Every change is a function (rgb uint8 HxWx3, rng) -> rgb uint8, with
named severities; `apply(rgb, name, severity, seed)` is the one entry point. Seeded, so the
same image, change and seed always give the same pixels.

Severities are chosen so that "moderate" is an ordinary capture difference (what a technician
would not notice), "strong" one they might; the moderate ones of the issue are JPEG 60,
exposure x0.85/x1.15, blur sigma 1.0, zoom 1.25, rotate 90, hue +5 and stain jitter.
"""
import cv2
import numpy as np


def jpeg(rgb, rng, quality):
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def exposure(rgb, rng, gain):
    return np.clip(rgb.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


def gamma(rgb, rng, g):
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** g + 0.5, 0, 255).astype(np.uint8)
    return lut[rgb]


def white_balance(rgb, rng, gains):
    return np.clip(rgb.astype(np.float32) * np.asarray(gains, np.float32) + 0.5, 0,
                   255).astype(np.uint8)


def blur(rgb, rng, sigma):
    return cv2.GaussianBlur(rgb, (0, 0), sigma)


def defocus(rgb, rng, radius):
    """A disk kernel: what a lens out of focus does (unlike a Gaussian, it rings)."""
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    k = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float32)
    return cv2.filter2D(rgb, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT_101)


def noise(rgb, rng, sigma):
    """Sensor noise: Gaussian read noise plus shot noise that grows with the signal."""
    x = rgb.astype(np.float32)
    x = x + rng.normal(0, 1, x.shape).astype(np.float32) * np.sqrt(sigma ** 2 + 0.05 * x)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def zoom(rgb, rng, factor):
    """>1: a centre crop resized back (higher magnification); <1: shrunk and the field
    continued by reflection (lower magnification)."""
    h, w = rgb.shape[:2]
    if factor >= 1:
        ch, cw = int(round(h / factor)), int(round(w / factor))
        y, x = (h - ch) // 2, (w - cw) // 2
        return cv2.resize(rgb[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_CUBIC)
    small = cv2.resize(rgb, (max(1, int(round(w * factor))), max(1, int(round(h * factor)))),
                       interpolation=cv2.INTER_AREA)
    top, left = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    return cv2.copyMakeBorder(small, top, h - small.shape[0] - top, left,
                              w - small.shape[1] - left, cv2.BORDER_REFLECT_101)


def rotate90(rgb, rng, k):
    return np.ascontiguousarray(np.rot90(rgb, int(k)))


def flip(rgb, rng, axis):
    return np.ascontiguousarray(np.flip(rgb, int(axis)))


def rotate(rgb, rng, degrees):
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def hue(rgb, rng, shift):
    """Hue shift in OpenCV units (0..180 is a full turn)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + int(shift)) % 180).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


# Ruifrok & Johnston's haematoxylin / eosin / DAB optical densities, as scikit-image has them.
_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_HED /= np.linalg.norm(_HED, axis=1, keepdims=True)
_HED_INV = np.linalg.inv(_HED)


def stain(rgb, rng, amount):
    """Stain jitter in HED space: each stain's concentration scaled by 1 +- amount and
    shifted by +-amount/10 (Tellez et al., 2018), the way staining differs between labs."""
    od = -np.log(np.maximum(rgb.astype(np.float64), 1.0) / 255.0)     # optical density
    hed = od.reshape(-1, 3) @ _HED_INV
    alpha = rng.uniform(1 - amount, 1 + amount, 3)
    beta = rng.uniform(-amount / 10, amount / 10, 3)
    od2 = (hed * alpha + beta) @ _HED
    out = 255.0 * np.exp(-od2).reshape(rgb.shape)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def vignette(rgb, rng, strength):
    """Darker corners: uneven illumination of the field (strength = light lost at a corner)."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2
    mask = 1.0 - strength * r2 / 2.0
    return np.clip(rgb.astype(np.float32) * mask[..., None] + 0.5, 0, 255).astype(np.uint8)


# name -> (function, {severity: parameter})
CHANGES = {
    "jpeg": (jpeg, {"mild": 85, "moderate": 60, "strong": 40}),
    "exposure_down": (exposure, {"mild": 0.93, "moderate": 0.85, "strong": 0.7}),
    "exposure_up": (exposure, {"mild": 1.07, "moderate": 1.15, "strong": 1.3}),
    "gamma": (gamma, {"mild": 0.9, "moderate": 0.8, "strong": 0.65}),
    "white_balance": (white_balance, {"mild": (1.04, 1.0, 0.96), "moderate": (1.08, 1.0, 0.92),
                                      "strong": (1.15, 1.0, 0.85)}),
    "blur": (blur, {"mild": 0.6, "moderate": 1.0, "strong": 1.6}),
    "defocus": (defocus, {"mild": 1.0, "moderate": 1.5, "strong": 2.5}),
    "noise": (noise, {"mild": 2.0, "moderate": 4.0, "strong": 8.0}),
    "zoom_in": (zoom, {"mild": 1.1, "moderate": 1.25, "strong": 1.5}),
    "zoom_out": (zoom, {"mild": 0.9, "moderate": 0.8, "strong": 0.65}),
    "rotate90": (rotate90, {"moderate": 1, "strong": 2}),
    "flip": (flip, {"moderate": 1, "strong": 0}),
    "rotate": (rotate, {"mild": 5.0, "moderate": 15.0, "strong": 40.0}),
    "hue": (hue, {"mild": 2, "moderate": 5, "strong": 10}),
    "stain": (stain, {"mild": 0.05, "moderate": 0.1, "strong": 0.2}),
    "vignette": (vignette, {"mild": 0.15, "moderate": 0.3, "strong": 0.5}),
}
SEVERITIES = ("mild", "moderate", "strong")


def apply(rgb, name, severity, seed=0):
    """One capture change at a named severity; deterministic for a given seed."""
    fn, levels = CHANGES[name]
    if severity not in levels:
        raise ValueError(f"{name} has no severity {severity!r} (has {', '.join(levels)})")
    return fn(np.ascontiguousarray(rgb), np.random.default_rng(seed), levels[severity])


def suite(severities=("moderate", "strong")):
    """(name, severity) pairs of the evaluation suite."""
    return [(n, s) for n, (_, lv) in CHANGES.items() for s in severities if s in lv]


def ordinary(rgb, rng):
    """One ordinary capture change: a change of the suite drawn at random, at its moderate
    severity (what a technician would not notice). The out-of-domain gate's threshold is set
    on such captures of held-out images: they are not another lab."""
    names = [n for n, (_, levels) in CHANGES.items() if "moderate" in levels]
    fn, levels = CHANGES[names[rng.integers(len(names))]]
    return fn(np.ascontiguousarray(rgb), rng, levels["moderate"])


def augment(rgb, rng, max_gain=None):
    """A random ordinary capture: a chain of changes, each with a random strength up to
    'strong'. Used to augment training images (features of several copies per image).
    `max_gain`: exposure gains drawn log-uniform from 0.75 to it (brightening and darkening
    by a factor as likely), rather than uniform from 0.75 to 1.3: a model that has seen
    overexposed fields, their background clipped, reads them (alledge.convert.gate)."""
    out = rotate90(rgb, rng, rng.integers(4))
    if rng.random() < 0.5:
        out = flip(out, rng, 1)
    gain = (rng.uniform(0.75, 1.3) if max_gain is None
            else float(np.exp(rng.uniform(np.log(0.75), np.log(max_gain)))))
    out = exposure(out, rng, gain)
    out = gamma(out, rng, rng.uniform(0.75, 1.3))
    out = white_balance(out, rng, rng.uniform(0.9, 1.1, 3))
    if rng.random() < 0.5:
        out = stain(out, rng, 0.15)
    if rng.random() < 0.3:
        out = hue(out, rng, rng.integers(-8, 9))
    if rng.random() < 0.5:
        out = zoom(out, rng, float(np.exp(rng.uniform(np.log(0.75), np.log(1.35)))))
    if rng.random() < 0.5:
        out = blur(out, rng, rng.uniform(0.3, 1.6))
    if rng.random() < 0.3:
        out = noise(out, rng, rng.uniform(1, 6))
    return jpeg(out, rng, int(rng.integers(40, 96)))
