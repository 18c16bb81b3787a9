"""Test material for the device tests: smear-like images and tiny real bundles.

The bundles are made the way the project makes them — a Keras model, tf.lite.TFLiteConverter,
convert.bundle.write_bundle — only tiny (32x32 input, a few hundred weights), so they build
in seconds. Each is built once per test session (cached here, shared by all test modules).

Run as a script, it writes the same bundles and images into a folder, with the main
environment's classify outputs beside them, for a second environment that has no TensorFlow
(tflite-runtime, numpy<2; `make test-tflite`, tests/test_device_tflite_runtime.py):

    .venv/bin/python tests/bundles.py OUT_DIR
"""
import json
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("Benign", "Early", "Pre", "Pro")
SIZE = 32
_cache = {}

# per class: background and cell colour (RGB) so a tiny model can tell them apart
_STYLE = [((235, 215, 225), (120, 60, 150)), ((225, 225, 200), (60, 90, 160)),
          ((215, 230, 235), (150, 70, 90)), ((240, 200, 200), (70, 130, 80))]


def smear(label, rng, size=96):
    """An in-focus, well-exposed smear-like RGB image of class index `label`."""
    bg, cell = _STYLE[label]
    img = np.tile(np.array(bg, np.float32), (size, size, 1))
    for _ in range(rng.integers(6, 10)):
        c = rng.uniform(8, size - 8, 2).astype(int)
        r = int(rng.uniform(4, 10))
        colour = (np.array(cell) + rng.normal(0, 12, 3)).tolist()
        cv2.circle(img, (int(c[0]), int(c[1])), r, colour, -1, cv2.LINE_AA)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_image(path, rgb):
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
    return Path(path)


def image_dir(tmp_path_factory, n=12):
    """A folder of n JPEG/PNG smear images, three classes' worth each, cached."""
    if "images" not in _cache:
        _cache["images"] = write_images(tmp_path_factory.mktemp("images"), n)
    return _cache["images"]


def write_images(d, n=12):
    """n smear images (every third a PNG, the rest JPEG) into folder d, the same each time."""
    rng = np.random.default_rng(1)
    for i in range(n):
        suffix = ".png" if i % 3 == 0 else ".jpg"
        write_image(Path(d) / f"img_{i:03d}{suffix}", smear(i % 4, rng))
    return Path(d)


