"""The device on tensorflow.lite: what a Pi on Python 3.13 has (no LiteRT or tflite-runtime
wheel exists for it; README, "Python 3.12 and 3.13 on the Pi").

The real CLI runs with ai_edge_litert and tflite_runtime made impossible to import, so the
runtime falls back to TensorFlow's own interpreter; it must classify the default bundle as
LiteRT does and keep stderr free of TensorFlow's deprecation warning and import logs.
"""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from bundles import smear

pytest.importorskip("tensorflow", reason="tensorflow.lite is the runtime under test")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("smears")
    for i in range(4):
        rgb = smear(i, np.random.default_rng(i), size=224)
        cv2.imwrite(str(d / f"smear-{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return d


def classify(images, tmp_path, block=()):
    env = {k: v for k, v in os.environ.items()
           if k not in ("ALLEDGE_BUNDLE", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    env["ALLEDGE_HOME"] = str(tmp_path / "home")
    if block:
        blocker = tmp_path / "blocked"
        for name in block:
            (blocker / name).mkdir(parents=True)
            (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} blocked')\n")
        env["PYTHONPATH"] = str(blocker)
    code = ("import sys\nfrom alledge.device.cli import main\nfrom alledge.device import runtime\n"
            "try:\n    main(sys.argv[1:])\nfinally:\n"
            "    print('RUNTIME', runtime.runtime()[0], file=sys.stderr)\n")
    p = subprocess.run([sys.executable, "-c", code, "classify", "--json", "--no-log",
                        str(images)], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = {json.loads(line)["path"]: json.loads(line) for line in p.stdout.splitlines()}
    stderr = p.stderr.splitlines()
    return rows, stderr[-1].split()[1], stderr[:-1]


def test_tensorflow_lite_fallback_classifies_like_litert_and_quietly(images, tmp_path):
    tf_rows, module, noise = classify(images, tmp_path, block=("ai_edge_litert", "tflite_runtime"))
    assert module == "tensorflow.lite"
    assert noise == [], noise  # no deprecation warning, no oneDNN or CPU-feature log lines
    lite_rows, module, _ = classify(images, tmp_path / "litert")
    assert module == "ai_edge_litert.interpreter"
    assert sorted(tf_rows) == sorted(lite_rows) and len(tf_rows) == 4
    for path, row in tf_rows.items():
        ref = lite_rows[path]
        # drawn smears may be refused as out of domain: then the decision and its score
        # must match; answered ones, the probabilities too
        assert (row.get("status"), row["label"]) == (ref.get("status"), ref["label"])
        if ref.get("ood_score") is None:  # refused on its stain colours, before the model
            assert row.get("ood_score") is None
        else:
            assert row["ood_score"] == pytest.approx(ref["ood_score"], rel=1e-3)
        for c, p in ref.get("probabilities", {}).items():
            assert row["probabilities"][c] == pytest.approx(p, abs=1e-3)
