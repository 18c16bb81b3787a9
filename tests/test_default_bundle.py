"""The bundle shipped in the package: EfficientNet-Lite0 fine-tuned on augmented captures, int8,
with its out-of-domain gate, prediction sets and training scale, made by the project's own
commands from the real dataset's paper split, so `alledge classify capture.jpg` works right
after install. (Chosen by its worst case under capture changes; see the README.)"""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from alledge.device.bundle import DEFAULT_BUNDLE, load_bundle

SPLIT = Path("results/splits/paper.csv")


def test_default_bundle_verifies_and_says_where_it_came_from():
    b = load_bundle(DEFAULT_BUNDLE)
    m = b.manifest
    assert m["kind"] == "cnn" and m["quantization"] == "int8"
    assert m["svm_file"] is None and m["features_output"]["size"] == 1280
    assert {"ood", "conformal", "scale"} <= set(m)
    assert m["input"]["dtype"] == "uint8"
    assert m["split_id"] == hashlib.sha256(SPLIT.read_bytes()).hexdigest()
    assert m["metrics"]["n"] == 977  # evaluated on the whole paper test split
    assert m["source_model"]["backbone"] == "efficientnet-lite0"
    # the manifest's own figure (no hash covers it) must agree with the measurement of this very
    # bundle, results/default/paper-test.json "accuracy" (`make eval-default`), within 0.5
    # points; tests/test_default_bundle_real.py re-measures the bundle itself on all 977 images
    measured = json.loads(Path("results/default/paper-test.json").read_text())
    assert measured["bundle"] == b.id
    assert abs(m["metrics"]["accuracy"] - measured["accuracy"]) <= 0.005 or \
        abs(m["metrics"]["accuracy"] - measured["accuracy_answered"]) <= 0.005


def test_classify_without_bundle_option_uses_the_default_on_a_real_image(real_data, tmp_path):
    image = real_data / "Pro" / "WBC-Malignant-Pro-011.jpg"
    env = {k: v for k, v in os.environ.items() if k != "ALLEDGE_BUNDLE"}
    env["ALLEDGE_HOME"] = str(tmp_path)
    r = subprocess.run([sys.executable, "-m", "alledge.device.cli", "classify", str(image),
                        "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[0])
    assert out["label"] == "Pro"  # a training image of the bundle's split: it must know it
    assert abs(sum(out["probabilities"].values()) - 1) < 0.02
    assert out["bundle"].startswith("efficientnet-lite0-finetuned-int8")
