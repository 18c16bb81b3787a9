"""Training: the paper's models on the synthetic set, written as model directories."""
import json

import numpy as np
import pytest

from alledge.device import exitcodes

pytestmark = pytest.mark.slow


def test_improved_cnn_is_the_papers_architecture_with_564642_parameters():
    from alledge.train.cnn import build_improved_cnn
    model = build_improved_cnn(224)
    convs = [l for l in model.layers if l.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32] * 5
    assert [l.units for l in model.layers if l.__class__.__name__ == "Dense"] == [500, 250, 4]
    assert model.count_params() == 564_642  # not the paper's "8.1M"


def test_a_model_directory_says_what_it_is_and_which_split_trained_it(trained):
    d = trained["models"] / "improved-cnn"
    info = json.loads((d / "model.json").read_text())
    assert info["kind"] == "cnn" and info["params"] == 564_642
    assert info["split_id"] == trained["split_id"]
    assert (d / "model.keras").is_file() and (d / "history.csv").is_file()
    m = json.loads((d / "metrics.json").read_text())
    assert m["n"] == sum(r["subset"] == "test" for r in trained["rows"])
    assert set(m) >= {"accuracy", "accuracy_ci95", "macro_f1", "macro_f1_ci95", "per_class",
                      "confusion"}
    assert np.array(m["confusion"]).sum() == m["n"]
    lo, hi = m["accuracy_ci95"]
    assert lo <= m["accuracy"] <= hi


def test_svm_model_keeps_its_svm_as_plain_arrays_and_labels_random_weights(trained):
    d = trained["models"] / "efficientnet-b0-svm"
    info = json.loads((d / "model.json").read_text())
    assert info["kind"] == "svm" and info["random_weights"] is True
    assert info["weights_id"] == "random" and info["input_size"] == 64
    with np.load(d / "svm.npz", allow_pickle=False) as z:  # no pickle anywhere
        assert list(z["classes"]) == ["Benign", "Early", "Pre", "Pro"]
    assert info["svm"]["best_params"]["kernel"] in ("linear", "rbf")


# Floor: the measurement colour_baseline_accuracy in results/measurements/test_train.json
# (`make measure`) minus 3 of the synthetic split's 36 test images.
COLOUR_BASELINE_MARGIN = 3 / 36


def test_colour_baseline_reaches_well_above_chance_on_the_synthetic_set(trained, measured):
    m = json.loads((trained["models"] / "colour-baseline" / "metrics.json").read_text())
    want = measured("colour_baseline_accuracy", m["accuracy"])
    assert m["accuracy"] >= want - COLOUR_BASELINE_MARGIN, (m["accuracy"], want)
    assert m["accuracy"] > 0.25  # chance


def test_feature_cache_means_a_second_extraction_never_builds_the_network(trained):
    from alledge.train.dataset import resolve_root
    from alledge.train.features import cached_features
    from alledge.train.split import subset

    def must_not_build():
        raise AssertionError("the cache should have every image")

    test_rows = subset(trained["rows"], "test")
    x = cached_features(must_not_build, resolve_root(trained["data"]), test_rows,
                        "efficientnet-b0", "random", 64)
    assert x.shape == (len(test_rows), 1280)


def test_imagenet_weights_never_fall_back_to_random(trained, run_cli, monkeypatch):
    """Offline, keras' download fails: stop and name --weights PATH (exit 6)."""
    monkeypatch.setenv("KERAS_HOME", str(trained["models"] / "no-keras-cache"))
    r = run_cli("train", "svm", "--data", trained["data"], "--split", trained["split"],
                "--out", trained["models"] / "never", "--backbone", "efficientnet-b0",
                "--weights", "/nonexistent/weights.h5")
    assert r.exit_code == exitcodes.NO_WEIGHTS
    assert "weights file not found" in r.stderr
    assert not (trained["models"] / "never" / "svm.npz").exists()


def test_table3_reuses_finished_models_and_lists_b0_to_b7_without_weights_as_not_run(
        trained, run_cli):
    r = run_cli("train", "table3", "--data", trained["data"], "--split", trained["split"],
                "--out", trained["models"], "--models",
                "efficientnet-b3,improved-cnn,colour-baseline")
    assert r.exit_code == 0, r.stderr
    assert "improved-cnn: reusing" in r.stdout
    table = json.loads((trained["models"] / "table3.json").read_text())
    rows = {row["model"]: row for row in table["rows"]}
    assert rows["efficientnet-b3"]["status"].startswith("not run")
    assert rows["efficientnet-b3"]["paper_accuracy"] == 97.35
    assert rows["improved-cnn"]["paper_accuracy"] == 99.18
    assert rows["improved-cnn"]["params"] == 564_642
    assert (trained["models"] / "table3.md").read_text().count("\n| ") == 3


