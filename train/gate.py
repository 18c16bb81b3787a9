"""Fit what lets a bundle refuse to guess: the out-of-domain score and the prediction sets.

Both are fitted on the training split only, from the features the DEVICE computes (the
bundle's own quantized extractor through LiteRT), so the thresholds hold for what the Pi sees.

- Out-of-domain: class-conditional Mahalanobis distance with a shared covariance on the first
  K principal components (alledge.device.ood). The threshold is the (1 - flag_rate) quantile
  of out-of-fold training scores: each training image is scored by a score fitted without it,
  as a new in-domain image would be.
- Prediction sets: LAC split-conformal (alledge.device.conformal). For an SVM bundle,
  calibrated by 5-fold cross-conformal on the training split: each training image's
  probabilities come from the SVM recipe refitted without it (the shipped SVM's own
  hyperparameters), so every training image is held out once and none is taken away from
  the shipped model. A CNN cannot be refitted five times here: it is calibrated on the 10%
  of the training split its training held out (alledge.train.cnn.validation_split), which
  chose the best epoch but never set a weight.
"""
import numpy as np

QUALITY_BIN = 200          # images per bin when fitting a quality threshold
QUALITY_MARGIN = 0.05      # a bin is readable while within this of the clean accuracy

DEFAULT_COMPONENTS = 64
DEFAULT_FLAG_RATE = 0.01   # share of in-domain images flagged, by construction
DEFAULT_COVERAGE = 0.95
RIDGE = 1e-6               # relative, keeps the pooled covariance invertible


def fit_mahalanobis(x, y, n_components=DEFAULT_COMPONENTS):
    """Training features (n, d) and labels -> dict of the arrays alledge.device.ood reads."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    # Principal axes from the SVD of the centred features (no sklearn needed).
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    components = vt[:min(n_components, vt.shape[0])]
    z = (x - mean) @ components.T
    classes = np.unique(y)
    class_means = np.stack([z[y == c].mean(axis=0) for c in classes])
    within = z - class_means[np.searchsorted(classes, y)]
    cov = within.T @ within / len(z)
    cov += RIDGE * np.trace(cov) / len(cov) * np.eye(len(cov))
    return {"mean": mean, "components": components, "class_means": class_means,
            "precision": np.linalg.inv(cov)}


def mahalanobis_scores(arrays, x):
    from alledge.device.ood import MahalanobisScore
    return MahalanobisScore(arrays).score(np.atleast_2d(x))


def out_of_fold(x, y, fit, score, folds=5, seed=0):
    """Scores of every training image from a model fitted on the other folds."""
    from sklearn.model_selection import StratifiedKFold
    out = None
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        s = score(fit(x[tr], y[tr]), x[te])
        if out is None:
            out = np.zeros((len(x),) + np.shape(s)[1:])
        out[te] = s
    return out


def ood_threshold(oof_scores, flag_rate=DEFAULT_FLAG_RATE):
    return float(np.quantile(oof_scores, 1.0 - flag_rate, method="higher"))


def lac_threshold(probabilities, y, coverage=DEFAULT_COVERAGE):
    """Calibration probabilities (n, C) and true labels -> the device's probability threshold.

    q is the ceil((n+1) * coverage) / n empirical quantile of 1 - p(true class); a class joins
    the set when its probability is >= 1 - q.
    """
    s = 1.0 - np.asarray(probabilities)[np.arange(len(y)), y]
    n = len(s)
    level = min(1.0, np.ceil((n + 1) * coverage) / n)
    q = float(np.quantile(s, level, method="higher"))
    return 1.0 - q


def svm_recipe(params, seed=0):
    """The shipped SVM's recipe with its chosen hyperparameters (no grid search)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    def fit(x, y):
        pipe = Pipeline([("scaler", StandardScaler()),
                         ("svc", SVC(**{k: v for k, v in params.items()}))])
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        return CalibratedClassifierCV(pipe, method="sigmoid", cv=folds, ensemble=False).fit(x, y)
    return fit


