"""Write a bundle directory (layout and manifest fields: alledge.device.bundle).

The I/O dtypes and quantization parameters are read from the .tflite itself with the LiteRT
interpreter, so the manifest cannot disagree with the model it describes. The bundle is
built in a temporary directory beside `out_dir` and renamed into place, so a crash never
leaves a half-written bundle under the final name.
"""
import datetime
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

import alledge.device as device
from alledge.device import bundle as dbundle
from alledge.device import preprocess, runtime
from alledge.device.fileio import atomic_write_bytes, atomic_write_json, fsync_dir

MODEL_FILE = "model.tflite"
EDGETPU_FILE = "model_edgetpu.tflite"
SVM_FILE = "svm.npz"
PREPROCESSING = {"color": "RGB", "resize": preprocess.INTERPOLATION_NAME, "range": "0-255",
                 "normalization": "inside the model"}


def io_details(tflite_bytes):
    """{'input': {size, dtype, quantization}, 'output': {dtype, quantization}} of a model."""
    _, _, Interpreter, _ = runtime.runtime()
    interpreter = Interpreter(model_content=bytes(tflite_bytes))
    interpreter.allocate_tensors()
    inp, out = runtime.input_details(interpreter), runtime.output_details(interpreter)
    shape = [int(s) for s in inp["shape"]]
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3:
        raise ValueError(f"model input shape {shape} is not 1 x size x size x 3")
    io = {
        "input": {"size": shape[1], "dtype": np.dtype(inp["dtype"]).name,
                  "quantization": runtime.quantization(inp)},
        "output": {"dtype": np.dtype(out["dtype"]).name, "shape": [int(s) for s in out["shape"]],
                   "quantization": runtime.quantization(out)},
    }
    feat = runtime.features_details(interpreter)
    if feat is not None:
        io["features"] = {"size": int(np.prod(feat["shape"])), "dtype": np.dtype(feat["dtype"]).name,
                          "quantization": runtime.quantization(feat)}
    return io


def build_manifest(tflite_bytes, fields, has_svm, has_edgetpu):
    """The manifest without 'files'. `fields` gives kind, name, quantization, source_model,
    split_id, metrics (and optionally classes, output_kind); the rest is derived."""
    kind = fields["kind"]
    if kind not in dbundle.KINDS:
        raise ValueError(f"kind must be one of {dbundle.KINDS}, got {kind!r}")
    if (kind == "svm") != has_svm:
        raise ValueError("a kind 'svm' bundle needs svm_path, and only it")
    if fields.get("quantization") not in dbundle.QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {dbundle.QUANTIZATIONS}")
    io = io_details(tflite_bytes)
    if io["input"]["dtype"] not in dbundle.INPUT_DTYPES:
        raise ValueError(f"model input dtype {io['input']['dtype']} is not one the device "
                         f"feeds ({', '.join(dbundle.INPUT_DTYPES)})")
    output = io["output"]
    output_kind = fields.get("output_kind", "features" if kind == "svm" else "probabilities")
    return {
        "format_version": dbundle.FORMAT_VERSION,
        "kind": kind,
        "name": fields["name"],
        "classes": list(fields.get("classes", device.CLASSES)),
        "input": io["input"],
        "output": {"kind": output_kind, "dtype": output["dtype"],
                   "quantization": output["quantization"]},
        **({"features_output": io["features"]} if "features" in io else {}),
        "preprocessing": {**PREPROCESSING, **({"white_point": fields["white_point"]}
                                              if fields.get("white_point") else {})},
        "quantization": fields["quantization"],
        "model_file": MODEL_FILE,
        "edgetpu_model_file": EDGETPU_FILE if has_edgetpu else None,
        "svm_file": SVM_FILE if has_svm else None,
        "source_model": fields.get("source_model"),
        "split_id": fields.get("split_id"),
        "metrics": fields.get("metrics"),
        "files": {},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "alledge_version": _alledge_version(),
    }


def write_bundle(out_dir, tflite_bytes, manifest_fields, svm_path=None, edgetpu_bytes=None,
                 evaluate=None, gate=None):
    """Write the bundle directory `out_dir` (replacing one already there); returns its path.

    gate: optional callable(Bundle) -> ({file name: bytes}, {manifest section: value}), run
    on the staged files: the out-of-domain score and prediction sets fitted on what this
    very model computes (alledge.convert.gate). Its files and sections join the manifest.

    evaluate: optional callable(Bundle) -> metrics dict, run on the staged files before the
    manifest exists, so the manifest is written once, metrics included, and the bundle only
    takes its final name when evaluation succeeded.
    """
    out_dir = Path(out_dir)
    manifest = build_manifest(tflite_bytes, manifest_fields, svm_path is not None,
                              edgetpu_bytes is not None)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a bundle is meant to be shared
    try:
        contents = {MODEL_FILE: bytes(tflite_bytes)}
        if edgetpu_bytes is not None:
            contents[EDGETPU_FILE] = bytes(edgetpu_bytes)
        if svm_path is not None:
            _check_svm(svm_path, manifest)
            contents[SVM_FILE] = Path(svm_path).read_bytes()
        for name, data in contents.items():
            atomic_write_bytes(tmp / name, data)
            manifest["files"][name] = hashlib.sha256(data).hexdigest()
        if gate is not None:
            staged = dbundle.Bundle(path=tmp, manifest=manifest, id=f"{manifest['name']}@staged")
            files, sections = gate(staged)
            for name, data in files.items():
                atomic_write_bytes(tmp / name, data)
                manifest["files"][name] = hashlib.sha256(data).hexdigest()
            manifest.update(sections)
        if evaluate is not None:
            # Files just written from memory; load_bundle below checks them all before rename
            staged = dbundle.Bundle(path=tmp, manifest=manifest, id=f"{manifest['name']}@staged")
            manifest["metrics"] = evaluate(staged)
        atomic_write_json(tmp / dbundle.MANIFEST, dbundle.seal(manifest))
        dbundle.load_bundle(tmp)  # the device's own checks, before it takes the final name
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _check_svm(svm_path, manifest):
    """The SVM must name the manifest's classes and take the extractor's features."""
    from alledge.device.svm import load_svm
    svm = load_svm(svm_path)
    if list(svm.classes) != manifest["classes"]:
        raise ValueError(f"{svm_path}: classes {list(svm.classes)} differ from the bundle's "
                         f"{manifest['classes']}")


def _replace_dir(new, target):
    """Move `new` to `target`; an existing `target` is moved aside first, then removed."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
    new.rename(target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _alledge_version():
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("alledge")
    except PackageNotFoundError:
        return "unknown"
