"""Test material for the device tests: smear-like images and tiny real bundles.

The bundles are made the way the project makes them — a Keras model, tf.lite.TFLiteConverter,
convert.bundle.write_bundle — only tiny (32x32 input, a few hundred weights), so they build
in seconds. Each is built once per test session (cached here, shared by all test modules).
"""
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
        d = tmp_path_factory.mktemp("images")
        rng = np.random.default_rng(1)
        for i in range(n):
            suffix = ".png" if i % 3 == 0 else ".jpg"
            write_image(d / f"img_{i:03d}{suffix}", smear(i % 4, rng))
        _cache["images"] = d
    return _cache["images"]


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
        from alledge.convert.svm_export import export_svm
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
