"""The TFLite interpreter and tiny functions around it, in the manner of pycoral's adapters.

Which interpreter: `ai_edge_litert` (LiteRT, works with numpy 2), else `tflite_runtime` (the
older Pi package, numpy<2), else `tensorflow.lite` — the last only when neither is
installed, so a device never pays TensorFlow's import when a small runtime is there.

Versions met in practice, and what differs between them for this module:
- LiteRT 1.1-1.4: the only LiteRT with aarch64 wheels (CPython 3.11/3.12), so what a Pi
  runs; LiteRT 2.x: x86_64 and newer Pythons. Both: `ai_edge_litert.interpreter`,
  `Interpreter(model_path, num_threads, experimental_delegates)` and `load_delegate`.
  1.1.0 alone fails on any num_threads (AttributeError '_interpreter'): the `device` extra
  asks for >= 1.2. All of them run one thread when num_threads is None.
- tflite-runtime 2.14 (last release; Python <= 3.11, numpy<2): the same names.
- tensorflow.lite (TensorFlow 2.18-2.21, e.g. a Pi on Python 3.13 where no LiteRT wheel
  exists): `load_delegate` lives in `tf.lite.experimental`, and every Interpreter warns
  over five lines that it is deprecated; that warning is held back (`alledge info` names
  the runtime in use).
The tests run the device commands on LiteRT 2.x (`make test`), LiteRT 1.2, the oldest the
`device` extra allows (`make test-litert1`), tflite-runtime 2.14 (`make test-tflite`) and
LiteRT 1.4 on emulated aarch64 (`make test-pi`).
"""
import ctypes
import ctypes.util
import importlib
import os
import tempfile
import warnings
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from .messages import first_line

# (module to import, distribution name for its version)
RUNTIMES = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow.lite", "tensorflow"),
)
EDGETPU_LIBRARY = "libedgetpu.so.1"


class RuntimeUnavailable(RuntimeError):
    """No TFLite interpreter is installed."""


class DelegateError(RuntimeError):
    """A requested delegate (the Edge TPU) cannot be loaded."""


@lru_cache(maxsize=1)
def runtime():
    """(module name, version, Interpreter class, load_delegate) of the first runtime found."""
    for module_name, dist in RUNTIMES:
        if module_name == "tensorflow.lite":
            # TensorFlow logs its CPU features and a oneDNN note on import; the CLI's stderr
            # is for one-line messages (a user's own settings win). oneDNN only speeds
            # TensorFlow's own ops, never the TFLite interpreter, so turning it off costs
            # nothing here and is the one way to silence that note.
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if module_name == "tensorflow.lite":
            # import_module gives the tensorflow/lite source package, which has no
            # Interpreter; the API is the attribute tf.lite of the tensorflow package
            module = importlib.import_module("tensorflow").lite
            return module_name, _version(dist), module.Interpreter, module.experimental.load_delegate
        return module_name, _version(dist), module.Interpreter, module.load_delegate
    raise RuntimeUnavailable("no TFLite interpreter installed: pip install 'alledge[device]' "
                             "(ai-edge-litert; on a Pi it needs Python 3.11 or 3.12, see the "
                             "README's Pi install) or tflite-runtime")


def _version(dist):
    from importlib.metadata import PackageNotFoundError, version
    for name in (dist, dist + "-cpu") if dist == "tensorflow" else (dist,):
        try:
            return version(name)
        except PackageNotFoundError:
            pass
    return "unknown"


def edgetpu_library():
    """Path/name of the Edge TPU runtime library if the system has it, else None."""
    return ctypes.util.find_library("edgetpu")


