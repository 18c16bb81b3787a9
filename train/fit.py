"""Train one model of each kind into a model directory. The CLI and Table 3 both call these."""
import time
from pathlib import Path

import numpy as np

from alledge.device import CLASSES
from alledge.device.fileio import atomic_write_json
from alledge.device.preprocess import white_point_from

from .evaluate import evaluate
from .modeldir import KERAS_FILE, SVM_FILE, write_model_info
from .split import subset


def learnt_white_point(x_tr, log=print):
    """The training images' white point, for a network that learns on inputs scaled to it."""
    wp = white_point_from(x_tr)
    wp["measured_on"] += "; the model learnt on inputs scaled to it"
    log(f"white point {wp['target']} (every input scaled to it)")
    return wp


def cnn_model_name(augment, taught):
    """The Improved CNN's model name in model.json: its recipe."""
    return (("improved-cnn-augmented" if augment else "improved-cnn")
            + ("-distilled" if taught else ""))


def fit_cnn_model(data_dir, rows, split_id, out, epochs, patience, batch_size=32,
                  input_size=224, seed=0, split_file="", augment=False, white_point=False,
                  turn_clean=False, ema=False, teacher_dir=None, label_smoothing=0.0,
                  cosine=False, validate=True, log=print):
    """The Improved CNN; with `white_point` it learns, and is tested, on inputs scaled to the
    training images' white point, and model.json carries it (as fit_finetuned_model).
    `teacher_dir`: a model directory of a larger CNN trained on this same split's training
    part, whose probabilities join the targets (alledge.train.cnn.soft_targets)."""
    from .cnn import train_cnn
    from .finetune import with_white_point
    from .loader import load_arrays
    # a teacher that cannot teach is refused before anything is read or written
    teacher, taught = ((None, {}) if teacher_dir is None
                       else _teacher(teacher_dir, split_id, input_size))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr = load_arrays(data_dir, subset(rows, "train"), input_size)
    x_te, y_te = load_arrays(data_dir, subset(rows, "test"), input_size)
    wp = learnt_white_point(x_tr, log) if white_point else None
    t0 = time.time()
    model, info = train_cnn(x_tr, y_tr, out, epochs, patience, batch_size, seed=seed,
                            augment=augment, white_point=wp, turn_clean=turn_clean, ema=ema,
                            teacher=teacher, label_smoothing=label_smoothing, cosine=cosine,
                            validate=validate)
    model.save(out / KERAS_FILE)
    proba = model.predict(with_white_point(x_te, wp), batch_size=64, verbose=0)
    metrics = evaluate(y_te, proba.argmax(1))
    _write_metrics(out, metrics, split_id)
    name = cnn_model_name(augment, teacher_dir is not None)
    info.update(taught)
    write_model_info(out, kind="cnn", name=name, backbone="improved-cnn",
                     weights="trained", weights_id="trained", input_size=input_size,
                     params=int(model.count_params()), split_id=split_id, split_file=split_file,
                     seed=seed, train_seconds=round(time.time() - t0, 1), epochs_max=epochs,
                     patience=patience, batch_size=batch_size,
                     **({"white_point": wp} if wp else {}), **info)
    return metrics


class TeacherError(ValueError):
    """The --teacher directory cannot teach this run; the message says why."""


def _teacher(model_dir, split_id, input_size):
    """(the Keras model of a teacher's model directory, what model.json records of it).
    A teacher that learnt from another split could have seen this split's test images."""
    import keras
    from .modeldir import read_model_info
    try:
        info = read_model_info(model_dir)
    except (FileNotFoundError, ValueError) as e:
        raise TeacherError(f"--teacher: {e}") from None
    if info.get("kind") != "cnn" or not (Path(model_dir) / KERAS_FILE).is_file():
        raise TeacherError(f"{model_dir}: a teacher must be a trained CNN model directory "
                           f"(kind cnn, {KERAS_FILE})")
    if info.get("split_id") != split_id:
        raise TeacherError(f"{model_dir}: the teacher was trained on another split "
                           f"({str(info.get('split_id'))[:12]}, this one {split_id[:12]}): it "
                           "may have seen this split's test images")
    if info.get("input_size") != input_size:
        raise TeacherError(f"{model_dir}: the teacher reads {info.get('input_size')} px "
                           f"inputs, this network {input_size}")
    model = keras.saving.load_model(Path(model_dir) / KERAS_FILE)  # safe_mode: no code run
    return model, {"teacher": {"name": info.get("name"), "dir": str(model_dir),
                               "split_id": split_id}}


