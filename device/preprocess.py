"""The one definition of preprocessing. Training calls it, the Pi calls it.

An image (file path, encoded bytes or an RGB frame) becomes the model's input array:
RGB, resized to the model's square input with INTER_AREA (it averages pixels when
shrinking a camera frame, so no aliasing; on the 224x224 dataset images it is a no-op),
in the dtype the model takes. Normalisation lives inside the models, so uint8 0-255 is
what every model sees, float or int8.
"""
import cv2
import numpy as np

from .images import read_rgb

INTERPOLATION = cv2.INTER_AREA
INTERPOLATION_NAME = "cv2.INTER_AREA"


def resize(rgb, size):
    """Resize an HxWx3 uint8 RGB array to size x size."""
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    return cv2.resize(rgb, (size, size), interpolation=INTERPOLATION)


def preprocess(rgb, size, dtype=np.uint8):
    """HxWx3 uint8 RGB -> size x size x 3 array of `dtype` holding 0..255."""
    return resize(rgb, size).astype(dtype, copy=False)


def load_input(path, size, dtype=np.uint8):
    """Image file -> model input array (no batch axis). Raises ImageError on bad files."""
    return preprocess(read_rgb(path), size, dtype)
