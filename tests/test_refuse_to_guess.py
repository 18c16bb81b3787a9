"""The device refuses to guess: statuses, the out-of-domain gate, prediction sets.

What it cannot judge it says so, in words and in the JSON: `rejected` (quality gate),
`out_of_domain` (unlike the training smears), `error` (unreadable). Only `ok` names a class,
and then with a prediction set at the bundle's stated coverage.
"""
import io
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from alledge.device.bundle import load_bundle
from alledge.device.classify import Classifier, result_record
from alledge.device.conformal import prediction_set
from alledge.device.ood import OodError, load_ood, save_ood
from alledge.train import gate

ALLEDGE = [sys.executable, "-m", "alledge.device.cli"]
DEFAULT = load_bundle.__globals__["DEFAULT_BUNDLE"]


def clusters(n_per_class, seed, shift=0.0, d=20, classes=3):
    rng = np.random.default_rng(seed)
    centres = np.eye(classes, d) * 6.0
    x = np.concatenate([rng.normal(size=(n_per_class, d)) + centres[c] + shift
                        for c in range(classes)])
    y = np.repeat(np.arange(classes), n_per_class)
    return x, y


# --- the score and the sets, on data whose answer is known --------------------------------

def test_mahalanobis_score_is_low_inside_and_high_far_away():
    x, y = clusters(200, seed=0)
    arrays = gate.fit_mahalanobis(x, y, n_components=10)
    inside = gate.mahalanobis_scores(arrays, clusters(50, seed=1)[0])
    far = gate.mahalanobis_scores(arrays, clusters(50, seed=2, shift=8.0)[0])
    assert np.median(far) > 10 * np.median(inside)


def test_threshold_flags_about_the_stated_share_of_new_in_domain_data():
    x, y = clusters(400, seed=0)
    arrays = gate.fit_mahalanobis(x, y, 10)
    oof = gate.out_of_fold(x, y, lambda a, b: gate.fit_mahalanobis(a, b, 10),
                           gate.mahalanobis_scores)
    t = gate.ood_threshold(oof, 0.05)
    fresh = gate.mahalanobis_scores(arrays, clusters(1000, seed=3)[0])
    # 3000 fresh points: a 5% target lands within 2-8% (binomial sd 0.4%, plus fit noise)
    assert 0.02 < np.mean(fresh > t) < 0.08


def test_lac_threshold_gives_the_nominal_coverage_on_exchangeable_data():
    rng = np.random.default_rng(0)
    n, k = 4000, 4
    logits = rng.normal(size=(n, k)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=pi) for pi in p])     # labels drawn from p: calibrated
    t = gate.lac_threshold(p[:2000], y[:2000], coverage=0.9)
    sets = [prediction_set(pi, list(range(k)), t) for pi in p[2000:]]
    coverage = np.mean([yi in s for yi, s in zip(y[2000:], sets)])
    assert 0.88 <= coverage <= 0.93


def test_prediction_set_is_ordered_and_never_empty():
    assert prediction_set([0.1, 0.5, 0.4], ["a", "b", "c"], 0.3) == ["b", "c"]
    assert prediction_set([0.3, 0.35, 0.35], ["a", "b", "c"], 0.9) == ["b"]


def test_ood_file_is_plain_arrays_and_checked(tmp_path):
    x, y = clusters(50, seed=0)
    arrays = gate.fit_mahalanobis(x, y, 5)
    good = tmp_path / "ood.npz"
    save_ood(good, **arrays)
    assert load_ood(good).score(x[0]) == pytest.approx(gate.mahalanobis_scores(arrays, x[:1])[0],
                                                       rel=1e-4)
    bad = tmp_path / "pickled.npz"
    np.savez(bad, format=np.array("alledge-ood/1"), mean=np.array([object()], dtype=object),
             components=arrays["components"], class_means=arrays["class_means"],
             precision=arrays["precision"])
    with pytest.raises(OodError):
        load_ood(bad)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(good.read_bytes()[:200])  # the same reader as svm.npz: one line
    with pytest.raises(OodError, match="unreadable"):
        load_ood(damaged)
    shapes = tmp_path / "shapes.npz"
    save_ood(shapes, arrays["mean"][:3], arrays["components"], arrays["class_means"],
             arrays["precision"])
    with pytest.raises(OodError, match="inconsistent"):
        load_ood(shapes)


# --- the shipped default bundle ------------------------------------------------------------

@pytest.fixture(scope="module")
def default_classifier():
    return Classifier(load_bundle(DEFAULT), threads=1)


def test_default_bundle_carries_a_gate_and_sets():
    m = load_bundle(DEFAULT).manifest
    assert m["ood"]["target_flag_rate"] == 0.01 and m["ood"]["threshold"] > 0
    assert m["conformal"]["coverage"] == 0.95 and 0 < m["conformal"]["threshold"] <= 1
    assert "ood.npz" in m["files"]
    assert "ordinary captures" in m["ood"]["threshold_from"]