def test_the_cnn_can_keep_an_average_of_its_weights(trained, run_cli, tmp_path):
    out = tmp_path / "ema"
    r = run_cli("train", "cnn", "--data", trained["data"], "--split", trained["split"],
                "--out", out, "--epochs", 2, "--augment", "--input-size", 96, "--ema")
    assert r.exit_code == 0, r.stderr
    info = json.loads((out / "model.json").read_text())
    assert info["ema_momentum"] == 0.995 and info["augmented"] is True
    # the kept weights are the averaged ones the checkpoint took, and they were tested
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and (out / "best.weights.h5").is_file()


def test_the_long_cnn_runs_are_shown_when_finished_and_never_trained_by_table3(
        trained, run_cli, tmp_path):
    out = tmp_path / "models"
    r = run_cli("train", "cnn", "--data", trained["data"], "--split", trained["split"],
                "--out", out / "improved-cnn-augmented", "--epochs", 2, "--augment",
                "--input-size", 96, "--white-point")
    assert r.exit_code == 0, r.stderr
    info = json.loads((out / "improved-cnn-augmented" / "model.json").read_text())
    assert info["name"] == "improved-cnn-augmented" and info["augmented"] is True
    # --turn-clean alone has nothing to turn: refused in one line
    r = run_cli("train", "cnn", "--data", trained["data"], "--split", trained["split"],
                "--out", out / "x", "--turn-clean")
    assert r.exit_code == 2 and "give both" in r.stderr and not (out / "x").exists()
    # it learnt on inputs scaled to the training images' white point: its bundle takes that one
    assert len(info["white_point"]["target"]) == 3 and "learnt" in info["white_point"]["measured_on"]
    r = run_cli("train", "table3", "--data", trained["data"], "--split", trained["split"],
                "--out", out, "--models", "improved-cnn-500,improved-cnn-augmented")
    assert r.exit_code == 0, r.stderr
    rows = {row["model"]: row for row in json.loads((out / "table3.json").read_text())["rows"]}
    assert rows["improved-cnn-500"]["status"].startswith("not run yet: make cnn-500")
    assert "make table3-cnn" in rows["improved-cnn-500"]["status"]  # where finished ones are
    assert not (out / "improved-cnn-500").exists()          # an hours-long run: never here
    assert rows["improved-cnn-augmented"]["status"] == "ok"
    assert rows["improved-cnn-augmented"]["accuracy"] != ""
    md = (out / "table3.md").read_text()
    assert "Improved CNN (paper recipe, 500 epochs)" in md and "Improved CNN + augmentation" in md
    # a run under way says how far it got
    (out / "improved-cnn-500").mkdir()
    (out / "improved-cnn-500" / "history.csv").write_text("epoch,accuracy\n0,0.5\n1,0.6\n")
    run_cli("train", "table3", "--data", trained["data"], "--split", trained["split"],
            "--out", out, "--models", "improved-cnn-500")
    rows = {row["model"]: row for row in json.loads((out / "table3.json").read_text())["rows"]}
    assert rows["improved-cnn-500"]["status"].startswith("not finished: 2 epochs so far")


def test_training_on_a_missing_split_is_one_line_and_exit_2(tmp_path, synth_data, run_cli):
    r = run_cli("train", "cnn", "--data", synth_data, "--split", tmp_path / "none.csv",
                "--out", tmp_path / "m")
    assert r.exit_code == exitcodes.USAGE
    assert r.stderr.startswith("error:") and "Traceback" not in r.stderr


def test_the_cnn_can_learn_on_smoothed_labels(trained, run_cli, tmp_path):
    out = tmp_path / "smoothed"
    r = run_cli("train", "cnn", "--data", trained["data"], "--split", trained["split"],
                "--out", out, "--epochs", 2, "--augment", "--input-size", 96,
                "--label-smoothing", 0.1)
    assert r.exit_code == 0, r.stderr
    info = json.loads((out / "model.json").read_text())
    assert info["label_smoothing"] == 0.1 and info["augmented"] is True
    assert 0.0 <= json.loads((out / "metrics.json").read_text())["accuracy"] <= 1.0
    # without --augment it smooths the plain tf.data targets
    r = run_cli("train", "cnn", "--data", trained["data"], "--split", trained["split"],
                "--out", tmp_path / "smoothed-plain", "--epochs", 1, "--input-size", 96,
                "--label-smoothing", 0.1)
    assert r.exit_code == 0, r.stderr


def test_a_cosine_learning_rate_falls_to_a_hundredth_over_the_run():
    from alledge.train.cnn import COSINE_FLOOR, learning_rate_for
    assert learning_rate_for(1e-3, 150, 58) == 1e-3  # without it: one rate, halved on plateaus
    rate = learning_rate_for(1e-3, 150, 58, cosine=True)
    assert float(rate(0)) == pytest.approx(1e-3)
    assert float(rate(75 * 58)) == pytest.approx((1e-3 + 1e-3 * COSINE_FLOOR) / 2)  # halfway
    assert float(rate(150 * 58)) == pytest.approx(1e-5)


