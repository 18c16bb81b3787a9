"""EfficientNet-Lite0 fine-tuned end to end on augmented captures, with a softmax head.

The frozen extractor + SVM reads how this dataset's pictures were taken (JPEG texture,
exposure) as much as the cells: `alledge stress` shows JPEG 60 costing it half its accuracy.
Here the network itself learns from a fresh random capture of every training image each
epoch (alledge.train.capture_changes.augment: rotations, flips, exposure, gamma, white
balance, stain, hue, zoom, blur, noise, JPEG 40-95), half of them left clean.

What is trained and why:
- the last `train_blocks` MBConv blocks, the 1x1 head convolution and a new Dense head: the
  late layers hold the task-specific features; the early ones (edges, colours) are kept, which
  on these 2 CPU cores also keeps the backward pass short;
- every BatchNormalization layer stays frozen, in inference mode: with batches of 32 on a
  CPU, fresh batch statistics would be noisier than the ImageNet ones.
The epoch with the best validation accuracy (10% of the training split, never trained on)
is kept. The result is a 'cnn' model directory: `alledge convert` makes its bundle (its
penultimate features feed the out-of-domain gate).
"""
import time
from pathlib import Path

import numpy as np

from alledge.device.preprocess import apply_white_point

from .capture_changes import augment, flip, rotate90

DEFAULT_EPOCHS = 6
DEFAULT_TRAIN_BLOCKS = 5      # Lite0's last two stages: blocks 11-15
CLEAN_SHARE = 0.5


def build_finetune_model(backbone, n_classes=4, train_blocks=DEFAULT_TRAIN_BLOCKS, seed=0):
    import keras
    from keras import layers
    keras.utils.set_random_seed(seed)
    blocks = sorted({int(layer.name.split("_")[0][5:]) for layer in backbone.layers
                     if layer.name.startswith("block")})
    first = blocks[-train_blocks] if train_blocks > 0 else blocks[-1] + 1
    for layer in backbone.layers:
        name = layer.name
        late = name.startswith("head") or (name.startswith("block")
                                           and int(name.split("_")[0][5:]) >= first)
        layer.trainable = late and not isinstance(layer, layers.BatchNormalization)
    x = layers.Dropout(0.2, name="head_dropout")(backbone.output)
    out = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(backbone.input, out, name="efficientnet_lite0_finetuned")


def augmented_epoch(x, rng, clean_share=CLEAN_SHARE, white_point=None, turn_clean=False,
                    max_gain=None):
    """A new random capture of every image; `clean_share` of them left as they are (with
    `turn_clean`, only turned and flipped: one of the square's 8 views at random). With a
    white point, every image (clean or not) is then scaled to it, as the device will."""
    out = x.copy()
    captured = rng.random(len(x)) >= clean_share
    for i in np.nonzero(captured)[0]:
        out[i] = augment(x[i], rng, max_gain)
    if turn_clean:
        for i in np.nonzero(~captured)[0]:
            out[i] = dihedral(x[i], int(rng.integers(8)))
    return with_white_point(out, white_point)


def dihedral(rgb, k):
    """View k (0-7) of a square image: k % 4 quarter turns, then a mirror when k >= 4."""
    out = rotate90(rgb, None, k % 4)
    return flip(out, None, 1) if k >= 4 else out


def with_white_point(x, white_point):
    """The images scaled to the white point (alledge.device.preprocess), or as they are."""
    if white_point is None:
        return x
    return np.stack([apply_white_point(im, white_point) for im in x])


def finetune(x, y, out_dir, backbone, epochs=DEFAULT_EPOCHS, train_blocks=DEFAULT_TRAIN_BLOCKS,
             batch_size=32, learning_rate=3e-4, seed=0, white_point=None, max_gain=None,
             log=print):
    """Returns (model with the best validation epoch's weights, info dict). With a
    `white_point`, the network learns from (and is validated on) inputs scaled to it;
    `max_gain`: the augmentation's exposures reach it (capture_changes.augment)."""
    import keras
    from .cnn import validation_split
    tr, va = validation_split(y, 0.1, seed=42)
    model = build_finetune_model(backbone, int(y.max()) + 1, train_blocks, seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(seed)
    best, best_epoch, history = -1.0, 0, []
    ckpt = Path(out_dir) / "best.weights.h5"
    x_va = with_white_point(x[va], white_point)
    for epoch in range(1, epochs + 1):
        t0 = time.time()
        xa = augmented_epoch(x[tr], rng, white_point=white_point, max_gain=max_gain)
        h = model.fit(xa, y[tr], batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
        _, val_acc = model.evaluate(x_va, y[va], batch_size=64, verbose=0)
        dt = time.time() - t0
        history.append({"epoch": epoch, "loss": float(h.history["loss"][0]),
                        "accuracy": float(h.history["accuracy"][0]),
                        "val_accuracy": float(val_acc), "seconds": round(dt, 1)})
        log(f"epoch {epoch}: {dt:.0f}s ({len(tr) / dt:.1f} img/s incl. augmentation), loss "
            f"{history[-1]['loss']:.4f} acc {history[-1]['accuracy']:.4f} val_acc {val_acc:.4f}")
        if val_acc > best:
            best, best_epoch = float(val_acc), epoch
            model.save_weights(ckpt)
    model.load_weights(ckpt)
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return model, {"epochs_run": epochs, "best_epoch": best_epoch, "best_val_accuracy": best,
                   "n_train": int(len(tr)), "n_val": int(len(va)), "train_blocks": train_blocks,
                   "trainable_params": trainable, "history": history,
                   "augmentation": f"alledge.train.capture_changes.augment, "
                                   f"{int(100 * (1 - CLEAN_SHARE))}% of images per epoch",
                   **({"max_gain": max_gain} if max_gain is not None else {}),
                   "frozen": "blocks before the last train_blocks, every BatchNormalization"}