def _keras_model(features_only, seed):
    import keras
    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)  # normalisation inside the model
    x = keras.layers.Conv2D(6, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if not features_only:
        x = keras.layers.Dense(4, activation="softmax")(x)
    return keras.Model(inp, x)


def _representative(n=24):
    rng = np.random.default_rng(2)
    for i in range(n):
        yield [cv2.resize(smear(i % 4, rng), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
               .astype(np.float32)[None]]


def to_tflite(model, int8=False, io_type=None):
    """float32 model, or full-integer with `io_type` I/O (default uint8, the device's)."""
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:  # full-integer: uint8 in, integer ops only, uint8 out
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = _representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = io_type or tf.uint8
        conv.inference_output_type = io_type or tf.uint8
    return conv.convert()


def _fields(kind, name, quant):
    return {"kind": kind, "name": name, "quantization": quant,
            "source_model": {"id": "test-" + name, "backbone": "tiny", "weights": "random"},
            "split_id": "test-split", "metrics": None}


def cnn_bundle(tmp_path_factory, int8=False):
    """A 'cnn' bundle (float32 or full-int8 with uint8 input), built once per session."""
    key = ("cnn", int8)
    if key not in _cache:
        from alledge.convert.bundle import write_bundle
        quant = "int8" if int8 else "float32"
        tflite = to_tflite(_keras_model(False, seed=3), int8=int8)
        out = tmp_path_factory.mktemp("bundles") / f"cnn-{quant}"
        _cache[key] = write_bundle(out, tflite, _fields("cnn", f"tiny-cnn-{quant}", quant))
    return _cache[key]


def svm_bundle(tmp_path_factory):
    """An 'svm' bundle: tiny float32 extractor + calibrated linear SVM, and the sklearn model.

    Returns (bundle dir, fitted CalibratedClassifierCV) so tests can compare against sklearn.
    """
    if "svm" not in _cache:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        from alledge.convert.bundle import write_bundle
        from alledge.train.svm_export import export_svm
        tflite = to_tflite(_keras_model(True, seed=4))
        rng = np.random.default_rng(5)
        y = np.arange(80) % 4
        x = np.stack([tflite_features(tflite, smear(c, rng)) for c in y])
        pipe = Pipeline([("scaler", StandardScaler()), ("svc", SVC(kernel="linear", C=1.0))])
        model = CalibratedClassifierCV(pipe, method="sigmoid", cv=3, ensemble=False).fit(x, y)
        work = tmp_path_factory.mktemp("svm")
        svm_path = export_svm(model, work / "svm.npz", class_names=CLASSES)
        out = tmp_path_factory.mktemp("bundles") / "svm-float32"
        write_bundle(out, tflite, _fields("svm", "tiny-svm-float32", "float32"),
                     svm_path=svm_path)
        _cache["svm"] = (out, model)
    return _cache["svm"]


def tflite_features(tflite, rgb):
    """Run the device's own preprocessing and interpreter on one image."""
    from alledge.device import runtime
    from alledge.device.preprocess import preprocess
    _, _, Interpreter, _ = runtime.runtime()
    interp = Interpreter(model_content=tflite)
    interp.allocate_tensors()
    runtime.set_input(interp, preprocess(rgb, SIZE, np.float32))
    interp.invoke()
    return runtime.get_output(interp).astype(np.float64)


# --- the test set for a second environment ------------------------------------------------

TEST_SET = {"cnn-float32": lambda f: cnn_bundle(f),
            "cnn-int8": lambda f: cnn_bundle(f, int8=True),
            "svm-float32": lambda f: svm_bundle(f)[0]}
REFERENCE = "reference.json"


class _Folders:
    """The one method of pytest's tmp_path_factory the builders use, on a plain folder."""

    def __init__(self, root):
        self.root = Path(root)

    def mktemp(self, name):
        for i in range(1000):
            d = self.root / f"{name}{i}"
            if not d.exists():
                d.mkdir(parents=True)
                return d
        raise OSError(f"too many folders named {name} in {self.root}")


def write_test_set(out, tmp_path_factory=None):
    """Bundles (TEST_SET), images/ and reference.json in `out`; needs TensorFlow.

    reference.json holds what `alledge classify --json` gave for every bundle and image in
    this environment, and the runtime that gave it, for another environment to compare with.
    """
    from click.testing import CliRunner

    from alledge.device.cli import main
    from alledge.device.runtime import runtime
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        factory = tmp_path_factory or _Folders(tmp)
        for name, build in TEST_SET.items():
            shutil.copytree(build(factory), out / name)
        shutil.copytree(image_dir(factory), out / "images")
        if tmp_path_factory is None:  # the cache points into tmp, about to go
            _cache.clear()
    module, version, _, _ = runtime()
    results = {}
    for name in TEST_SET:
        r = CliRunner().invoke(main, ["classify", str(out / "images"), "--bundle",
                                      str(out / name), "--json", "--no-log"])
        if r.exit_code != 0:
            raise RuntimeError(f"classify with {name} exited {r.exit_code}: {r.output}")
        rows = [json.loads(line) for line in r.output.splitlines()]
        results[name] = {Path(row["path"]).name: {"label": row["label"],
                                                 "probabilities": row["probabilities"]}
                         for row in rows}
    reference = {"runtime": {"module": module, "version": version},
                 "numpy": np.__version__, "results": results,
                 "default_real": default_bundle_on_real_images()}
    (out / REFERENCE).write_text(json.dumps(reference, indent=1) + "\n")
    return out


# The shipped default bundle on real test images of the paper split (every 25th: 40 images,
# all four classes), when ALLEDGE_DATA names the dataset: another runtime must agree with it.
REAL_SAMPLE_STEP = 25


def default_bundle_on_real_images():
    """{data, bundle, results {relative path: {label, status, probabilities}}} or None."""
    import csv
    import os

    from alledge.device.bundle import DEFAULT_BUNDLE, load_bundle
    from alledge.device.classify import Classifier, classify_data
    value = os.environ.get("ALLEDGE_DATA", "")
    if not value:
        return None
    root = Path(value)
    if (root / "Original").is_dir():
        root = root / "Original"
    split = Path(__file__).resolve().parent.parent / "results" / "splits" / "paper.csv"
    with split.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["subset"] == "test"][::REAL_SAMPLE_STEP]
    classifier = Classifier(load_bundle(DEFAULT_BUNDLE))
    results = {}
    for r in rows:
        record = classify_data(classifier, (root / r["path"]).read_bytes(), r["path"])
        results[r["path"]] = {k: record.get(k) for k in ("label", "status", "probabilities")}
    return {"data": str(root.resolve()), "bundle": classifier.bundle.id, "results": results}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/bundles.py OUT_DIR")
    print(f"test set written to {write_test_set(sys.argv[1])}")
