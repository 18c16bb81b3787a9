"""convert.bundle.write_bundle evaluates the staged bundle before its one manifest write."""
import pytest

pytest.importorskip("tensorflow")
from alledge.convert.bundle import write_bundle  # noqa: E402
from alledge.device.bundle import MANIFEST, load_bundle  # noqa: E402
from alledge.device.classify import Classifier  # noqa: E402
from bundles import cnn_bundle, image_dir  # noqa: E402

FIELDS = {"kind": "cnn", "name": "scored", "quantization": "float32"}


def test_metrics_are_in_the_one_manifest_write(tmp_path_factory, tmp_path):
    from alledge.device.images import read_rgb
    tflite = (cnn_bundle(tmp_path_factory) / "model.tflite").read_bytes()
    image = read_rgb(next(p for p in sorted(image_dir(tmp_path_factory).iterdir())))
    seen = {}

    def evaluate(bundle):
        # the staged bundle runs through the device's own Classifier, before any manifest
        seen["manifest_on_disk"] = (bundle.path / MANIFEST).exists()
        seen["final_name_taken"] = (tmp_path / "b").exists()
        probs = Classifier(bundle).classify_rgb(image)["probabilities"]
        return {"n": 1, "probability_sum": round(sum(probs.values()), 6)}

    out = write_bundle(tmp_path / "b", tflite, FIELDS, evaluate=evaluate)
    assert seen == {"manifest_on_disk": False, "final_name_taken": False}
    assert load_bundle(out).manifest["metrics"] == {"n": 1, "probability_sum": 1.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_a_failed_evaluation_leaves_the_old_bundle_untouched(tmp_path_factory, tmp_path):
    tflite = (cnn_bundle(tmp_path_factory) / "model.tflite").read_bytes()
    out = write_bundle(tmp_path / "b", tflite, dict(FIELDS, name="old"))

    def evaluate(bundle):
        raise RuntimeError("test images unreadable")

    with pytest.raises(RuntimeError, match="unreadable"):
        write_bundle(out, tflite, dict(FIELDS, name="new"), evaluate=evaluate)
    assert load_bundle(out).manifest["name"] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no staged leftovers
