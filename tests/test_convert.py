"""Conversion: every quantization level, float32 equal to Keras, int8 close to float32."""
import json

import numpy as np
import pytest

from alledge.device import exitcodes

pytestmark = pytest.mark.slow

# Floors: the measurements int8_agreement_<model> in results/measurements/test_convert.json
# (`make measure`; on the 36 synthetic test images: random-weights B0 features magnify
# quantization error, real Lite0 features agree on 98.7-99.3%, tests/test_convert_real.py and
# the report) minus 2 of the 36 images.
INT8_AGREEMENT_MARGIN = 2 / 36


@pytest.fixture(scope="session")
def bundles(trained, tmp_path_factory):
    from alledge.convert.build import build_bundle
    out = tmp_path_factory.mktemp("bundles")
    made = {}
    for model in ("improved-cnn", "efficientnet-b0-svm"):
        for quant in ("float32", "float16", "dynamic", "int8"):
            made[model, quant] = out / f"{model}-{quant}"
            build_bundle(trained["models"] / model, made[model, quant], quant,
                         data_dir=trained["data"], split_csv=trained["split"], calibration=40,
                         log=lambda m: None)
    return made


def _test_images(trained, n=None):
    from alledge.train.loader import load_arrays
    from alledge.train.split import subset
    return load_arrays(trained["data"], subset(trained["rows"], "test")[:n], 224,
                       progress=False)


@pytest.mark.parametrize("model", ["improved-cnn", "efficientnet-b0-svm"])
def test_every_level_makes_a_verified_bundle_with_its_io_quantization(bundles, model):
    from alledge.device.bundle import load_bundle
    for quant in ("float32", "float16", "dynamic", "int8"):
        b = load_bundle(bundles[model, quant])
        m = b.manifest
        assert m["quantization"] == quant
        assert m["metrics"]["n"] > 0
        assert (m["svm_file"] is not None) == (model.endswith("svm"))
        if quant == "int8":
            assert m["input"]["dtype"] == "uint8"
            assert m["input"]["quantization"]["scale"] > 0
        else:
            assert m["input"]["dtype"] == "float32"


def test_sizes_shrink_with_quantization(bundles):
    sizes = {q: (bundles["improved-cnn", q] / "model.tflite").stat().st_size
             for q in ("float32", "float16", "dynamic", "int8")}
    assert sizes["float16"] < 0.6 * sizes["float32"]
    assert sizes["int8"] < 0.3 * sizes["float32"]
    assert sizes["dynamic"] < 0.3 * sizes["float32"]


def test_float32_bundle_outputs_equal_keras_within_1e4(trained, bundles, measured):
    """Allowed: twice the measurement float32_vs_keras_cnn in
    results/measurements/test_convert.json (`make measure`), never more than 1e-4."""
    import keras
    from alledge.convert.evaluation import bundle_classifier
    x, _ = _test_images(trained, 12)
    model = keras.saving.load_model(trained["models"] / "improved-cnn" / "model.keras")
    ref = model.predict(x.astype("float32"), verbose=0)
    clf = bundle_classifier(bundles["improved-cnn", "float32"])
    got = np.array([clf.infer(clf.prepare(im)) for im in x])
    diff = float(np.abs(got - ref).max())
    want = measured("float32_vs_keras_cnn", diff)
    assert diff <= min(max(2 * want, 1e-6), 1e-4), (diff, want)


def test_int8_predictions_agree_with_float32(trained, bundles, measured):
    from alledge.convert.evaluation import bundle_classifier, predict
    from alledge.device.images import read_rgb
    from alledge.train.dataset import resolve_root
    from alledge.train.split import subset
    root = resolve_root(trained["data"])
    images = [read_rgb(root / r["path"]) for r in subset(trained["rows"], "test")]
    for model in ("improved-cnn", "efficientnet-b0-svm"):
        p32, _ = predict(bundle_classifier(bundles[model, "float32"]), images)
        p8, _ = predict(bundle_classifier(bundles[model, "int8"]), images)
        agreement = np.mean(p32.argmax(1) == p8.argmax(1))
        print(f"{model}: int8 agrees with float32 on {agreement:.3f} of {len(images)}")
        want = measured(f"int8_agreement_{model}", float(agreement))
        assert agreement >= want - INT8_AGREEMENT_MARGIN, (model, agreement, want)


def test_edgetpu_without_the_compiler_says_so_and_keeps_the_int8_model(trained, run_cli,
                                                                       tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no edgetpu_compiler here
    r = run_cli("convert", trained["models"] / "improved-cnn", "--out", tmp_path / "b",
                "--quant", "int8", "--edgetpu", "--data", trained["data"], "--calibration", 8,
                "--no-eval")
    assert r.exit_code == 0, r.stderr
    assert "edgetpu_compiler is not installed" in r.stderr
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["edgetpu_model_file"] is None and m["quantization"] == "int8"


def test_edgetpu_needs_int8(trained, run_cli, tmp_path):
    r = run_cli("convert", trained["models"] / "improved-cnn", "--out", tmp_path / "b",
                "--quant", "float16", "--edgetpu")
    assert r.exit_code == exitcodes.USAGE and "int8" in r.stderr


def test_int8_calibration_draws_from_the_training_split_only(trained):
    from alledge.convert.tflite import representative_rows
    picked = representative_rows(trained["rows"], 20)
    assert len(picked) == 20 and all(r["subset"] == "train" for r in picked)
    assert len({r["label"] for r in picked}) == 4


def test_convert_refuses_a_model_dir_from_another_split(trained, run_cli, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text(trained["split"].read_text().replace("train", "test", 1))
    r = run_cli("convert", trained["models"] / "improved-cnn", "--out", tmp_path / "b",
                "--quant", "int8", "--data", trained["data"], "--split", other)
    assert r.exit_code == exitcodes.USAGE and "not the split" in r.stderr


def test_a_cnn_without_a_validation_part_makes_no_gated_bundle(trained, run_cli, tmp_path):
    # its gate would be fitted on the validation part, which it trained on (--no-validation)
    import shutil
    model = tmp_path / "model"
    shutil.copytree(trained["models"] / "improved-cnn", model)
    info = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**info, "n_val": 0}))
    r = run_cli("convert", model, "--out", tmp_path / "b", "--quant", "int8",
                "--data", trained["data"], "--split", trained["split"])
    assert r.exit_code == exitcodes.USAGE and "no validation part" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "b").exists()
    # an ungated float bundle of it can be made, and `alledge gate` refuses it the same way
    r = run_cli("convert", model, "--out", tmp_path / "f", "--quant", "float32", "--no-eval")
    assert r.exit_code == 0, r.stderr
    r = run_cli("gate", tmp_path / "f", "--data", trained["data"], "--split", trained["split"])
    assert r.exit_code == exitcodes.USAGE and "no validation part" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("damage, message", [
    ("model.json", "not valid JSON"),
    ("model.keras", "cannot be loaded as a Keras model"),
])
def test_a_damaged_model_directory_is_one_line_and_exit_2(trained, run_cli, tmp_path,
                                                          damage, message):
    import shutil
    model = tmp_path / "model"
    shutil.copytree(trained["models"] / "improved-cnn", model)
    (model / damage).write_text("{damaged")
    r = run_cli("convert", model, "--out", tmp_path / "b", "--quant", "float32", "--no-eval")
    assert r.exit_code == exitcodes.USAGE and message in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "b").exists()
