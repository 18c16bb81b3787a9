"""`alledge data synth`: a synthetic smear set so the pipeline runs without the real data.

Each 224x224 JPEG is a stained background with red cells and one to three blasts. The class
sets the blast's typical size, nucleus irregularity, chromatin texture and hue, each drawn
from distributions that overlap between neighbouring classes, and every image gets a random
illumination, blur and sensor noise. So a colour histogram alone does not separate the
classes; shape and texture help. What a simple classifier reaches is in the README.
"""
from pathlib import Path

import cv2
import numpy as np

from alledge.device import CLASSES

SIZE = 224

# per class: blast radius mean, nucleus irregularity, texture strength, nucleus RGB
_STYLE = {
    "Benign": dict(radius=17, wobble=0.05, texture=10, nucleus=(95, 55, 140)),
    "Early": dict(radius=21, wobble=0.10, texture=18, nucleus=(110, 70, 160)),
    "Pre": dict(radius=25, wobble=0.16, texture=26, nucleus=(100, 80, 170)),
    "Pro": dict(radius=29, wobble=0.22, texture=34, nucleus=(120, 85, 165)),
}


def _blob(rng, cx, cy, r, wobble, n=48):
    """Polygon of a round-ish cell whose radius wobbles by `wobble` (relative)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    k = rng.integers(2, 6)
    rr = r * (1 + wobble * np.sin(k * t + rng.uniform(0, 6.3))
              + 0.5 * wobble * rng.standard_normal(n).cumsum() / np.sqrt(n))
    pts = np.stack([cx + rr * np.cos(t), cy + rr * np.sin(t)], axis=1)
    return pts.astype(np.int32)


def draw_smear(label, rng):
    """One synthetic RGB smear image of class `label`."""
    s = _STYLE[label]
    bg = np.array([235, 215, 225]) + rng.normal(0, 8, 3)
    img = np.tile(bg, (SIZE, SIZE, 1)).astype(np.float32)
    for _ in range(rng.integers(25, 45)):  # red cells with a pale centre
        cx, cy = rng.uniform(0, SIZE, 2)
        r = rng.uniform(9, 13)
        col = np.array([215, 150, 170]) + rng.normal(0, 10, 3)
        cv2.circle(img, (int(cx), int(cy)), int(r), col.tolist(), -1, cv2.LINE_AA)
        cv2.circle(img, (int(cx), int(cy)), int(r * 0.45), (bg * 0.97).tolist(), -1, cv2.LINE_AA)
    for _ in range(rng.integers(1, 4)):  # blasts
        r = max(8.0, rng.normal(s["radius"], 4.5))
        cx, cy = rng.uniform(r + 4, SIZE - r - 4, 2)
        cyto = np.array([175, 160, 205]) + rng.normal(0, 10, 3)
        cv2.fillPoly(img, [_blob(rng, cx, cy, r * 1.25, 0.05)], cyto.tolist(), cv2.LINE_AA)
        mask = np.zeros((SIZE, SIZE), np.uint8)
        wob = max(0.0, rng.normal(s["wobble"], 0.05))
        cv2.fillPoly(mask, [_blob(rng, cx + rng.normal(0, 2), cy + rng.normal(0, 2), r, wob)], 1)
        nucleus = np.array(s["nucleus"]) + rng.normal(0, 14, 3)
        tex = rng.normal(0, 1, (SIZE // 4, SIZE // 4)).astype(np.float32)
        tex = cv2.resize(tex, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
        tex *= max(0.0, rng.normal(s["texture"], 7))
        m = mask.astype(bool)
        img[m] = nucleus + tex[m, None]
    img *= rng.uniform(0.85, 1.1)  # illumination
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.6, 1.6))
    img += rng.normal(0, 5, img.shape)  # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


def write_synth(out, per_class=60, seed=0):
    """Write OUT/<Class>/synth-<Class>-NNN.jpg; returns the number of files written."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    n = 0
    for label in CLASSES:
        d = out / label
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rgb = draw_smear(label, rng)
            path = d / f"synth-{label}-{i:03d}.jpg"
            cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            n += 1
    return n
