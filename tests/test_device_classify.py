"""`alledge classify`: files, folders, globs -> one result per image; bad inputs reported."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from alledge.device import exitcodes
from alledge.device.classify import Classifier
from alledge.device.bundle import load_bundle
from alledge.device.cli import main
from alledge.device.images import read_rgb
from alledge.device.runtime import edgetpu_library
from bundles import CLASSES, cnn_bundle, image_dir, svm_bundle, tflite_features


def classify(*args, env=None):
    r = CliRunner().invoke(main, ["classify", *map(str, args), "--no-log"], env=env)
    return r.exit_code, r.output


def json_lines(output):
    return [json.loads(line) for line in output.splitlines()]


@pytest.mark.parametrize("int8", [False, True], ids=["float32", "int8"])
def test_json_lines_follow_the_design(tmp_path_factory, int8):
    bundle = cnn_bundle(tmp_path_factory, int8=int8)
    images = image_dir(tmp_path_factory)
    code, out = classify(images, "--bundle", bundle, "--json")
    assert code == exitcodes.OK
    rows = json_lines(out)
    assert [r["path"] for r in rows] == sorted(str(p) for p in images.iterdir())
    for r in rows:
        assert list(r) == ["path", "status", "label", "probabilities", "prediction_set",
                           "ood_score", "quality", "latency_ms", "bundle"]
        assert r["status"] == "ok" and r["prediction_set"][0] == r["label"]
        assert r["ood_score"] is None  # a CNN bundle has no out-of-domain gate yet
        assert list(r["probabilities"]) == list(CLASSES)
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=0.02)
        assert r["latency_ms"] > 0 and r["bundle"] == load_bundle(bundle).id


def test_svm_bundle_gives_sklearns_calibrated_probabilities(tmp_path_factory):
    bundle, model = svm_bundle(tmp_path_factory)
    images = image_dir(tmp_path_factory)
    code, out = classify(images, "--bundle", bundle, "--json")
    assert code == exitcodes.OK
    tflite = (bundle / "model.tflite").read_bytes()
    for r in json_lines(out):
        feats = tflite_features(tflite, read_rgb(r["path"]))[None]
        expected = model.predict_proba(feats)[0]
        np.testing.assert_allclose(list(r["probabilities"].values()), expected, atol=1e-6)
        assert r["label"] == CLASSES[model.predict(feats)[0]]


def test_bad_file_in_a_batch_is_reported_and_the_batch_goes_on(tmp_path_factory, tmp_path):
    images = sorted(image_dir(tmp_path_factory).iterdir())[:2]
    (tmp_path / "notes.jpg").write_text("not an image")
    args = [images[0], tmp_path / "notes.jpg", tmp_path / "missing.png", images[1]]
    code, out = classify(*args, "--bundle", cnn_bundle(tmp_path_factory), "--json")
    assert code == exitcodes.SOME_FAILED
    rows = json_lines(out)
    assert [r["path"] for r in rows] == [str(a) for a in args]
    assert "label" in rows[0] and "label" in rows[3]
    assert rows[1] == {"path": str(tmp_path / "notes.jpg"), "status": "error", "label": None,
                       "error": "not a JPEG or PNG image"}
    assert rows[2] == {"path": str(tmp_path / "missing.png"), "status": "error", "label": None,
                       "error": "no such file"}


def test_globs_expand_sorted_and_empty_patterns_are_errors(tmp_path_factory):
    images = image_dir(tmp_path_factory)
    code, out = classify(f"{images}/*.png", f"{images}/*.gif", "--bundle",
                         cnn_bundle(tmp_path_factory), "--json")
    rows = json_lines(out)
    assert [r["path"] for r in rows[:-1]] == sorted(str(p) for p in images.glob("*.png"))
    assert rows[-1]["error"] == "pattern matches no files" and code == exitcodes.SOME_FAILED


def test_human_output_names_label_probabilities_and_latency(tmp_path_factory):
    image = sorted(image_dir(tmp_path_factory).iterdir())[0]
    code, out = classify(image, "--bundle", cnn_bundle(tmp_path_factory), "--threads", "1")
    assert code == 0 and out.startswith(f"{image}: ")
    assert all(c in out for c in CLASSES) and out.rstrip().endswith("ms")


def test_bundle_comes_from_the_environment(tmp_path_factory):
    image = sorted(image_dir(tmp_path_factory).iterdir())[0]
    bundle = cnn_bundle(tmp_path_factory, int8=True)
    code, out = classify(image, "--json", env={"ALLEDGE_BUNDLE": str(bundle)})
    assert code == 0 and json_lines(out)[0]["bundle"].startswith("tiny-cnn-int8@")


def test_an_install_without_a_default_bundle_says_what_to_do(tmp_path, monkeypatch):
    from alledge.device import bundle as bundle_module
    monkeypatch.delenv("ALLEDGE_BUNDLE", raising=False)
    monkeypatch.setattr(bundle_module, "DEFAULT_BUNDLE", tmp_path / "not-installed")
    with pytest.raises(bundle_module.BundleError, match="--bundle DIR or set ALLEDGE_BUNDLE"):
        bundle_module.load_selected_bundle(None)


def test_edgetpu_without_an_edgetpu_model_exits_no_delegate(tmp_path_factory):
    image = sorted(image_dir(tmp_path_factory).iterdir())[0]
    code, out = classify(image, "--bundle", cnn_bundle(tmp_path_factory), "--delegate", "edgetpu")
    assert code == exitcodes.NO_DELEGATE and "no Edge TPU model" in out


@pytest.mark.skipif(edgetpu_library() is not None, reason="libedgetpu is installed here")
def test_edgetpu_without_the_library_exits_no_delegate(tmp_path_factory, tmp_path):
    from alledge.convert.bundle import write_bundle
    tflite = (cnn_bundle(tmp_path_factory, int8=True) / "model.tflite").read_bytes()
    bundle = write_bundle(tmp_path / "tpu", tflite,
                          {"kind": "cnn", "name": "tpu", "quantization": "int8"},
                          edgetpu_bytes=tflite)  # stands in for a compiled model
    image = sorted(image_dir(tmp_path_factory).iterdir())[0]
    code, out = classify(image, "--bundle", bundle, "--delegate", "edgetpu")
    assert code == exitcodes.NO_DELEGATE
    assert out.count("\n") == 1 and "libedgetpu.so.1" in out


def test_frames_and_files_classify_alike(tmp_path_factory):
    c = Classifier(load_bundle(cnn_bundle(tmp_path_factory)))
    path = sorted(image_dir(tmp_path_factory).glob("*.png"))[0]
    from_file = c.classify_bytes(path.read_bytes())
    from_frame = c.classify_rgb(read_rgb(path))
    assert from_file["probabilities"] == from_frame["probabilities"]
