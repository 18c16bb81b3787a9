"""Prediction sets: every class the model cannot rule out at the bundle's stated coverage.

Split-conformal with the LAC score (Sadinle, Lei and Wasserman, 2019): on the desktop, for
held-out calibration images, s = 1 - p(true class); q = the ceil((n+1)(1-alpha))/n quantile
of s (alledge.train.gate). On the device a class is in the set when p >= 1 - q: a plain
threshold, stored in the manifest as `conformal.threshold`. With exchangeable data the set
holds the true class with probability >= 1 - alpha.

An empty set (every probability below the threshold) becomes the top class alone, so an
answered image always names at least one class; this can only raise the coverage.
"""
import numpy as np


def prediction_set(probabilities, classes, threshold):
    """Probabilities (in class order) -> list of class names, most probable first."""
    p = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(-p, kind="stable")
    chosen = [classes[i] for i in order if p[i] >= threshold]
    return chosen or [classes[int(order[0])]]
