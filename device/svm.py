"""The calibrated SVM as plain weights: numpy only, read from `svm.npz` without pickle.

`svm.npz` (format "alledge-svm/1") holds what scikit-learn's
CalibratedClassifierCV(Pipeline([StandardScaler, SVC]), method='sigmoid', ensemble=False)
computes with, as arrays:

    format          str scalar, "alledge-svm/1"
    classes         (n_classes,) str, label order
    scaler_mean     (d,) float64     x_scaled = (x - scaler_mean) / scaler_scale
    scaler_scale    (d,) float64
    kernel          str scalar, "linear" or "rbf"
    gamma           float64 scalar (the resolved value; unused for linear)
    support_vectors (n_sv, d) float64, in scaled space. For a linear kernel the exporter
                    folds them into one weight vector per pair (n_sv = n_pairs, and
                    pair_coef is the identity): the decision values are the same.
    pair_coef       (n_pairs, n_sv) float64: one-vs-one pair k's dual coefficients, dense
                    (zero for support vectors of neither class of the pair)
    pair_intercept  (n_pairs,) float64
    pairs           (n_pairs, 2) int: the classes (i, j) of pair k, libsvm order, i < j
    calib_a         (n_classes,) float64: sigmoid calibration, p_c = 1 / (1 + exp(a_c f_c + b_c))
    calib_b         (n_classes,) float64

Decision values reproduce SVC.decision_function (decision_function_shape='ovr'): one-vs-one
values turned into votes plus a tie-breaking confidence in (-1/3, 1/3). Probabilities
reproduce CalibratedClassifierCV.predict_proba: one sigmoid per class, normalised to sum 1
(uniform where all are 0). The prediction is the most probable class, as
CalibratedClassifierCV.predict has it (it can differ from the SVC's own vote).
"""
from pathlib import Path

import numpy as np

from .npz import read_npz

FORMAT = "alledge-svm/1"
KERNELS = ("linear", "rbf")
FIELDS = ("format", "classes", "scaler_mean", "scaler_scale", "kernel", "gamma",
          "support_vectors", "pair_coef", "pair_intercept", "pairs", "calib_a", "calib_b")


class SvmError(ValueError):
    """svm.npz cannot be used; the message names the file and what is wrong."""