def fit_gate(x, y, svm_params=None, n_components=DEFAULT_COMPONENTS, flag_rate=DEFAULT_FLAG_RATE,
             coverage=DEFAULT_COVERAGE, seed=0, calibration=None, held_out=None,
             held_out_captures=None):
    """Training features and labels -> (ood arrays, manifest fields for `ood` and `conformal`).

    Prediction sets are calibrated by cross-conformal refits of the SVM recipe
    (svm_params), or on given held-out `calibration` = (probabilities, labels).
    held_out: indices of training images the network never learnt from (a fine-tuned or
    trained CNN's validation part). Its features of the images it trained on sit closer to
    the class means than a new image's would, so the score is then fitted on the others and
    its threshold set on these; without it (a frozen extractor, whose features of every
    training image are as new), on out-of-fold scores of all of them.
    held_out_captures: features of ordinary captures of the held-out images
    (alledge.train.capture_changes.ordinary); their scores join the threshold's, so that
    an ordinary capture change is not called foreign.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if held_out is None:
        arrays = fit_mahalanobis(x, y, n_components)
        oof = out_of_fold(x, y, lambda a, b: fit_mahalanobis(a, b, n_components),
                          mahalanobis_scores, seed=seed)
        threshold_from = "out-of-fold scores of the training split"
    else:
        rest = np.setdiff1d(np.arange(len(x)), held_out)
        arrays = fit_mahalanobis(x[rest], y[rest], n_components)
        oof = mahalanobis_scores(arrays, x[held_out])
        threshold_from = "scores of the validation part the network never trained on"
        if held_out_captures is not None and len(held_out_captures):
            oof = np.concatenate([oof, mahalanobis_scores(arrays, held_out_captures)])
            threshold_from += (f", and of {len(held_out_captures)} ordinary captures of it "
                               "(alledge.train.capture_changes.ordinary)")
    threshold = ood_threshold(oof, flag_rate)
    if calibration is None:
        fit = svm_recipe(svm_params, seed)
        cal_p = out_of_fold(x, y, fit, lambda m, a: m.predict_proba(a), seed=seed)
        cal_y, how = y, "5-fold cross-conformal on the training split"
    else:
        cal_p, cal_y = (np.asarray(a) for a in calibration)
        how = "the CNN's validation part of the training split (10%, held out from training)"
    p_threshold = lac_threshold(cal_p, cal_y, coverage)
    sets = cal_p >= p_threshold
    ood = {"method": "mahalanobis-pca", "file": "ood.npz", "components": int(len(arrays["components"])),
           "threshold": threshold, "target_flag_rate": flag_rate,
           "threshold_from": threshold_from, "n_threshold": int(len(oof)),
           "oof_flag_rate": float(np.mean(oof > threshold)), "n_train": int(len(x)),
           "fitted_on": "training split, features of this bundle's extractor"}
    conformal = {"method": "lac", "coverage": coverage, "threshold": p_threshold,
                 "calibration": how, "n_calibration": int(len(cal_y)),
                 "calibration_coverage": float(np.mean(
                     sets[np.arange(len(cal_y)), cal_y]
                     | ((cal_p.argmax(1) == cal_y) & ~sets.any(1)))),
                 "calibration_mean_set_size": float(np.mean(np.maximum(sets.sum(1), 1)))}
    return arrays, ood, conformal


def quality_threshold(values, correct, target, low_is_bad=True, bin_size=QUALITY_BIN):
    """The loosest threshold on a quality measure that keeps what the model reads well.

    values: the measure of each image of a degradation series (e.g. sharpness of blurred
    validation images); correct: whether the model's top class was right on it. The images
    are taken from the best end of the measure in bins of `bin_size`; the threshold is the
    last value of the last bin before the first whose accuracy falls under `target` (the
    worst value seen when none does). Returns (threshold, accuracy of the accepted images).
    """
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(correct, dtype=bool)
    order = np.argsort(-v if low_is_bad else v, kind="stable")
    v, c = v[order], c[order]
    end = len(v)
    for start in range(0, len(v), bin_size):
        if c[start:start + bin_size].mean() < target:
            end = start
            break
    if end == 0:
        return float(v[0]), 0.0
    return float(v[end - 1]), float(c[:end].mean())
