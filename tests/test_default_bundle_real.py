"""The shipped default bundle (device/bundles/default) on all 977 test images of the paper
split, through the device code path (Classifier + classify_data, what `alledge classify
--json` prints), held to its committed measurement.

The measurement is results/default/paper-test.json, written by `make eval-default`
(`alledge evaluate --data DATA --split results/splits/paper.csv --subset test
--out results/default/paper-test.json`). The README's default-bundle figures come from that
file (tests/test_claims.py checks them). When the shipped bundle changes, re-run
`make eval-default`: a measurement of another bundle fails here, it never passes stale.
"""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from alledge.device.bundle import DEFAULT_BUNDLE, load_bundle

# The shipped bundle on the real dataset (ALLEDGE_DATA): `-m "not realdata"` leaves this out.
pytestmark = pytest.mark.realdata

SPLIT = Path("results/splits/paper.csv")
MEASURED = Path("results/default/paper-test.json")
SUBSET = "test"  # the paper split's test subset: 977 images (151/296/289/241, Table 2)

# Margins below the measured figures. The same bundle on the same runtime gives the same
# figures to the image (int8 is deterministic); the margins leave room for another CPU's
# kernels or runtime build turning a few borderline images, never for a worse model:
ACCURACY_MARGIN = 0.005     # 0.5 points: about 5 of 977 images
ANSWERED_MARGIN = 0.005     # 0.5 points of the answered fraction
RECALL_MARGIN = 0.02        # 2 points per class: 3 of Benign's 151 images, 6 of Early's 296


@pytest.fixture(scope="module")
def paper_test():
    assert MEASURED.is_file(), f"{MEASURED} missing: run `make eval-default`"
    return json.loads(MEASURED.read_text())


@pytest.fixture(scope="module")
def shipped():
    return load_bundle(DEFAULT_BUNDLE)


def test_the_measurement_is_of_the_shipped_bundle_on_the_paper_test_split(paper_test, shipped):
    assert paper_test["bundle"] == shipped.id, (
        f"{MEASURED} measured {paper_test['bundle']}, the package ships {shipped.id}: "
        "re-run `make eval-default`")
    assert paper_test["split_id"] == hashlib.sha256(SPLIT.read_bytes()).hexdigest()
    assert paper_test["subset"] == SUBSET and paper_test["n"] == 977
    assert [paper_test["per_class"][c]["support"] for c in shipped.classes] == [151, 296, 289, 241]
    for key in ("command", "commit", "machine", "runtime", "date"):
        assert paper_test["provenance"].get(key), key
    assert "alledge evaluate" in paper_test["provenance"]["command"]


@pytest.fixture(scope="module")
def evaluated(real_data, shipped):
    from alledge.device.classify import Classifier
    from alledge.device.evaluate import evaluate
    result, records = evaluate(Classifier(shipped), real_data, SPLIT, SUBSET)
    return result, records


def test_the_shipped_bundle_holds_its_measured_accuracy_on_977_test_images(evaluated, paper_test):
    result, records = evaluated
    assert result["n"] == len(records) == 977 and result["errors"] == 0
    assert result["bundle"] == paper_test["bundle"]
    # accuracy over all 977 (an unanswered image counts as wrong), as measured in
    # results/default/paper-test.json "accuracy"
    assert result["accuracy"] >= paper_test["accuracy"] - ACCURACY_MARGIN, result
    # the share answered (status "ok", or a label where records carry no status), as
    # measured in results/default/paper-test.json "answered_fraction"
    assert result["answered_fraction"] >= paper_test["answered_fraction"] - ANSWERED_MARGIN
    if paper_test["accuracy_answered"] is not None:
        assert result["accuracy_answered"] >= paper_test["accuracy_answered"] - ACCURACY_MARGIN


@pytest.mark.parametrize("label", ["Benign", "Early", "Pre", "Pro"])
def test_each_class_holds_its_measured_recall(evaluated, paper_test, label):
    got = evaluated[0]["per_class"][label]
    want = paper_test["per_class"][label]  # results/default/paper-test.json per_class.*.recall
    assert got["support"] == want["support"]
    assert got["recall"] >= want["recall"] - RECALL_MARGIN, (label, got, want)


def test_the_cli_answers_as_the_code_path_measured(real_data, evaluated, tmp_path):
    """`alledge classify --json` (no --bundle: the shipped default) on a few test images
    prints the records the evaluation counted."""
    _, records = evaluated
    picks = [records[i] for i in (0, 200, 400, 600, 800, 976)]
    env = {"ALLEDGE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    p = subprocess.run([sys.executable, "-m", "alledge.device.cli", "classify", "--json",
                        "--no-log", *[str(real_data / r["path"]) for r in picks]],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(lines) == len(picks)
    for got, want in zip(lines, picks):
        assert got.get("label") == want.get("label") and got["bundle"] == want["bundle"]
        assert got.get("status") == want.get("status")
        if want.get("probabilities") is None:  # not answered: no probabilities to compare
            assert got.get("probabilities") is None
            continue
        for c, p_ in want["probabilities"].items():
            assert got["probabilities"][c] == pytest.approx(p_, abs=1e-6)


# The largest probability difference between tensorflow.lite and ai-edge-litert on the shipped
# bundle is the measurement tensorflow_lite_max_abs_diff in
# results/measurements/test_default_bundle_real.json (`make measure`; both run XNNPACK's int8
# kernels); allowed: that plus 1e-6 (the JSON round trip).
def test_tensorflow_lite_the_last_fallback_runs_the_shipped_bundle(real_data, evaluated,
                                                                   measured):
    """With neither ai-edge-litert nor tflite-runtime importable, device/runtime.py falls back
    to tensorflow.lite; it must give the same answers on a real-image sample."""
    _, records = evaluated
    picks = records[::49]  # 20 test images across the four classes
    code = (
        "import sys, json\n"
        "for m in ('ai_edge_litert', 'ai_edge_litert.interpreter', 'tflite_runtime',\n"
        "          'tflite_runtime.interpreter'):\n"
        "    sys.modules[m] = None  # as if not installed\n"
        "from alledge.device.bundle import DEFAULT_BUNDLE, load_bundle\n"
        "from alledge.device.classify import Classifier, classify_data\n"
        "from alledge.device.runtime import runtime\n"
        "c = Classifier(load_bundle(DEFAULT_BUNDLE))\n"
        "print(json.dumps({'runtime': runtime()[0]}))\n"
        "for p in sys.argv[1:]:\n"
        "    print(json.dumps(classify_data(c, open(p, 'rb').read(), p)))\n")
    p = subprocess.run([sys.executable, "-c", code, *[str(real_data / r["path"]) for r in picks]],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert lines[0] == {"runtime": "tensorflow.lite"}
    assert len(lines) - 1 == len(picks) == 20
    diff = max([abs(got["probabilities"][c] - want["probabilities"][c])
                for got, want in zip(lines[1:], picks) if want.get("probabilities")
                for c in want["probabilities"]], default=0.0)
    allowed = measured("tensorflow_lite_max_abs_diff", diff) + 1e-6
    assert diff <= allowed, diff
    for got, want in zip(lines[1:], picks):
        assert got.get("label") == want.get("label"), (got, want)
        assert got.get("status") == want.get("status")
