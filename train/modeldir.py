"""A trained model is a directory: the Keras model, model.json, metrics.json (and svm.npz).

model.json says what it is and what it was trained on (the split id is the sha256 of the
split CSV), so every figure can be traced back to its split.
"""
import json
from pathlib import Path

import alledge.device as device
from alledge.device.bundle import sha256_file as file_sha256  # noqa: F401 (one hash helper)
from alledge.device.fileio import atomic_write_json

KERAS_FILE = "model.keras"
SVM_FILE = "svm.npz"


def write_model_info(out, **info):
    info.setdefault("classes", list(device.CLASSES))
    info.setdefault("provenance", provenance())
    atomic_write_json(Path(out) / "model.json", info)


def read_model_info(model_dir):
    path = Path(model_dir) / "model.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} is not a model directory (no model.json)")
    try:
        info = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: not a model description")
    return info


def provenance():
    """What made a result (command, git commit, machine, runtimes, date), for results/:
    the one helper of train, convert and device (alledge.device.provenance)."""
    from alledge.device.provenance import provenance as made_by
    return made_by()
