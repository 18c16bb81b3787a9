"""Image -> class and probabilities, with a verified bundle. The same for files and frames.

For a 'cnn' bundle the model outputs the probabilities; for an 'svm' bundle the model is a
feature extractor and the plain-weights SVM (alledge.device.svm) turns its features into
calibrated probabilities. Each stage is its own method so `alledge bench` can time them.
"""
import glob
import hashlib
import os
import time
from pathlib import Path

import numpy as np

from . import runtime
from .bundle import BundleError
from .images import ImageError, decode_rgb, is_regular_file
from .preprocess import preprocess
from .svm import SvmError, load_svm

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class Classifier:
    def __init__(self, bundle, threads=None, delegate=None):
        self.bundle = bundle
        model = bundle.model_path
        if delegate == "edgetpu":
            model = bundle.edgetpu_model_path
            if model is None:
                raise runtime.DelegateError(f"{bundle.path}: this bundle has no Edge TPU model "
                                            "(convert it with --edgetpu)")
        self.interpreter = runtime.make_interpreter(model, threads=threads, delegate=delegate)
        self.size = bundle.input_size
        self.dtype = np.dtype(bundle.input_dtype)
        if runtime.input_size(self.interpreter) != self.size:
            raise BundleError(f"{model}: input size {runtime.input_size(self.interpreter)} "
                              f"does not match the manifest's {self.size}")
        self.svm = self._load_svm() if bundle.kind == "svm" else None
        if self.svm is None:  # at load, not mid-batch: a CNN gives one output per class
            n_out = int(runtime.output_details(self.interpreter)["shape"][-1])
            if n_out != len(bundle.classes):
                raise BundleError(f"{model}: model gives {n_out} outputs for the manifest's "
                                  f"{len(bundle.classes)} classes")

    def _load_svm(self):
        try:
            svm = load_svm(self.bundle.svm_path)
        except SvmError as e:
            raise BundleError(str(e)) from None
        if svm.classes != self.bundle.classes:
            raise BundleError(f"{self.bundle.svm_path}: classes {list(svm.classes)} differ "
                              f"from the manifest's {list(self.bundle.classes)}")
        n_features = int(np.prod(runtime.output_details(self.interpreter)["shape"][1:]))
        if svm.n_features != n_features:
            raise BundleError(f"{self.bundle.svm_path}: SVM takes {svm.n_features} features, "
                              f"the extractor gives {n_features}")
        return svm

    # stages
    def prepare(self, rgb):
        return preprocess(rgb, self.size, self.dtype)

    def infer(self, x):
        runtime.set_input(self.interpreter, x)
        runtime.invoke(self.interpreter)
        return runtime.get_output(self.interpreter)

    def to_probabilities(self, output):
        if self.svm is None:
            return np.asarray(output, dtype=np.float64)
        return self.svm.predict_proba(output[None, :])[0]

    # whole
    def classify_rgb(self, rgb):
        """HxWx3 uint8 RGB -> result dict {label, probabilities, latency_ms}."""
        start = time.perf_counter()
        probs = self.to_probabilities(self.infer(self.prepare(rgb)))
        return self.result(probs, time.perf_counter() - start)

    def classify_bytes(self, data):
        """Encoded JPEG/PNG -> result dict; latency includes decoding. Raises ImageError."""
        start = time.perf_counter()
        rgb = decode_rgb(data)
        probs = self.to_probabilities(self.infer(self.prepare(rgb)))
        return self.result(probs, time.perf_counter() - start)

    def result(self, probs, seconds):
        if len(probs) != len(self.bundle.classes):
            raise BundleError(f"{self.bundle.model_path}: model gives {len(probs)} outputs for "
                              f"{len(self.bundle.classes)} classes")
        classes = self.bundle.classes
        return {
            "label": classes[int(np.argmax(probs))],
            "probabilities": {c: float(p) for c, p in zip(classes, probs)},
            "latency_ms": round(seconds * 1000.0, 3),
        }


def classify_data(classifier, data, path):
    """Encoded image bytes -> the record `classify --json` prints for them.

    The one code path of the CLI and the web app: `path` is only the name shown; a file
    that cannot be classified gives an error record, never an exception.
    """
    try:
        result = classifier.classify_bytes(data)
    except ImageError as e:
        return error_record(path, str(e))
    return result_record(path, result, classifier.bundle.id)


def result_record(path, result, bundle_id):
    """The one object `classify --json` prints (and `serve`'s /api/classify returns)."""
    return {"path": path, "label": result["label"],
            "probabilities": result["probabilities"],
            "latency_ms": result["latency_ms"], "bundle": bundle_id}


def error_record(path, error):
    return {"path": path, "error": error}


def format_record(record):
    """One line of text for a result or error record."""
    if "error" in record:
        return f"{record['path']}: error: {record['error']}"
    return f"{record['path']}: {format_result(record)}"


def format_result(result):
    """Label, probabilities and latency of a result, as words."""
    probs = "  ".join(f"{c} {p:.3f}" for c, p in result["probabilities"].items())
    return f"{result['label']}  ({probs})  {result['latency_ms']:.1f} ms"


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def expand_inputs(args):
    """IMAGE arguments -> list of (path, error or None), in order.

    A folder gives the JPEG/PNG files directly inside it, sorted; a pattern with * ? [ gives
    its matches, sorted; anything else is taken as a file (a bad one is reported later).
    An entry named like an image that is not a regular file (a FIFO, a device) is listed
    with its error, never skipped without a word nor opened (a FIFO would block).
    """
    out = []
    for arg in args:
        if os.path.isdir(arg):
            try:
                names = sorted(p for p in Path(arg).iterdir()
                               if p.suffix.lower() in IMAGE_SUFFIXES)
            except OSError as e:  # an unreadable folder is one bad input, not a traceback
                out.append((arg, f"cannot list the folder ({e.strerror})"))
                continue
            if not names:
                out.append((arg, "folder holds no .jpg/.jpeg/.png images"))
            out.extend(_entry(str(p)) for p in names)
        elif not os.path.lexists(arg) and glob.has_magic(arg):
            matches = sorted(m for m in glob.glob(arg) if not os.path.isdir(m))
            if not matches:
                out.append((arg, "pattern matches no files"))
            out.extend(_entry(m) for m in matches)
        else:
            out.append((arg, None))
    return out


def _entry(path):
    if is_regular_file(path):
        return path, None
    return path, "not a regular file (a FIFO, device or broken link): skipped"


def shown_path(path):
    """A path as one printable line of valid UTF-8, for output and the results log.

    File names are bytes on Linux: a name that is not UTF-8 arrives with surrogate escapes
    (os.fsdecode), which can be neither printed nor stored in SQLite. Such bytes are shown
    as \\xff, control characters (a newline in a name) as their escapes.
    """
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
