"""Model directory -> verified bundle: convert, (compile for the Edge TPU), write, evaluate."""
import tempfile
from pathlib import Path

import numpy as np

from alledge.device import exitcodes
from alledge.device.bundle import load_bundle
from alledge.device.messages import first_line

from .bundle import EDGETPU_FILE, write_bundle
from .tflite import compile_edgetpu, convert_model, representative_rows


class ConvertError(RuntimeError):
    def __init__(self, message, code=exitcodes.USAGE):
        super().__init__(message)
        self.code = code


def _read_model_dir(model_dir):
    from alledge.train.modeldir import KERAS_FILE, SVM_FILE, file_sha256, read_model_info
    model_dir = Path(model_dir)
    try:
        info = read_model_info(model_dir)
    except (FileNotFoundError, ValueError) as e:
        raise ConvertError(str(e)) from None
    if info.get("kind") not in ("cnn", "svm"):
        raise ConvertError(f"{model_dir}: a {info.get('kind')} model has no network to convert")
    keras_path = model_dir / KERAS_FILE
    svm_path = model_dir / SVM_FILE if info["kind"] == "svm" else None
    for p in (keras_path, svm_path):
        if p is not None and not p.is_file():
            raise ConvertError(f"{p}: missing from the model directory")
    return info, keras_path, svm_path, file_sha256(keras_path)


def _no_validation_part(where):
    """A CNN trained with --no-validation: its gate (quality and out-of-domain thresholds) is
    fitted on the validation part, which that model learnt from."""
    return ConvertError(f"{where}: this CNN held no validation part out (trained with "
                        "--no-validation), so its gate would be fitted on images it learnt from")


def _split_rows(info, split_csv):
    from alledge.train.split import read_split
    path = split_csv or info.get("split_file")
    if not path or not Path(path).is_file():
        raise ConvertError("the split CSV is needed (--split): the model's own split file "
                           f"{path!r} is not found")
    rows, split_id = read_split(path)
    if split_id != info.get("split_id"):
        raise ConvertError(f"{path} is not the split the model was trained on "
                           f"(id {split_id[:12]} vs {str(info.get('split_id'))[:12]})")
    return rows


def build_bundle(model_dir, out, quant, data_dir=None, split_csv=None, calibration=200,
                 edgetpu=False, evaluate=True, gate=True, white_point=False, log=print):
    """gate: fit the out-of-domain gate and prediction sets ('svm' bundles, with data).
    The report turns it off: its bundles compare quantization levels, and fitting twelve
    gates would add about twenty minutes to `make reproduce`."""
    import keras
    from alledge.train.dataset import resolve_root
    from alledge.train.loader import load_arrays
    info, keras_path, svm_path, model_id = _read_model_dir(model_dir)
    needs_data = quant == "int8" or evaluate
    rows = root = None
    if needs_data:
        if not data_dir:
            raise ConvertError("--data is needed for int8 calibration and for test metrics "
                               "(or pass --no-eval for a float bundle without metrics)")
        rows = _split_rows(info, split_csv)
        root = resolve_root(data_dir)
    try:
        model = keras.saving.load_model(keras_path)  # safe_mode: no code from the file
    except Exception as e:  # keras raises many types for a damaged or foreign file
        raise ConvertError(f"{keras_path}: cannot be loaded as a Keras model "
                           f"({first_line(e)})") from None
    size = int(model.input_shape[1])
    unvalidated = info["kind"] == "cnn" and info.get("n_val") == 0
    learnt = info.get("white_point")  # the model learnt on inputs scaled to it: it is its own
    if learnt:
        white_point = {**learnt, "learnt": True}
    calib = None
    if quant == "int8":
        picked = representative_rows(rows, calibration)
        log(f"calibrating on {len(picked)} training images")
        calib, _ = load_arrays(root, picked, size, progress=False)
        if learnt:
            from alledge.train.finetune import with_white_point
            calib = with_white_point(calib, white_point)
    tflite = convert_model(model, quant, calib, output_uint8=(info["kind"] == "cnn"),
                           features=(info["kind"] == "cnn"))
    edgetpu_bytes = _edgetpu(tflite, log) if edgetpu else None
    fields = {
        "kind": info["kind"], "name": f"{info['name']}-{quant}", "quantization": quant,
        "source_model": {"id": model_id, "backbone": info.get("backbone"),
                         "weights": info.get("weights_id"), "dir": str(model_dir),
                         # so that `alledge gate` refuses it too
                         **({"no_validation_part": True} if unvalidated else {})},
        "split_id": info.get("split_id"), "metrics": None,
        **({"white_point": white_point} if learnt else {}),
    }
    scorer = (lambda bundle: evaluate_on_test(bundle, root, rows)) if evaluate else None
    hook = None
    if gate and rows is not None:
        if unvalidated:
            raise _no_validation_part(model_dir)
        from .gate import gate_for
        hook = gate_for(root, rows, (info.get("svm") or {}).get("best_params") or {},
                        white_point=white_point, log=log)
    write_bundle(out, tflite, fields, svm_path=svm_path, edgetpu_bytes=edgetpu_bytes,
                 evaluate=scorer, gate=hook)
    return load_bundle(out).manifest