def test_default_bundle_has_its_own_quality_thresholds_and_white_point():
    m = load_bundle(DEFAULT).manifest
    # fitted by `alledge gate` (2026-11-27): the fine-tuned model reads Gaussian blur up to
    # sigma 2 (sharpness about 7) as well as clean fields, so its focus gate is far looser
    # than the generic 30; never looser than the floor of 2
    assert 2.0 <= m["quality"]["min_sharpness"] < 30.0
    assert Classifier(load_bundle(DEFAULT)).thresholds.min_sharpness == m["quality"]["min_sharpness"]
    wp = m["preprocessing"]["white_point"]
    assert wp["percentile"] == 75 and all(200 <= v <= 255 for v in wp["target"])
    # for overexposed fields only: the training fields' 95th percentile of clipped share
    assert 0.3 < wp["clipped_above"] < 0.6


def test_a_fitted_brightness_threshold_is_never_looser_than_the_generic_one():
    # a field five times darker than any training field is not judged, whatever the later
    # gates would do (with a floor of 20 the default answered 3.9% of Segmented/)
    from alledge.convert.gate import QUALITY_SERIES
    from alledge.device.quality import Thresholds
    floors = {name: floor for _, name, _, floor, _ in QUALITY_SERIES}
    assert floors["min_brightness"] == Thresholds().min_brightness
    assert load_bundle(DEFAULT).manifest["quality"]["min_brightness"] >= Thresholds().min_brightness


def test_quality_threshold_stops_at_the_first_bin_the_model_cannot_read():
    from alledge.train.gate import quality_threshold
    values = np.arange(1000, 0, -1).astype(float)       # 1000 (sharp) .. 1 (blurred)
    correct = values > 300                               # right down to 301, wrong below
    t, acc = quality_threshold(values, correct, target=0.9, bin_size=100)
    assert t == 301.0 and acc == 1.0                    # the bin 400..301 is the last good one
    # nothing unreadable: the worst value seen is the threshold
    assert quality_threshold(values, np.ones(1000, bool), 0.9, bin_size=100)[0] == 1.0
    # high is bad (clipped fraction): mirrored
    t, _ = quality_threshold(values / 1000, values <= 700, 0.9, low_is_bad=False, bin_size=100)
    assert t == 0.7


def test_the_quality_gate_leaves_to_the_later_gates_what_they_refuse(default_classifier):
    # the quality thresholds are fitted on mistakes: a field a later gate (no white cell,
    # stain colour, out-of-domain score) refuses is not one
    from alledge.convert.gate import _read, later_gates
    c = default_classifier
    noise = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    wrong = int(np.argmax(c.to_probabilities(c.infer(c.prepare(noise))))) - 1
    measures, ok = _read(c, noise, wrong)
    assert not ok and set(measures) >= {"clipped", "sharpness"}
    m = c.bundle.manifest
    with np.load(c.bundle.path / m["ood"]["file"], allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    refuses = later_gates(c, arrays, m["ood"]["threshold"], m["colour"])
    assert _read(c, noise, wrong, refuses) == (measures, True)   # noise: out of domain
    assert _read(c, noise, wrong, lambda rgb, x, out: False)[1] is False


def _jpeg(rgb):
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


@pytest.mark.parametrize("name,rgb,reason", [
    ("black", np.zeros((224, 224, 3), np.uint8), "too dark"),
    ("grey", np.full((224, 224, 3), 128, np.uint8), "blank"),
    ("white", np.full((224, 224, 3), 255, np.uint8), "overexposed"),
    ("one pixel", np.full((1, 1, 3), 200, np.uint8), "too small"),
    ("strip", np.random.default_rng(0).integers(0, 255, (10, 2000, 3), dtype=np.uint8),
     "too small"),
])
def test_unusable_images_are_rejected_with_the_measured_value(default_classifier, name, rgb,
                                                              reason):
    result = default_classifier.classify_bytes(_jpeg(rgb))
    assert result["status"] == "rejected" and result["label"] is None
    assert result["reason"].startswith(reason)


def test_noise_is_never_a_class(default_classifier):
    # the scale estimate refuses it first (no red cells of a readable size)
    rgb = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    result = default_classifier.classify_bytes(_jpeg(rgb))
    assert result["status"] in ("rejected", "out_of_domain") and result["label"] is None


@pytest.mark.parametrize("look", ["channels swapped (BGR)", "grey"])
def test_a_real_field_that_looks_unlike_the_training_smears_is_out_of_domain(
        default_classifier, real_data, look):
    # the gate itself, past the quality and scale gates: the same cells, another look
    rgb = cv2.cvtColor(cv2.imread(str(real_data / "Pro" / "WBC-Malignant-Pro-001.jpg")),
                       cv2.COLOR_BGR2RGB)
    assert default_classifier.classify_rgb(rgb)["status"] == "ok"
    changed = (np.ascontiguousarray(rgb[..., ::-1]) if look.startswith("channels") else
               np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2))
    result = default_classifier.classify_rgb(changed)
    assert result["status"] == "out_of_domain" and result["label"] is None
    if look.startswith("channels"):
        # the stain colour range says so before the model runs (red minus blue of the cells
        # +10 swapped; the training fields -97 to -15 as the model sees them)
        assert result["reason"].startswith("stain colours unlike the training smears")
    else:  # grey comes out of the white point bluish: the out-of-domain score says so
        assert result["ood_score"] > result["ood_threshold"]