def fit_finetuned_model(data_dir, rows, split_id, out, epochs, train_blocks, seed=0,
                        split_file="", white_point=False, max_gain=None, log=print):
    """EfficientNet-Lite0 fine-tuned on augmented captures (alledge.train.finetune). With
    `white_point`, every input is scaled to the training images' white point (the median of
    each channel's 75th percentile) after its augmentation: the model learns what the device
    will feed it, and model.json carries the white point for `alledge convert`."""
    from .backbones import build_backbone, weights_id
    from .finetune import finetune, with_white_point
    from .loader import load_arrays
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = 224
    backbone = build_backbone("efficientnet-lite0", "imagenet", size)
    x_tr, y_tr = load_arrays(data_dir, subset(rows, "train"), size)
    x_te, y_te = load_arrays(data_dir, subset(rows, "test"), size)
    wp = learnt_white_point(x_tr, log) if white_point else None
    t0 = time.time()
    model, info = finetune(x_tr, y_tr, out, backbone, epochs, train_blocks, seed=seed,
                           white_point=wp, max_gain=max_gain, log=log)
    model.save(out / KERAS_FILE)
    proba = model.predict(with_white_point(x_te, wp), batch_size=64, verbose=0)
    metrics = evaluate(y_te, proba.argmax(1))
    _write_metrics(out, metrics, split_id)
    write_model_info(out, kind="cnn", name="efficientnet-lite0-finetuned",
                     backbone="efficientnet-lite0", weights="imagenet, fine-tuned",
                     weights_id=weights_id("imagenet", "efficientnet-lite0"), input_size=size,
                     params=int(model.count_params()), split_id=split_id, split_file=split_file,
                     seed=seed, train_seconds=round(time.time() - t0, 1),
                     **({"white_point": wp} if wp else {}), **info)
    return metrics


def _write_metrics(out, metrics, split_id):
    """metrics.json beside the model, naming the split its test set came from."""
    metrics["split_id"] = split_id
    from .modeldir import provenance
    metrics["provenance"] = provenance()
    atomic_write_json(Path(out) / "metrics.json", metrics)


def _fit_and_write_svm(x_tr, y_tr, x_te, y_te, out, cv, seed):
    from .svm import fit_svm, predict_labels
    from .svm_export import export_svm
    calibrated, summary = fit_svm(x_tr, y_tr, cv=cv, seed=seed)
    export_svm(calibrated, Path(out) / SVM_FILE, class_names=CLASSES)
    metrics = evaluate(y_te, predict_labels(calibrated, x_te))
    return metrics, summary


def fit_svm_model(data_dir, rows, split_id, out, backbone, weights="imagenet", input_size=None,
                  batch_size=32, cv=5, seed=0, split_file=""):
    from .backbones import build_backbone, default_size, weights_id
    from .dataset import resolve_root
    from .features import cached_features
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = input_size or default_size(backbone)
    wid = weights_id(weights, backbone)
    # Built up front even with a warm feature cache: it fails early when weights cannot be
    # had, and the model directory keeps the extractor for conversion.
    model = build_backbone(backbone, weights, size)
    root = resolve_root(data_dir)
    t0 = time.time()
    tr, te = subset(rows, "train"), subset(rows, "test")
    x_tr = cached_features(lambda: model, root, tr, backbone, wid, size, batch_size)
    x_te = cached_features(lambda: model, root, te, backbone, wid, size, batch_size)
    y_tr = np.array([r["label_id"] for r in tr])
    y_te = np.array([r["label_id"] for r in te])
    t_feat = time.time() - t0
    metrics, summary = _fit_and_write_svm(x_tr, y_tr, x_te, y_te, out, cv, seed)
    model.save(out / KERAS_FILE)
    _write_metrics(out, metrics, split_id)
    write_model_info(out, kind="svm", name=f"{backbone}-svm", backbone=backbone,
                     weights=str(weights), weights_id=wid, random_weights=(wid == "random"),
                     input_size=size, params=int(model.count_params()),
                     feature_dim=int(x_tr.shape[1]), split_id=split_id, split_file=split_file,
                     seed=seed, feature_seconds=round(t_feat, 1), svm=summary)
    return metrics


def fit_baseline_model(data_dir, rows, split_id, out, cv=5, seed=0, split_file=""):
    from .colour import BINS, colour_features
    from .loader import load_arrays
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr = load_arrays(data_dir, subset(rows, "train"), 224, progress=False)
    x_te, y_te = load_arrays(data_dir, subset(rows, "test"), 224, progress=False)
    f_tr, f_te = colour_features(x_tr), colour_features(x_te)
    metrics, summary = _fit_and_write_svm(f_tr, y_tr, f_te, y_te, out, cv, seed)
    _write_metrics(out, metrics, split_id)
    write_model_info(out, kind="baseline", name="colour-histogram-svm", backbone="none",
                     weights="none", weights_id="none", input_size=224,
                     features=f"RGB histograms, {BINS} bins per channel",
                     params=0, feature_dim=int(f_tr.shape[1]), split_id=split_id,
                     split_file=split_file, seed=seed, svm=summary)
    return metrics
