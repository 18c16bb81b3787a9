"""Loading a split's images into arrays, through the device's own preprocessing."""
import sys
import time

import numpy as np

from alledge.device.preprocess import load_input

from .dataset import resolve_root


def load_arrays(data, rows, size, progress=True):
    """(X uint8 [n,size,size,3], y int [n]) for split rows, decoded once.

    Uses device.preprocess.load_input, the function the Pi runs, so training sees exactly
    what the device will feed the model.
    """
    root = resolve_root(data)
    x = np.empty((len(rows), size, size, 3), dtype=np.uint8)
    t0 = time.time()
    for i, r in enumerate(rows):
        x[i] = load_input(root / r["path"], size)
        if progress and (i + 1) % 500 == 0:
            print(f"  decoded {i + 1}/{len(rows)} ({(i + 1) / (time.time() - t0):.0f} img/s)",
                  file=sys.stderr)
    y = np.array([r["label_id"] for r in rows], dtype=np.int64)
    return x, y
