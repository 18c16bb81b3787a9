"""Frozen feature extractors: Keras' EfficientNet-B0..B7 and the edge-made Lite0..2.

Every extractor takes uint8-range RGB (0..255) at its input size and returns globally
average-pooled features; normalisation is inside the model (Keras' EfficientNets have their
own Rescaling/Normalization layers; the Lite port has (x-127.5)/127.5).

Weights are never fetched silently: `imagenet` for B0-B7 is Keras' own download and needs
the internet; when it fails we stop and name --weights PATH. `none` gives random weights and
every result made with it is labelled random.
"""
import hashlib
from pathlib import Path

KERAS_EFFICIENTNETS = {
    # name: (keras.applications constructor, the paper's input size)
    "efficientnet-b0": ("EfficientNetB0", 224),
    "efficientnet-b1": ("EfficientNetB1", 224),
    "efficientnet-b2": ("EfficientNetB2", 224),
    "efficientnet-b3": ("EfficientNetB3", 224),
    "efficientnet-b4": ("EfficientNetB4", 224),
    "efficientnet-b5": ("EfficientNetB5", 224),
    "efficientnet-b6": ("EfficientNetB6", 128),
    "efficientnet-b7": ("EfficientNetB7", 128),
}
LITE = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
BACKBONES = {**{k: v[1] for k, v in KERAS_EFFICIENTNETS.items()}, **LITE}


class WeightsUnavailable(RuntimeError):
    """Pretrained weights cannot be had offline; the message says what to pass instead."""


def default_size(name):
    return BACKBONES[name]


def weights_id(weights, name=""):
    """A short, stable name of the weights: 'imagenet' (or the Lite package's own id),
    'random' or 'file:<sha256[:16]>'. It keys the feature cache."""
    if weights == "none":
        return "random"
    if weights == "imagenet":
        if name in LITE:
            from .lite import WEIGHTS_ID
            return WEIGHTS_ID[name]
        return "imagenet"
    if not Path(weights).is_file():
        raise WeightsUnavailable(f"weights file not found: {weights}")
    h = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    return f"file:{h[:16]}"


def build_backbone(name, weights="imagenet", input_size=None):
    """Keras model: (size, size, 3) 0..255 RGB -> pooled features."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name}; one of {', '.join(BACKBONES)}")
    size = input_size or BACKBONES[name]
    if name in LITE:
        from .lite import lite_backbone
        return lite_backbone(name, weights=weights, input_size=size)
    import keras
    ctor = getattr(keras.applications, KERAS_EFFICIENTNETS[name][0])
    kw = dict(include_top=False, input_shape=(size, size, 3), pooling="avg")
    if weights == "none":
        return ctor(weights=None, **kw)
    if weights == "imagenet":
        try:
            return ctor(weights="imagenet", **kw)
        except Exception as e:  # no internet: keras raises from its downloader
            raise WeightsUnavailable(
                f"ImageNet weights for {name} need a download from the internet, which "
                f"failed ({type(e).__name__}). Pass --weights PATH with a local Keras weights "
                f"file (e.g. {KERAS_EFFICIENTNETS[name][0].lower()}_notop.h5), "
                f"or --weights none for random weights.") from None
    if not Path(weights).is_file():
        raise WeightsUnavailable(f"weights file not found: {weights}")
    model = ctor(weights=None, **kw)
    model.load_weights(weights)
    return model