def test_a_cosine_run_says_so_in_its_model_file(trained, run_cli, tmp_path):
    out = tmp_path / "cosine"
    r = run_cli("train", "cnn", "--data", trained["data"], "--split", trained["split"],
                "--out", out, "--epochs", 2, "--augment", "--input-size", 96,
                "--no-early-stopping", "--cosine")
    assert r.exit_code == 0, r.stderr
    info = json.loads((out / "model.json").read_text())
    assert info["learning_rate_schedule"] == {"cosine": 1e-3, "floor": 0.01}
    assert info["epochs_run"] == 2 and info["early_stopping"] is False


def test_a_cosine_schedule_wants_every_epoch(trained, run_cli, tmp_path):
    r = run_cli("train", "cnn", "--data", trained["data"], "--split", trained["split"],
                "--out", tmp_path / "x", "--epochs", 2, "--cosine")
    assert r.exit_code == exitcodes.USAGE and "--no-early-stopping" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x").exists()


def test_a_run_without_validation_trains_on_every_image_and_keeps_the_last_epoch(
        trained, run_cli, tmp_path):
    out = tmp_path / "fixed"
    r = run_cli("train", "cnn", "--data", trained["data"], "--split", trained["split"],
                "--out", out, "--epochs", 2, "--augment", "--input-size", 96,
                "--no-early-stopping", "--cosine", "--no-validation")
    assert r.exit_code == 0, r.stderr
    info = json.loads((out / "model.json").read_text())
    n_train = sum(r["subset"] == "train" for r in trained["rows"])
    assert info["n_train"] == n_train and info["n_val"] == 0
    assert info["kept_epoch"] == info["epochs_run"] == 2 and "best_val_accuracy" not in info
    assert 0.0 <= json.loads((out / "metrics.json").read_text())["accuracy"] <= 1.0


@pytest.mark.parametrize("flags, said", [
    (["--augment", "--cosine"], "--no-early-stopping"),          # nothing to stop early on
    (["--augment", "--no-early-stopping"], "--cosine"),          # plateaus need validation
    (["--no-early-stopping", "--ema"], "validation part"),       # EMA is chosen on validation
])
def test_a_run_without_validation_refuses_what_needs_it(trained, run_cli, tmp_path, flags, said):
    r = run_cli("train", "cnn", "--data", trained["data"], "--split", trained["split"],
                "--out", tmp_path / "x", "--epochs", 2, "--no-validation", *flags)
    assert r.exit_code == exitcodes.USAGE and said in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x").exists()


def test_label_smoothing_must_leave_most_of_the_target_on_the_class(trained, run_cli, tmp_path):
    r = run_cli("train", "cnn", "--data", trained["data"], "--split", trained["split"],
                "--out", tmp_path / "x", "--epochs", 1, "--label-smoothing", 0.5)
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    assert not (tmp_path / "x").exists()


def test_soft_targets_mix_the_true_class_with_the_teacher_s_softened_probabilities():
    from alledge.train.cnn import soft_targets
    teacher = np.array([[0.90, 0.08, 0.01, 0.01], [0.05, 0.05, 0.10, 0.80]])
    y = np.array([0, 2])           # the teacher is wrong on the second image
    t = soft_targets(teacher, y, 4, share=0.5, temperature=2.0)
    assert np.allclose(t.sum(axis=1), 1.0)
    assert t[0].argmax() == 0 and t[1, 2] >= 0.5   # the true class keeps its share
    softened = soft_targets(teacher, y, 4, share=1.0, temperature=2.0)
    assert softened[0, 0] < 0.90 and softened[0, 1] > 0.08   # temperature 2 softens
    assert np.allclose(soft_targets(teacher, y, 4, share=0.0), np.eye(4)[y])


def test_the_cnn_can_learn_from_a_teacher_trained_on_the_same_split(trained, run_cli, tmp_path):
    teacher = trained["models"] / "improved-cnn"
    out = tmp_path / "distilled"
    args = ("train", "cnn", "--data", trained["data"], "--split", trained["split"])
    r = run_cli(*args, "--out", out, "--epochs", 1, "--augment", "--teacher", teacher)
    assert r.exit_code == 0, r.stderr
    info = json.loads((out / "model.json").read_text())
    assert info["name"] == "improved-cnn-augmented-distilled"
    assert "improved-cnn-augmented-distilled: test accuracy" in r.stdout   # its summary says so
    assert info["teacher"]["split_id"] == trained["split_id"]
    assert info["distilled"] == {"share": 0.5, "temperature": 2.0}
    # it was tested on the split's test part, with its true classes
    assert 0.0 <= json.loads((out / "metrics.json").read_text())["accuracy"] <= 1.0
    # a teacher without captures to teach on, or from another split, is refused in one line
    r = run_cli(*args, "--out", tmp_path / "x", "--teacher", teacher)
    assert r.exit_code == 2 and "give both" in r.stderr
    other = tmp_path / "other-teacher"
    other.mkdir()
    (other / "model.keras").write_bytes((teacher / "model.keras").read_bytes())
    moved = {**json.loads((teacher / "model.json").read_text()), "split_id": "0" * 64}
    (other / "model.json").write_text(json.dumps(moved))
    r = run_cli(*args, "--out", tmp_path / "y", "--augment", "--teacher", other)
    assert r.exit_code == 2 and "another split" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "y").exists()
