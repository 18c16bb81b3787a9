"""Batched feature extraction with an on-disk cache.

The cache is keyed by backbone, weights id, input size and each image's sha256, so the grid
search, Table 3 and the report never extract the same image twice. One .npy per image in
<cache>/features/<backbone>-<weights id>-<size>/, written atomically.
"""
import sys
import time
from pathlib import Path

import numpy as np

from alledge.device.fileio import atomic_writer
from alledge.device.preprocess import load_input

from .cache import cache_dir


def feature_dir(backbone, weights_id, size):
    return cache_dir("features", f"{backbone}-{weights_id.replace(':', '_')}-{size}")


def extract(model, images, batch_size=32, progress=None):
    """model(images) in batches; images uint8 [n,s,s,3]. progress(done) after each batch."""
    out = []
    for i in range(0, len(images), batch_size):
        out.append(np.asarray(model(images[i:i + batch_size].astype("float32"), training=False)))
        if progress:
            progress(min(i + batch_size, len(images)))
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def _progress_line(label, total, start, stream=sys.stderr):
    """A one-line progress bar with images per second, redrawn in place."""
    t0 = time.time()

    def show(done_in_chunk):
        done = start + done_in_chunk
        rate = (done - start) / max(time.time() - t0, 1e-9)
        bar = "#" * int(30 * done / total)
        end = "\n" if done == total else ""
        print(f"\r  {label} [{bar:<30}] {done}/{total} ({rate:.1f} img/s)", end=end,
              file=stream, flush=True)
    return show


def cached_features(model_fn, root, rows, backbone, weights_id, size, batch_size=32):
    """Features for split rows, extracting only images not already in the cache.

    model_fn is called (once) only if something is missing, so a warm cache never builds
    the network.
    """
    d = feature_dir(backbone, weights_id, size)
    d.mkdir(parents=True, exist_ok=True)
    paths = [d / f"{r['sha256']}.npy" for r in rows]
    missing = [i for i, p in enumerate(paths) if not p.exists()]
    if missing:
        model = model_fn()
        todo = sorted({rows[i]["sha256"]: i for i in missing}.values())
        for start in range(0, len(todo), 256):  # bounded memory for big sets
            chunk = todo[start:start + 256]
            images = np.stack([load_input(Path(root) / rows[i]["path"], size) for i in chunk])
            show = _progress_line(f"{backbone} features", len(todo), start)
            feats = extract(model, images, batch_size, show)
            for i, f in zip(chunk, feats):
                with atomic_writer(paths[i]) as out:
                    np.save(out, f)
    return np.stack([np.load(p) for p in paths])
