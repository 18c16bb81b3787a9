"""A fitted calibrated SVM -> `svm.npz`, the plain weights alledge.device.svm reads.

Accepted: CalibratedClassifierCV(Pipeline([('scaler', StandardScaler()), ('svc', SVC())]),
method='sigmoid', ensemble=False), fitted, with a linear or RBF kernel and 3+ classes — what
alledge.train.svm.fit_svm makes. Anything else is refused with a ValueError, because a model
exported half-right would classify wrongly on the Pi without a sound. It lives in train/,
beside the SVM, because training writes svm.npz into every SVM model directory.
"""
from pathlib import Path

import numpy as np

from alledge.device.fileio import atomic_writer
from alledge.device.svm import FORMAT, KERNELS, load_svm


def export_svm(calibrated, path, class_names=None):
    """Write `calibrated`'s weights to `path` (atomically) and return the path.

    class_names: names in label order when the classifier was fitted on integer labels
    0..n-1; by default the fitted classes themselves (as strings).
    """
    arrays = svm_arrays(calibrated, class_names)
    path = Path(path)
    with atomic_writer(path) as f:  # a file object: np.savez would append '.npz' to a name
        np.savez(f, **arrays)
    load_svm(path)  # what we wrote must read back under the device's own checks
    return path


def svm_arrays(calibrated, class_names=None):
    """The svm.npz arrays (see alledge.device.svm) of a fitted calibrated SVM pipeline."""
    scaler, svc, calibrators = _unwrap(calibrated)
    classes = _class_names(calibrated.classes_, class_names)
    n_classes = len(classes)
    mean = scaler.mean_ if scaler.mean_ is not None else np.zeros(svc.shape_fit_[1])
    scale = scaler.scale_ if scaler.scale_ is not None else np.ones(svc.shape_fit_[1])
    pair_coef, pairs = _dense_pair_coef(svc.dual_coef_, svc.n_support_)
    vectors = np.asarray(svc.support_vectors_, dtype=np.float64)
    if svc.kernel == "linear":
        # A linear kernel's decision is x . (sum of coef * sv): fold the support vectors into
        # one weight vector per pair. Same values (to float64 rounding), and for 1280-d
        # features a few tens of KB on the Pi instead of megabytes.
        vectors, pair_coef = pair_coef @ vectors, np.eye(len(pairs))
    return {
        "format": np.array(FORMAT),
        "classes": np.array(classes, dtype=str),
        "scaler_mean": np.asarray(mean, dtype=np.float64),
        "scaler_scale": np.asarray(scale, dtype=np.float64),
        "kernel": np.array(svc.kernel),
        "gamma": np.array(float(svc._gamma), dtype=np.float64),  # 'scale' resolved at fit
        "support_vectors": vectors,
        "pair_coef": pair_coef,
        "pair_intercept": np.asarray(svc.intercept_, dtype=np.float64),
        "pairs": pairs,
        "calib_a": np.array([c.a_ for c in calibrators], dtype=np.float64).reshape(n_classes),
        "calib_b": np.array([c.b_ for c in calibrators], dtype=np.float64).reshape(n_classes),
    }


def _unwrap(calibrated):
    """Check the exact shape of model we can export; return (scaler, svc, calibrators)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    def refuse(msg):
        raise ValueError(f"cannot export this SVM: {msg}")

    if not isinstance(calibrated, CalibratedClassifierCV):
        refuse(f"expected a CalibratedClassifierCV, got {type(calibrated).__name__}")
    if not hasattr(calibrated, "calibrated_classifiers_"):
        refuse("the CalibratedClassifierCV is not fitted")
    if calibrated.method != "sigmoid":
        refuse(f"calibration method is '{calibrated.method}', only 'sigmoid' is supported")
    if len(calibrated.calibrated_classifiers_) != 1:
        refuse(f"{len(calibrated.calibrated_classifiers_)} calibrated classifiers "
               "(ensemble=True); fit with ensemble=False")
    fitted = calibrated.calibrated_classifiers_[0]
    pipe = fitted.estimator
    if not (isinstance(pipe, Pipeline) and len(pipe.steps) == 2
            and isinstance(pipe.steps[0][1], StandardScaler)
            and isinstance(pipe.steps[1][1], SVC)):
        refuse("the estimator must be Pipeline([('scaler', StandardScaler()), ('svc', SVC())])")
    scaler, svc = pipe.steps[0][1], pipe.steps[1][1]
    if svc.kernel not in KERNELS:
        refuse(f"kernel '{svc.kernel}' (supported: {', '.join(KERNELS)})")
    if svc.decision_function_shape != "ovr":
        refuse("the SVC must use decision_function_shape='ovr' (the default)")
    if getattr(svc, "_sparse", False):
        refuse("the SVC was fitted on sparse input")
    if len(svc.classes_) < 3:
        refuse(f"{len(svc.classes_)} classes; the exported format needs 3 or more")
    if not np.array_equal(svc.classes_, calibrated.classes_):
        refuse("the SVC was fitted on fewer classes than the calibrated model knows")
    if len(fitted.calibrators) != len(calibrated.classes_):
        refuse("expected one calibrator per class")
    for c in fitted.calibrators:
        if not (hasattr(c, "a_") and hasattr(c, "b_")):
            refuse(f"calibrator {type(c).__name__} is not a sigmoid")
    return scaler, svc, fitted.calibrators


def _class_names(fitted_classes, class_names):
    if class_names is None:
        return [str(c) for c in fitted_classes]
    if list(fitted_classes) != list(range(len(class_names))):
        raise ValueError(f"cannot export this SVM: class_names given for labels "
                         f"{list(fitted_classes)}, expected 0..{len(class_names) - 1}")
    return [str(c) for c in class_names]


def _dense_pair_coef(dual_coef, n_support):
    """libsvm's packed (n_classes-1, n_sv) dual_coef_ -> dense (n_pairs, n_sv) per pair.

    Support vectors are grouped by class. For pair (i, j), the coefficients of class i's
    vectors sit in row j-1 and those of class j's vectors in row i (scikit-learn's
    documented multi-class layout).
    """
    n_classes = len(n_support)
    starts = np.concatenate([[0], np.cumsum(n_support)])
    pairs = [(i, j) for i in range(n_classes) for j in range(i + 1, n_classes)]
    dense = np.zeros((len(pairs), dual_coef.shape[1]), dtype=np.float64)
    for k, (i, j) in enumerate(pairs):
        si = slice(starts[i], starts[i + 1])
        sj = slice(starts[j], starts[j + 1])
        dense[k, si] = dual_coef[j - 1, si]
        dense[k, sj] = dual_coef[i, sj]
    return dense, np.array(pairs, dtype=np.int64)
