"""A bundle is trusted only if its manifest is known and every file matches its sha256."""
import json
import shutil

import pytest
from click.testing import CliRunner

from alledge.device import exitcodes
from alledge.device.bundle import BundleError, load_bundle
from alledge.device.cli import main
from bundles import cnn_bundle, image_dir, svm_bundle


@pytest.fixture
def bundle_copy(tmp_path_factory, tmp_path):
    """A private copy of the float32 CNN bundle, free to damage."""
    return shutil.copytree(cnn_bundle(tmp_path_factory), tmp_path / "bundle")


def edit_manifest(bundle, **changes):
    path = bundle / "manifest.json"
    m = json.loads(path.read_text())
    m.update(changes)
    path.write_text(json.dumps(m))


def test_written_bundle_loads_and_describes_its_model(tmp_path_factory):
    b = load_bundle(cnn_bundle(tmp_path_factory))
    m = b.manifest
    assert m["format_version"] == 1 and m["kind"] == "cnn"
    assert m["classes"] == ["Benign", "Early", "Pre", "Pro"]
    assert m["input"] == {"size": 32, "dtype": "float32", "quantization": None}
    assert m["output"]["kind"] == "probabilities" and m["output"]["dtype"] == "float32"
    assert m["preprocessing"] == {"color": "RGB", "resize": "cv2.INTER_AREA",
                                  "range": "0-255", "normalization": "inside the model"}
    assert set(m["files"]) == {"model.tflite"} and m["svm_file"] is None
    assert b.id.startswith("tiny-cnn-float32@")


def test_int8_bundle_records_uint8_input_and_io_quantization(tmp_path_factory):
    m = load_bundle(cnn_bundle(tmp_path_factory, int8=True)).manifest
    assert m["quantization"] == "int8"
    assert m["input"]["dtype"] == "uint8" and m["output"]["dtype"] == "uint8"
    assert set(m["input"]["quantization"]) == {"scale", "zero_point"}
    assert m["output"]["quantization"]["scale"] > 0


def test_svm_bundle_hashes_its_svm(tmp_path_factory):
    m = load_bundle(svm_bundle(tmp_path_factory)[0]).manifest
    assert m["kind"] == "svm" and m["svm_file"] == "svm.npz"
    assert m["output"]["kind"] == "features"
    assert set(m["files"]) == {"model.tflite", "svm.npz"}


def test_tampered_file_is_refused(bundle_copy):
    with open(bundle_copy / "model.tflite", "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BundleError, match=r"model\.tflite: sha256 does not match"):
        load_bundle(bundle_copy)


def test_missing_file_is_refused(bundle_copy):
    (bundle_copy / "model.tflite").unlink()
    with pytest.raises(BundleError, match=r"model\.tflite: missing from the bundle"):
        load_bundle(bundle_copy)


def test_unknown_format_version_is_refused(bundle_copy):
    edit_manifest(bundle_copy, format_version=2)
    with pytest.raises(BundleError, match=r"manifest\.json: unknown format_version 2"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("damage, message", [
    (lambda b: (b / "manifest.json").unlink(), "manifest.json: missing"),
    (lambda b: (b / "manifest.json").write_text("{not json"), "manifest.json: not valid JSON"),
    (lambda b: edit_manifest(b, model_file="../elsewhere.tflite"), "must be a file name"),
    (lambda b: edit_manifest(b, files={}), "has no sha256"),
    (lambda b: edit_manifest(b, kind="transformer"), "unknown kind"),
])
def test_malformed_manifest_is_refused(bundle_copy, damage, message):
    damage(bundle_copy)
    with pytest.raises(BundleError, match=message) as err:
        load_bundle(bundle_copy)
    assert "\n" not in str(err.value)


def test_missing_directory_is_refused(tmp_path):
    with pytest.raises(BundleError, match="bundle directory not found"):
        load_bundle(tmp_path / "nope")


def test_classify_with_a_bad_bundle_exits_bad_bundle_in_one_line(bundle_copy, tmp_path_factory):
    edit_manifest(bundle_copy, format_version=99)
    images = image_dir(tmp_path_factory)
    r = CliRunner().invoke(main, ["classify", str(images), "--bundle", str(bundle_copy),
                                  "--no-log"])
    assert r.exit_code == exitcodes.BAD_BUNDLE
    assert r.output.count("\n") == 1 and "unknown format_version 99" in r.output
    assert "Traceback" not in r.output


def test_rewriting_a_bundle_replaces_it_whole(tmp_path_factory, tmp_path):
    from alledge.convert.bundle import write_bundle
    src = cnn_bundle(tmp_path_factory)
    tflite = (src / "model.tflite").read_bytes()
    fields = {"kind": "cnn", "name": "again", "quantization": "float32"}
    out = write_bundle(tmp_path / "b", tflite, fields)
    (out / "stray.txt").write_text("left from before")
    write_bundle(out, tflite, dict(fields, name="again2"))
    assert load_bundle(out).manifest["name"] == "again2"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.tflite"]
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temporary leftovers
