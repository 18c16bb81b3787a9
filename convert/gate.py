"""Fit a bundle's out-of-domain gate and prediction sets, and measure what it refuses.

`gate_for(root, rows, svm_params)` gives the `gate` hook of convert.bundle.write_bundle: it
runs the staged bundle's own extractor (LiteRT, the device code path) over the training
images, fits alledge.train.gate on those features, and returns ood.npz and the manifest's
`ood` and `conformal` sections. `alledge gate BUNDLE` re-fits an existing bundle in place.
"""
import io
from pathlib import Path

import numpy as np

from alledge.device.classify import Classifier
from alledge.device.images import read_rgb
from alledge.device.ood import save_ood
from alledge.train import gate as fit
from alledge.train.split import subset

OOD_FILE = "ood.npz"


def bundle_features(classifier, root, rows):
    """Features (n, d) and probabilities (n, C) of the given split rows, as the device
    computes them (an SVM bundle: its extractor's output; a CNN: its penultimate layer)."""
    feats, probs = [], []
    for r in rows:
        out = classifier.infer(classifier.prepare(read_rgb(Path(root) / r["path"])))
        feats.append(classifier.features(out))
        probs.append(classifier.to_probabilities(out))
    return np.stack(feats), np.stack(probs)


def gate_for(root, rows, svm_params, flag_rate=fit.DEFAULT_FLAG_RATE,
             coverage=fit.DEFAULT_COVERAGE, log=print):
    """The write_bundle hook: staged Bundle -> ({ood.npz: bytes}, {ood, conformal})."""
    train = subset(rows, "train")
    y = np.array([r["label_id"] for r in train])

    def hook(bundle):
        c = Classifier(bundle)
        if c.n_features is None:
            log("no out-of-domain gate: this model does not expose its features")
            return {}, {}
        log(f"fitting the out-of-domain gate and prediction sets on {len(train)} training images")
        x, p = bundle_features(c, root, train)
        calibration = va = None
        if bundle.kind == "cnn":  # the part of the training split the CNN never learnt from
            from alledge.train.cnn import validation_split
            _, va = validation_split(y, 0.1, seed=42)
            calibration = (p[va], y[va])
        arrays, ood, conformal = fit.fit_gate(x, y, svm_params, flag_rate=flag_rate,
                                              coverage=coverage, calibration=calibration,
                                              held_out=va)
        buf = io.BytesIO()
        save_ood(buf, **arrays, classes=bundle.classes)
        ood["file"] = OOD_FILE
        return {OOD_FILE: buf.getvalue()}, {"ood": ood, "conformal": conformal}
    return hook


def svm_params_of(model_dir):
    """The SVM hyperparameters the model directory's grid search chose (model.json)."""
    from alledge.train.modeldir import read_model_info
    info = read_model_info(model_dir)
    params = (info.get("svm") or {}).get("best_params")
    if not params:
        raise ValueError(f"{model_dir}: model.json names no SVM hyperparameters")
    return params


def gated_metrics(classifier, images, truth):
    """Figures of a gated bundle on decoded images through Classifier.classify_rgb: statuses,
    accuracy of the answered images, correct of all, prediction-set coverage and size."""
    return outcome_figures([classifier.classify_rgb(rgb) for rgb in images], truth)


def outcome_figures(results, truth):
    """Results (Classifier dicts or classify records) and true class names -> figures."""
    n = len(results)
    status = [r.get("status", "ok") for r in results]
    ok = [i for i in range(n) if status[i] == "ok"]
    right = [i for i in ok if results[i]["label"] == truth[i]]
    covered = [i for i in ok if truth[i] in results[i]["prediction_set"]]
    return {
        "n": n,
        "answered": len(ok) / n if n else 0.0,
        "out_of_domain": status.count("out_of_domain") / n if n else 0.0,
        "rejected": status.count("rejected") / n if n else 0.0,
        "errors": status.count("error") / n if n else 0.0,
        "accuracy_of_answered": len(right) / len(ok) if ok else 0.0,
        "correct_of_all": len(right) / n if n else 0.0,
        "set_coverage": len(covered) / len(ok) if ok else 0.0,
        "mean_set_size": float(np.mean([len(results[i]["prediction_set"]) for i in ok]))
        if ok else 0.0,
    }