def make_interpreter(model_path, threads=None, delegate=None):
    """An interpreter with tensors allocated. delegate: None or 'edgetpu'."""
    _, _, Interpreter, load_delegate = runtime()
    delegates = None
    if delegate == "edgetpu":
        try:
            # Open the library ourselves first: LiteRT's load_delegate prints an ignored
            # exception from Delegate.__del__ when the library file is absent.
            ctypes.CDLL(EDGETPU_LIBRARY)
            delegates = [load_delegate(EDGETPU_LIBRARY)]
        except (ValueError, OSError, RuntimeError) as e:
            reason = first_line(e)
            raise DelegateError(f"cannot load the Edge TPU delegate ({EDGETPU_LIBRARY}): "
                                f"{reason}; is the Coral runtime installed and the "
                                "accelerator plugged in?") from None
    elif delegate is not None:
        raise DelegateError(f"unknown delegate '{delegate}' (supported: edgetpu)")
    with _native_stderr_without_info(), warnings.catch_warnings():
        # tensorflow.lite's deprecation notice, printed on every start; not ours to act on
        warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
        interpreter = Interpreter(model_path=str(model_path), num_threads=threads,
                                  experimental_delegates=delegates)
        interpreter.allocate_tensors()
    return interpreter


@contextmanager
def _native_stderr_without_info():
    """Hold back the runtime's native "INFO: Created ... XNNPACK delegate" lines.

    LiteRT writes them to file descriptor 2 on every start and no setting turns them off;
    they would bury the one-line messages of the CLI. Anything else it writes (warnings,
    errors) is passed on to stderr unchanged.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().splitlines(keepends=True)
                    if not line.startswith(b"INFO: ")]
            if kept:
                os.write(2, b"".join(kept))


def input_details(interpreter):
    """The one input tensor's details (shape, dtype, quantization...)."""
    return interpreter.get_input_details()[0]


def output_details(interpreter):
    """The model's main output: the only one, or, for a CNN that also exposes its penultimate
    features (for the out-of-domain score), the smaller of the two: the probabilities."""
    outs = interpreter.get_output_details()
    return min(outs, key=lambda d: int(np.prod(d["shape"]))) if len(outs) > 1 else outs[0]


def features_details(interpreter):
    """A CNN's second output, its penultimate features; None when the model has one output."""
    outs = interpreter.get_output_details()
    return max(outs, key=lambda d: int(np.prod(d["shape"]))) if len(outs) > 1 else None


def input_size(interpreter):
    """Side of the square input image (the model takes 1 x size x size x 3)."""
    return int(input_details(interpreter)["shape"][1])


def quantization(details):
    """{'scale', 'zero_point'} of a quantized tensor, or None for a float one."""
    scale, zero_point = details["quantization"]
    if scale == 0:
        return None
    return {"scale": float(scale), "zero_point": int(zero_point)}


def set_input(interpreter, image):
    """Put one HxWx3 image holding 0..255 into the input tensor, in the tensor's dtype.

    A uint8 input whose quantization maps 0..255 onto itself (scale 1, zero point 0, what the
    converter makes for uint8 input) takes the pixels as they are; any other integer input
    is quantized from 0..255 with its scale and zero point.
    """
    details = input_details(interpreter)
    dtype = details["dtype"]
    q = quantization(details)
    x = np.asarray(image)
    if np.issubdtype(dtype, np.integer) and q and (q["scale"], q["zero_point"]) != (1.0, 0):
        info = np.iinfo(dtype)
        x = np.round(x.astype(np.float32) / q["scale"] + q["zero_point"])
        x = np.clip(x, info.min, info.max)
    interpreter.set_tensor(details["index"], x.astype(dtype, copy=False)[None, ...])


def invoke(interpreter):
    interpreter.invoke()


def get_output(interpreter, details=None):
    """An output tensor's first row (default: the main output) as float32, dequantized when
    the tensor is quantized."""
    details = output_details(interpreter) if details is None else details
    y = interpreter.get_tensor(details["index"])[0]
    q = quantization(details)
    if q and np.issubdtype(y.dtype, np.integer):
        return (y.astype(np.float32) - q["zero_point"]) * q["scale"]
    return y.astype(np.float32, copy=False)
