"""The device runs on a LiteRT interpreter with TensorFlow impossible to import."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from alledge.device import runtime
from bundles import cnn_bundle, image_dir, svm_bundle

BLOCKED = ("tensorflow", "keras", "sklearn")


def test_litert_is_the_first_choice():
    module, version, _, _ = runtime.runtime()
    assert module == "ai_edge_litert.interpreter" and version != "unknown"


@pytest.fixture(scope="module")
def no_tensorflow(tmp_path_factory):
    """A PYTHONPATH folder whose tensorflow, keras and sklearn raise ImportError on import."""
    d = tmp_path_factory.mktemp("blocker")
    for name in BLOCKED:
        (d / name).mkdir()
        (d / name / "__init__.py").write_text(
            f"raise ImportError('{name} is blocked: the device must not import it')\n")
    env = dict(os.environ, PYTHONPATH=str(d))
    env.pop("ALLEDGE_BUNDLE", None)
    return env


def alledge(args, env):
    code = ("import sys\n"
            "from alledge.device.cli import main\n"
            "try:\n    main(sys.argv[1:])\n"
            "finally:\n"
            "    bad = [m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'sklearn') or m.startswith(('alledge.train', "
            "'alledge.convert'))]\n"
            "    assert not bad, bad\n")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["cnn-int8", "svm"])
def test_classify_runs_without_tensorflow(tmp_path_factory, no_tensorflow, tmp_path, kind):
    bundle = (cnn_bundle(tmp_path_factory, int8=True) if kind == "cnn-int8"
              else svm_bundle(tmp_path_factory)[0])
    images = image_dir(tmp_path_factory)
    p = alledge(["classify", images, "--json", "--bundle", bundle, "--db", tmp_path / "r.db"],
                no_tensorflow)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(rows) == len(list(images.iterdir())) and all("label" in r for r in rows)


def test_info_runs_without_tensorflow(tmp_path_factory, no_tensorflow):
    p = alledge(["info", "--json", "--bundle", cnn_bundle(tmp_path_factory)], no_tensorflow)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["runtime"]["module"] == "ai_edge_litert.interpreter"
    assert info["bundle"]["verified"] and info["bundle"]["manifest"]["kind"] == "cnn"


def run(tflite, rgb):
    """The device's own set_input / get_output around a real interpreter."""
    from alledge.device.preprocess import preprocess
    _, _, Interpreter, _ = runtime.runtime()
    interp = Interpreter(model_content=tflite)
    interp.allocate_tensors()
    dtype = runtime.input_details(interp)["dtype"]
    pixels = preprocess(rgb, runtime.input_size(interp),
                        np.float32 if dtype == np.float32 else np.uint8)
    runtime.set_input(interp, pixels)
    interp.invoke()
    return runtime.get_output(interp)


def test_signed_int8_input_is_quantized_and_output_dequantized(tmp_path_factory):
    """The same model with uint8 and with int8 I/O gives the same probabilities: set_input
    quantizes pixels to int8 with the input's scale/zero point, get_output dequantizes."""
    import tensorflow as tf
    from bundles import _keras_model, smear, to_tflite
    model = _keras_model(False, seed=3)
    as_uint8 = to_tflite(model, int8=True)
    as_int8 = to_tflite(model, int8=True, io_type=tf.int8)
    rng = np.random.default_rng(7)
    for label in range(4):
        rgb = smear(label, rng)
        p_uint8, p_int8 = run(as_uint8, rgb), run(as_int8, rgb)
        assert p_int8.dtype == np.float32
        np.testing.assert_allclose(p_int8, p_uint8, atol=1 / 128)
        assert p_int8.sum() == pytest.approx(1.0, abs=0.02)