def regate_bundle(bundle_dir, data_dir, split_csv, model_dir, flag_rate, coverage,
                  white_point=False, log=print):
    """Fit the out-of-domain gate and prediction sets of an existing bundle anew and rewrite
    it in place: the model and SVM bytes and the training scale are kept, the manifest is
    written once."""
    from .gate import gate_for, svm_params_of
    old, rows, root = _bundle_and_its_split(bundle_dir, data_dir, split_csv)
    if old.kind == "cnn" and old.manifest.get("features_output") is None:
        raise ConvertError(f"{bundle_dir}: this CNN bundle's model has no features output "
                           "(convert it again with this alledge)")
    if old.kind == "cnn" and (old.manifest.get("source_model") or {}).get("no_validation_part"):
        raise _no_validation_part(bundle_dir)
    params = None
    if old.kind == "svm":
        if not model_dir:
            raise ConvertError("an svm bundle's gate needs --model-dir (the SVM's "
                               "hyperparameters are refitted per fold)")
        try:
            params = svm_params_of(model_dir)
        except (OSError, ValueError) as e:
            raise ConvertError(first_line(e)) from None
    learnt = (old.manifest.get("preprocessing") or {}).get("white_point") or {}
    if learnt.get("learnt"):  # the model's own, whatever was asked
        white_point = learnt
    fit = gate_for(root, rows, params, flag_rate, coverage, white_point, log=log)
    kept = {k: old.manifest[k] for k in ("scale",) if k in old.manifest}  # not the gate's

    def hook(bundle):
        files, sections = fit(bundle)
        return files, {**kept, **sections}
    return _rewrite(old, hook, evaluate=lambda b: evaluate_on_test(b, root, rows))


def _bundle_and_its_split(bundle_dir, data_dir, split_csv):
    """(Bundle, split rows, dataset root) for rewriting a bundle; the split must be the one
    the bundle was trained on."""
    from alledge.device.bundle import BundleError
    from alledge.train.dataset import resolve_root
    from alledge.train.split import read_split
    try:
        old = load_bundle(bundle_dir)
    except BundleError as e:
        raise ConvertError(str(e), exitcodes.BAD_BUNDLE) from None
    try:
        rows, split_id = read_split(split_csv)
        root = resolve_root(data_dir)
    except (OSError, ValueError) as e:
        raise ConvertError(first_line(e)) from None
    if split_id != old.manifest.get("split_id"):
        raise ConvertError(f"{split_csv} is not the split the bundle was trained on "
                           f"(id {split_id[:12]} vs {str(old.manifest.get('split_id'))[:12]})")
    return old, rows, root