def test_the_colour_statistic_tells_red_and_blue_apart():
    from alledge.device.colour import cell_red_minus_blue, colour_range_of, judge
    field = np.full((64, 64, 3), 240, np.uint8)
    field[16:48, 16:48] = (120, 80, 200)               # a bluish cell on a bright background
    assert cell_red_minus_blue(field) == -80.0
    assert cell_red_minus_blue(np.ascontiguousarray(field[..., ::-1])) == 80.0
    assert judge(field, (-100.0, -10.0)) is None
    assert "swapped" in judge(np.ascontiguousarray(field[..., ::-1]), (-100.0, -10.0))
    assert colour_range_of({}) is None
    with pytest.raises(ValueError, match="colour"):
        colour_range_of({"colour": {"red_minus_blue": [5, -5]}})


def test_every_json_line_has_a_status_and_text_says_what_was_not_judged(tmp_path):
    cv2.imwrite(str(tmp_path / "black.jpg"), np.zeros((224, 224, 3), np.uint8))
    (tmp_path / "text.jpg").write_text("not an image")
    run = subprocess.run(ALLEDGE + ["classify", "--json", "--no-log", str(tmp_path / "black.jpg"),
                                    str(tmp_path / "text.jpg")], capture_output=True, text=True)
    lines = [json.loads(x) for x in run.stdout.splitlines()]
    assert [d["status"] for d in lines] == ["rejected", "error"]
    assert all(d["label"] is None for d in lines)
    assert run.returncode == 1          # an error in the batch
    text = subprocess.run(ALLEDGE + ["classify", "--no-log", str(tmp_path / "black.jpg")],
                          capture_output=True, text=True)
    assert text.returncode == 0 and "not judged, image rejected (too dark" in text.stdout


def test_record_keys_by_status():
    rec = result_record("a.jpg", {"status": "out_of_domain", "label": None, "ood_score": 300.0,
                                  "ood_threshold": 132.6, "reason": "far", "quality": {},
                                  "latency_ms": 1.0}, "b@1")
    assert rec["status"] == "out_of_domain" and "probabilities" not in rec
    assert rec["ood_threshold"] == 132.6 and rec["label"] is None


# --- a CNN bundle gets its gate from its penultimate features ------------------------------

@pytest.mark.slow
def test_a_converted_cnn_bundle_exposes_features_and_carries_a_gate(tmp_path, cli_ok):
    cli = cli_ok
    data, split = tmp_path / "data", tmp_path / "split.csv"
    cli("data", "synth", data, "--per-class", 20, "--seed", 0)
    cli("data", "split", data, "--out", split)
    cli("train", "cnn", "--data", data, "--split", split, "--out", tmp_path / "cnn",
        "--epochs", 2, "--input-size", 96)
    cli("convert", tmp_path / "cnn", "--out", tmp_path / "bundle", "--quant", "int8",
        "--data", data, "--split", split, "--calibration", 20)
    m = load_bundle(tmp_path / "bundle").manifest
    assert m["features_output"]["size"] == 250          # the input of the last Dense layer
    assert m["ood"]["file"] == "ood.npz" and m["conformal"]["n_calibration"] == 6
    assert "validation part" in m["conformal"]["calibration"]
    # its features of the images it trained on are not new: the threshold is set on the rest
    # ...and on 8 ordinary captures of each of those 6 (moderate changes of the suite)
    assert m["ood"]["n_threshold"] == 6 * 9 and "never trained on" in m["ood"]["threshold_from"]
    # a CNN bundle carries its quality thresholds, fitted on the same part; a white point
    # only when asked for (the float32 bundle equals its Keras model)
    assert "white_point" not in m["preprocessing"]
    lo, hi = m["colour"]["red_minus_blue"]                # every bundle: its stain colours
    assert lo < hi
    assert set(m["quality"]) >= {"min_sharpness", "max_clipped", "min_contrast", "min_brightness"}
    assert m["quality"]["min_sharpness"] <= 30.0 and m["quality"]["max_clipped"] >= 0.8
    line = json.loads(cli("classify", "--json", "--no-log", "--bundle", tmp_path / "bundle",
                          next((data / "Pro").iterdir())).splitlines()[0])
    assert line["status"] in ("ok", "out_of_domain") and line["ood_score"] is not None
    bench = json.loads(cli("bench", "--bundle", tmp_path / "bundle", "--runs", 2, "--json"))
    assert "ood" in bench["stages"]       # timed on the CNN's features, not its probabilities
