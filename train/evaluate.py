"""Honest evaluation: accuracy, macro-F1, per-class figures, confusion matrix, bootstrap CIs."""
import numpy as np

from alledge.device import CLASSES


def confusion(y_true, y_pred, n=len(CLASSES)):
    m = np.zeros((n, n), dtype=int)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def per_class(m):
    tp = np.diag(m).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(m.sum(0) > 0, tp / m.sum(0), 0.0)
        recall = np.where(m.sum(1) > 0, tp / m.sum(1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1


def accuracy(y_true, y_pred):
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def macro_f1(y_true, y_pred, n=len(CLASSES)):
    return float(per_class(confusion(y_true, y_pred, n))[2].mean())


def bootstrap_ci(y_true, y_pred, metric, n_boot=1000, seed=0, level=0.95):
    """Percentile bootstrap interval of metric(y_true, y_pred) over resampled test images."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y_true), (n_boot, len(y_true)))
    vals = np.array([metric(y_true[i], y_pred[i]) for i in idx])
    lo, hi = np.percentile(vals, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return [float(lo), float(hi)]


def evaluate(y_true, y_pred, n_boot=1000, seed=0):
    """All figures for one model on one test set, JSON-ready."""
    m = confusion(y_true, y_pred)
    precision, recall, f1 = per_class(m)
    return {
        "n": int(len(y_true)),
        "accuracy": accuracy(y_true, y_pred),
        "accuracy_ci95": bootstrap_ci(y_true, y_pred, accuracy, n_boot, seed),
        "macro_f1": float(f1.mean()),
        "macro_f1_ci95": bootstrap_ci(y_true, y_pred, macro_f1, n_boot, seed),
        "per_class": {c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for c, p, r, f, s in zip(CLASSES, precision, recall, f1, m.sum(1))},
        "confusion": m.tolist(),
        "confusion_labels": list(CLASSES),
    }