def _rewrite(old, gate, evaluate):
    """Write an existing bundle again in place through write_bundle (one manifest write):
    its model, Edge TPU model and SVM bytes, identity fields and classes kept; `gate` gives
    the other files and sections, `evaluate` the metrics."""
    m = old.manifest
    fields = {k: m.get(k) for k in ("kind", "name", "quantization", "source_model", "split_id")}
    fields["classes"] = m["classes"]
    edgetpu = old.edgetpu_model_path.read_bytes() if old.edgetpu_model_path else None
    write_bundle(old.path, old.model_path.read_bytes(), fields, svm_path=old.svm_path,
                 edgetpu_bytes=edgetpu, evaluate=evaluate, gate=gate)
    return load_bundle(old.path).manifest


def evaluate_on_test(bundle, root, rows):
    """Test-split metrics of a Bundle, through the device's Classifier; with a gate, also
    what it answers (statuses, accuracy of the answered, prediction-set coverage)."""
    from alledge.device.classify import Classifier
    from alledge.train.evaluate import evaluate
    from alledge.train.split import subset
    from .evaluation import load_test_images, predict
    from .gate import gated_metrics
    test = subset(rows, "test")
    classifier, images = Classifier(bundle), load_test_images(root, test)
    probs, _ = predict(classifier, images)
    metrics = evaluate(np.array([r["label_id"] for r in test]), probs.argmax(1))
    if bundle.manifest.get("ood") or bundle.manifest.get("conformal"):
        truth = [bundle.classes[r["label_id"]] for r in test]
        metrics["gated"] = gated_metrics(classifier, images, truth)
    return metrics


def _edgetpu(tflite, log):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.tflite"
        src.write_bytes(tflite)  # a scratch input for the compiler, not a result
        compiled = compile_edgetpu(src, tmp)
        if compiled is None:
            log("edgetpu_compiler is not installed: kept the int8 model only "
                "(compile it on a machine with the Edge TPU compiler)")
            return None
        log(f"compiled for the Edge TPU: {EDGETPU_FILE}")
        return compiled.read_bytes()


def training_scale(root, rows, log=print):
    """The bundle's `scale` section: the median red-cell diameter (px) the device's own
    estimator (alledge.device.scale) reads on the training images, with its spread."""
    from alledge.device.images import ImageError, read_rgb
    from alledge.device.scale import ScaleError, estimate_diameter
    from alledge.train.split import subset
    values = []
    for r in subset(rows, "train"):
        try:
            values.append(estimate_diameter(read_rgb(Path(root) / r["path"])))
        except (ImageError, ScaleError):
            continue  # counted below: n says how many were read
    if not values:
        raise ConvertError("no training image gave a red-cell scale")
    v = np.array(values)
    median = float(np.median(v))
    log(f"training scale: red cells {median:.2f} px across (median of {len(v)} training images)")
    return {"rbc_diameter_px": round(median, 3), "um_per_px": None,
            "estimator": "alledge.device.scale: green-channel autocorrelation",
            "n_images": len(v), "percentiles": {
                str(p): round(float(np.percentile(v, p)), 3) for p in (1, 5, 50, 95, 99)},
            "measured_on": "training split, the device's decoder and estimator"}


def scale_bundle(bundle_dir, data_dir, split_csv, log=print):
    """Add (or renew) the `scale` section of an existing bundle, rewriting it in place with
    every file and every other section kept (model, SVM, gate, metrics): one manifest write."""
    from .gate import GATE_SECTIONS
    old, rows, root = _bundle_and_its_split(bundle_dir, data_dir, split_csv)
    section = training_scale(root, rows, log=log)
    m = old.manifest
    kept_files = {name: (old.path / name).read_bytes() for name in m["files"]
                  if name not in (m.get("model_file"), m.get("edgetpu_model_file"),
                                  m.get("svm_file"))}
    kept = {k: m[k] for k in GATE_SECTIONS if k in m}
    return _rewrite(old, lambda b: (kept_files, {**kept, "scale": section}),
                    evaluate=lambda b: m.get("metrics"))
