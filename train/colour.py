"""The colour baseline: per-channel colour histograms, no CNN.

32 bins for each of R, G, B (normalised to sum 1 per channel), 96 numbers per image. If an
SVM on these does nearly as well as a CNN, the CNN may be reading stain and scanner colour
rather than cell morphology: every CNN figure should be read against it.
"""
import numpy as np

BINS = 32


def colour_histogram(rgb):
    """HxWx3 uint8 -> (3*BINS,) float32."""
    h = [np.bincount((rgb[..., c] // (256 // BINS)).ravel(), minlength=BINS) for c in range(3)]
    h = np.concatenate(h).astype(np.float32)
    return h / (rgb.shape[0] * rgb.shape[1])


def colour_features(images):
    return np.stack([colour_histogram(im) for im in images])
