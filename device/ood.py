"""The out-of-domain score: how far an image's features lie from everything the model trained on.

A smear from another lab, stain or microscope still gets four probabilities that sum to one;
this score is what lets the device say "I cannot judge this" instead. It is the
class-conditional Mahalanobis distance with one shared covariance (Lee et al., NeurIPS 2018),
taken in the space of the first K principal components of the training features:

    z     = components @ (x - mean)                       (K,)
    score = min over classes c of (z - mu_c)' P (z - mu_c)

with P the inverse of the pooled within-class covariance of z. High = far from the training
data. The threshold (manifest `ood.threshold`) was set on the desktop at a stated quantile of
out-of-fold training scores (alledge.train.gate), so it flags a known share of in-domain images.

`ood.npz` (format "alledge-ood/1") holds plain arrays, read without pickle:
    format      str scalar
    mean        (d,)   float32   feature mean of the training images
    components  (K, d) float32   principal axes (float32 halves the file; scores move by
                                 < 1e-4 of the threshold)
    class_means (C, K) float64   per-class means of z
    precision   (K, K) float64   P
    classes     (C,)   str       optional: the class names of class_means' rows, checked
                                 against the manifest (a CNN bundle has no other file that
                                 names its classes: this catches them reordered and resealed)
"""
import numpy as np

from .npz import read_npz

FORMAT = "alledge-ood/1"
FIELDS = ("format", "mean", "components", "class_means", "precision")


class OodError(ValueError):
    """ood.npz cannot be used; the message names the file and what is wrong."""


class MahalanobisScore:
    def __init__(self, arrays):
        self.mean = np.asarray(arrays["mean"], dtype=np.float64)
        self.components = np.asarray(arrays["components"], dtype=np.float64)
        self.class_means = np.asarray(arrays["class_means"], dtype=np.float64)
        self.precision = np.asarray(arrays["precision"], dtype=np.float64)
        names = arrays.get("classes")
        self.classes = tuple(str(c) for c in names) if names is not None else None

    @property
    def n_features(self):
        return self.mean.shape[0]

    def score(self, features):
        """(d,) or (n, d) features -> float or (n,) scores."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        z = (x - self.mean) @ self.components.T                       # (n, K)
        diff = z[:, None, :] - self.class_means[None, :, :]           # (n, C, K)
        d2 = np.einsum("nck,kl,ncl->nc", diff, self.precision, diff)  # (n, C)
        s = d2.min(axis=1)
        return float(s[0]) if np.ndim(features) == 1 else s


def load_ood(path):
    arrays = read_npz(path, FIELDS, OodError, "an ood.npz", "out-of-domain arrays",
                      optional=("classes",))
    if str(arrays["format"]) != FORMAT:
        raise OodError(f"{path}: format {str(arrays['format'])!r}, expected {FORMAT!r}")
    d = arrays["mean"].shape
    k = arrays["components"].shape
    if (len(d) != 1 or len(k) != 2 or k[1] != d[0] or arrays["class_means"].ndim != 2
            or arrays["class_means"].shape[1] != k[0] or arrays["precision"].shape != (k[0], k[0])):
        raise OodError(f"{path}: arrays of inconsistent shapes")
    if "classes" in arrays and arrays["classes"].shape != (arrays["class_means"].shape[0],):
        raise OodError(f"{path}: 'classes' does not name the rows of 'class_means'")
    if not all(np.all(np.isfinite(arrays[f])) for f in FIELDS[1:]):
        raise OodError(f"{path}: arrays hold non-finite values")
    return MahalanobisScore(arrays)


def save_ood(path, mean, components, class_means, precision, classes=None):
    """Write ood.npz (the desktop side calls this; plain arrays only)."""
    extra = {} if classes is None else {"classes": np.array([str(c) for c in classes])}
    np.savez(path, format=np.array(FORMAT), **extra, mean=np.asarray(mean, np.float32),
             components=np.asarray(components, np.float32),
             class_means=np.asarray(class_means, np.float64),
             precision=np.asarray(precision, np.float64))
