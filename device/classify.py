"""Image -> a status, and a class only when the device can judge it. The same for files and frames.

Every image ends in one of four statuses:
    ok             label, probabilities, prediction_set, ood_score, quality
    out_of_domain  the features lie outside what the model was trained on (alledge.device.ood):
                   label null, ood_score and the threshold, a reason
    rejected       the quality gate said no (too small, too dark, overexposed, blank, out of
                   focus: alledge.device.quality), with the measured value; label null
    error          unreadable or corrupt (the record's `error` key)
A bundle without an `ood` section (older bundles) never says out_of_domain, and one without
`conformal` gives the top class alone as its prediction set.

For a 'cnn' bundle the model outputs the probabilities (and, as a second output, its
penultimate features for the out-of-domain score); for an 'svm' bundle the model is a
feature extractor and the plain-weights SVM (alledge.device.svm) turns its features into
calibrated probabilities. Each stage is its own method so `alledge bench` can time them.
"""
import glob
import hashlib
import os
import time
from pathlib import Path

import numpy as np

from . import frames, runtime, scale, tiles
from . import colour, quality
from .bundle import BundleError
from .conformal import prediction_set
from .images import ImageError, decode_rgb, is_regular_file
from .ood import OodError, load_ood
from .preprocess import colour_input, preprocess, white_point_of
from .svm import SvmError, load_svm

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class Classifier:
    def __init__(self, bundle, threads=None, delegate=None, thresholds=None):
        self.bundle = bundle
        try:  # the bundle's own quality thresholds and white point, when it has them
            self.thresholds = (quality.thresholds_of(bundle.manifest) if thresholds is None
                               else thresholds)
            self.white_point = white_point_of(bundle.manifest)
            self.colour_range = colour.colour_range_of(bundle.manifest)
        except ValueError as e:
            raise BundleError(f"{bundle.path}: {e}") from None
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
        # svm: the extractor's output; cnn: its second output, the penultimate features
        self._features = runtime.features_details(self.interpreter) if self.svm is None else None
        self.n_features = (self.svm.n_features if self.svm is not None else
                           int(np.prod(self._features["shape"])) if self._features else None)
        self.ood, self.ood_threshold = self._load_ood()
        self.set_threshold = _number(bundle.manifest, "conformal", "threshold", bundle.path)
        # the scaled path (alledge.device.frames) for bundles that record their training scale
        try:
            self.training_diameter = scale.training_diameter(bundle.manifest)
        except ValueError as e:
            raise BundleError(f"{bundle.path}: {e}") from None
        self.scale_hint = None   # a frames.ScaleHint: --rbc-diameter-px, --um-per-px, calibrate
        self.keep_tiles = False  # --tiles: per-tile results in the record
        self.max_tiles = tiles.MAX_TILES

    def _load_ood(self):
        section = self.bundle.manifest.get("ood")
        if section is None:
            return None, None
        threshold = _number(self.bundle.manifest, "ood", "threshold", self.bundle.path)
        name = section.get("file") if isinstance(section, dict) else None
        if not isinstance(name, str) or name not in self.bundle.manifest.get("files", {}):
            raise BundleError(f"{self.bundle.path}: 'ood.file' must name a file of the bundle")
        try:
            score = load_ood(self.bundle.path / name)
        except OodError as e:
            raise BundleError(str(e)) from None
        if score.classes is not None and score.classes != self.bundle.classes:
            raise BundleError(f"{self.bundle.path / name}: classes {list(score.classes)} differ "
                              f"from the manifest's {list(self.bundle.classes)}")
        if self.n_features is None or score.n_features != self.n_features:
            raise BundleError(f"{self.bundle.path / name}: the out-of-domain score does not take "
                              "this bundle's features")
        return score, threshold

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
        return preprocess(rgb, self.size, self.dtype, self.white_point)

    def colour_input(self, rgb, x):
        """The field `rgb` (model input `x`) as its stain colour is judged."""
        return colour_input(rgb, self.size, x, self.white_point)

    def infer(self, x):
        runtime.set_input(self.interpreter, x)
        runtime.invoke(self.interpreter)
        return runtime.get_output(self.interpreter)

    def features(self, output):
        """The features of the image just inferred (None for a CNN without them)."""
        if self.svm is not None:
            return output
        return runtime.get_output(self.interpreter, self._features) if self._features else None

    def features_of(self, rgb):
        return self.features(self.infer(self.prepare(rgb)))

    def prediction_set(self, probs):
        """The conformal set of these probabilities; the top class alone without `conformal`."""
        threshold = self.set_threshold if self.set_threshold is not None else 1.0
        return prediction_set(probs, self.bundle.classes, threshold)

    def to_probabilities(self, output):
        if self.svm is None:
            return np.asarray(output, dtype=np.float64)
        return self.svm.predict_proba(output[None, :])[0]

    # whole
    def classify_rgb(self, rgb, start=None, measures=None):
        """HxWx3 uint8 RGB -> result dict: status, and label/probabilities when ok.
        `measures`: quality.measure of this very array, when the caller has just taken them."""
        start = time.perf_counter() if start is None else start
        measures = quality.measure(rgb) if measures is None else measures
        verdict = quality.judge(measures, self.thresholds)
        if verdict is not None:
            reason, detail = verdict
            return self._done({"status": "rejected", "label": None, "probabilities": None,
                               "reason": f"{reason}: {detail}", "quality": measures}, start)
        x = self.prepare(rgb)
        # judged as the model will see it: after the white point, if the bundle has one
        odd = (colour.judge(self.colour_input(rgb, x), self.colour_range)
               if self.colour_range else None)
        if odd is not None:
            return self._done({"status": "out_of_domain", "label": None, "probabilities": None,
                               "ood_score": None, "ood_threshold": self.ood_threshold,
                               "reason": odd, "quality": measures}, start)
        output = self.infer(x)
        ood_score = None
        if self.ood is not None:
            ood_score = round(self.ood.score(self.features(output)), 3)
            if ood_score > self.ood_threshold:
                return self._done({
                    "status": "out_of_domain", "label": None, "probabilities": None,
                    "ood_score": ood_score, "ood_threshold": round(self.ood_threshold, 3),
                    "reason": "unlike every training image (out-of-domain score "
                              f"{ood_score:.1f} > {self.ood_threshold:.1f}): another stain, "
                              "lab or microscope, or not a blood smear",
                    "quality": measures}, start)
        probs = self.to_probabilities(output)
        result = self.result(probs, 0.0)
        result.update(status="ok", ood_score=ood_score, quality=measures,
                      prediction_set=self.prediction_set(probs))
        return self._done(result, start)

    def classify_bytes(self, data):
        """Encoded JPEG/PNG -> result dict; latency includes decoding. Raises ImageError."""
        if self.training_diameter is not None:
            return frames.classify_encoded(self, data, self.scale_hint)
        start = time.perf_counter()
        return self.classify_rgb(decode_rgb(data), start)

    def classify_capture(self, rgb):
        """A decoded camera frame -> result dict, at the training scale when the bundle has one."""
        if self.training_diameter is not None:
            return frames.classify_frame(self, rgb, hint=self.scale_hint)
        return self.classify_rgb(rgb)

    @staticmethod
    def _done(result, start):
        result["latency_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
        return result

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


def _number(manifest, section, key, where):
    """manifest[section][key] as a finite float, None when the section is absent."""
    part = manifest.get(section)
    if part is None:
        return None
    value = part.get(key) if isinstance(part, dict) else None
    if type(value) not in (int, float) or not np.isfinite(value):
        raise BundleError(f"{where}: manifest '{section}.{key}' must be a number")
    return float(value)


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


RECORD_KEYS = {
    "ok": ("label", "probabilities", "prediction_set", "ood_score", "quality"),
    "out_of_domain": ("label", "ood_score", "ood_threshold", "reason", "quality"),
    "rejected": ("label", "reason", "quality"),
}


def result_record(path, result, bundle_id):
    """The one object `classify --json` prints (and `serve`'s /api/classify returns)."""
    status = result.get("status", "ok")
    record = {"path": path, "status": status}
    record.update((k, result.get(k)) for k in RECORD_KEYS[status])
    record.update((k, result[k]) for k in ("scale", "tiles") if k in result)
    record.update(latency_ms=result["latency_ms"], bundle=bundle_id)
    return record


def error_record(path, error):
    return {"path": path, "status": "error", "label": None, "error": error}


def format_record(record):
    """One line of text for a record: the answer, or in words what could not be judged."""
    return f"{record['path']}: {format_result(record)}"


def format_result(result):
    """A result's status in words: label, probabilities and latency when ok."""
    status = result.get("status", "ok")
    if status == "error" or "error" in result:
        return f"error: {result['error']}"
    if status == "rejected":
        return f"not judged, image rejected ({result['reason']})"
    if status == "out_of_domain":
        return f"not judged, out of domain ({result['reason']})"
    probs = "  ".join(f"{c} {p:.3f}" for c, p in result["probabilities"].items())
    alts = result.get("prediction_set") or [result["label"]]
    hedge = f"  could also be: {', '.join(alts[1:])}" if len(alts) > 1 else ""
    return f"{result['label']}  ({probs}){hedge}  {result['latency_ms']:.1f} ms"


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