class PlainSvm:
    """A calibrated one-vs-one SVM from plain arrays. Build with `load_svm(path)`."""

    def __init__(self, arrays):
        self.classes = tuple(str(c) for c in arrays["classes"])
        self.mean = arrays["scaler_mean"]
        self.scale = arrays["scaler_scale"]
        self.kernel = str(arrays["kernel"])
        self.gamma = float(arrays["gamma"])
        self.support_vectors = arrays["support_vectors"]
        self.pair_coef = arrays["pair_coef"]
        self.pair_intercept = arrays["pair_intercept"]
        self.pairs = arrays["pairs"]
        self.calib_a = arrays["calib_a"]
        self.calib_b = arrays["calib_b"]
        # |sv|^2 once, for the RBF kernel's expansion |x - sv|^2 = |x|^2 + |sv|^2 - 2 x.sv
        self._sv_sq = np.einsum("ij,ij->i", self.support_vectors, self.support_vectors)

    @property
    def n_features(self):
        return self.mean.shape[0]

    def _kernel(self, xs):
        dots = xs @ self.support_vectors.T
        if self.kernel == "linear":
            return dots
        x_sq = np.einsum("ij,ij->i", xs, xs)[:, None]
        dist = np.maximum(x_sq + self._sv_sq[None, :] - 2.0 * dots, 0.0)
        return np.exp(-self.gamma * dist)

    def ovo_decision(self, x):
        """(n, d) features -> (n, n_pairs) one-vs-one decision values (> 0 favours class i)."""
        x = self._check(x)
        xs = (x - self.mean) / self.scale
        return self._kernel(xs) @ self.pair_coef.T + self.pair_intercept

    def decision_function(self, x):
        """(n, d) features -> (n, n_classes): votes + sum_of_confidences / (3 (|sum| + 1))."""
        dec = self.ovo_decision(x)
        n_classes = len(self.classes)
        votes = np.zeros((dec.shape[0], n_classes))
        conf = np.zeros((dec.shape[0], n_classes))
        for k, (i, j) in enumerate(self.pairs):
            conf[:, i] += dec[:, k]
            conf[:, j] -= dec[:, k]
            votes[:, i] += dec[:, k] >= 0   # libsvm: a value of exactly 0 votes for i
            votes[:, j] += dec[:, k] < 0
        return votes + conf / (3.0 * (np.abs(conf) + 1.0))

    def predict_proba(self, x):
        """(n, d) features -> (n, n_classes) calibrated probabilities, rows summing to 1."""
        f = self.decision_function(x)
        # 1 / (1 + exp(z)) written as exp(-logaddexp(0, z)): no overflow warning for large z
        p = np.exp(-np.logaddexp(0.0, self.calib_a * f + self.calib_b))
        total = p.sum(axis=1, keepdims=True)
        uniform = np.full_like(p, 1.0 / p.shape[1])
        p = np.divide(p, total, out=uniform, where=total != 0)
        p[(p > 1.0) & (p <= 1.0 + 1e-5)] = 1.0  # as scikit-learn: rounding just above 1
        return p

    def predict(self, x):
        """(n, d) features -> (n,) class indices into `classes`."""
        return np.argmax(self.predict_proba(x), axis=1)

    def _check(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise SvmError(f"SVM expects {self.n_features} features, got shape {x.shape}")
        return x


def load_svm(path):
    """Read and check svm.npz; raises SvmError (one line naming the file) when unusable."""
    path = Path(path)
    arrays = read_npz(path, FIELDS, SvmError, f"an {FORMAT} file", "SVM weights")
    _validate(path, arrays)
    return PlainSvm(_as_float64(arrays))


def _as_float64(arrays):
    out = dict(arrays)
    for k in ("scaler_mean", "scaler_scale", "gamma", "support_vectors", "pair_coef",
              "pair_intercept", "calib_a", "calib_b"):
        out[k] = np.asarray(arrays[k], dtype=np.float64)
    out["pairs"] = np.asarray(arrays["pairs"], dtype=np.int64)
    return out


def _validate(path, a):
    def bad(msg):
        raise SvmError(f"{path}: {msg}")

    if a["format"].shape != () or str(a["format"]) != FORMAT:
        bad(f"unknown format {a['format']!r}, this version reads {FORMAT}")
    if a["kernel"].shape != () or str(a["kernel"]) not in KERNELS:
        bad(f"unknown kernel {a['kernel']!r} (expected one of {', '.join(KERNELS)})")
    for k in FIELDS:
        if k not in ("format", "kernel", "classes") and a[k].dtype.kind not in "fiu":
            bad(f"'{k}' is not numeric ({a[k].dtype})")
    if a["classes"].dtype.kind != "U" or a["classes"].ndim != 1:
        bad("'classes' must be a 1-d array of strings")
    n_classes = a["classes"].shape[0]
    n_pairs = n_classes * (n_classes - 1) // 2
    if n_classes < 3:
        bad(f"needs at least 3 classes, has {n_classes}")
    sv = a["support_vectors"]
    if sv.ndim != 2:
        bad("'support_vectors' must be 2-d")
    n_sv, d = sv.shape
    shapes = {"scaler_mean": (d,), "scaler_scale": (d,), "gamma": (),
              "pair_coef": (n_pairs, n_sv), "pair_intercept": (n_pairs,), "pairs": (n_pairs, 2),
              "calib_a": (n_classes,), "calib_b": (n_classes,)}
    for k, shape in shapes.items():
        if a[k].shape != shape:
            bad(f"'{k}' has shape {a[k].shape}, expected {shape}")
    expected_pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    if [tuple(p) for p in a["pairs"].tolist()] != expected_pairs:
        bad("'pairs' is not the one-vs-one order (0,1), (0,2), ... of libsvm")
    for k in shapes:
        if not np.all(np.isfinite(a[k])):
            bad(f"'{k}' holds non-finite values")
    if np.any(a["scaler_scale"] == 0):
        bad("'scaler_scale' holds zeros")
