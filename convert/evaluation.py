"""Evaluate a bundle on the test split through the device code path.

The same Classifier (LiteRT interpreter, preprocessing, plain-weights SVM) that runs on the
Pi produces every figure, so what the report says is what the device does.
"""
import time

import numpy as np

from alledge.device.bundle import load_bundle
from alledge.device.classify import Classifier
from alledge.device.images import read_rgb

# A blood cell has no orientation: these views should not change the answer.
TRANSFORMS = {
    "rot90": lambda im: np.rot90(im, 1),
    "rot180": lambda im: np.rot90(im, 2),
    "rot270": lambda im: np.rot90(im, 3),
    "flip": lambda im: im[:, ::-1],
}


def load_test_images(root, rows):
    """Decoded RGB test images, once, for all bundles and views."""
    return [read_rgb(root / r["path"]) for r in rows]


def predict(classifier, images, transform=None):
    """(probabilities [n, classes], per-image seconds of prepare+invoke+svm)."""
    probs, secs = [], []
    for rgb in images:
        if transform is not None:
            rgb = np.ascontiguousarray(transform(rgb))
        t0 = time.perf_counter()
        probs.append(classifier.to_probabilities(classifier.infer(classifier.prepare(rgb))))
        secs.append(time.perf_counter() - t0)
    return np.array(probs), np.array(secs)


def bundle_classifier(bundle_dir, threads=None):
    return Classifier(load_bundle(bundle_dir), threads=threads)
