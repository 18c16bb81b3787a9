"""The paper's "Improved" CNN, as it describes it, and its training.

Input 224x224x3 -> 5 x [Conv2D(32, 3x3, ReLU) + MaxPooling2D(2x2)] -> Flatten ->
Dense(500, ReLU) -> Dropout(0.5) -> Dense(250, ReLU) -> Dropout(0.5) -> Dense(4, softmax).
With Keras' default 'valid' padding this has 564,642 parameters at 224 (the paper says
8.1M). A Rescaling(1/255) layer sits in front so the model takes uint8 0..255 like every
alledge model; it has no weights and does not change the count.
"""
import csv
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_EPOCHS = 500      # the paper's
DEFAULT_PATIENCE = 30     # stop when validation accuracy has not improved for this many epochs


# An average over about 1 / (1 - momentum) = 200 steps: 3 epochs of the paper split's 2,051
# training images at batch 32
EMA_MOMENTUM = 0.995

# A cosine schedule ends at this share of the first learning rate (1e-3 -> 1e-5, the floor
# the plateau halving is allowed to reach)
COSINE_FLOOR = 0.01


def build_improved_cnn(input_size=224, n_classes=4, seed=0):
    import keras
    from keras import layers
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1 / 255.0)(inputs)
    for i in range(5):
        x = layers.Conv2D(32, 3, activation="relu", name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(500, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Dense(250, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="improved_cnn")


def validation_split(y, fraction=0.1, seed=42):
    """Stratified train/validation index split of the training part."""
    from sklearn.model_selection import train_test_split
    idx = np.arange(len(y))
    return train_test_split(idx, test_size=fraction, random_state=seed, stratify=y)


def _epoch_printer(n_train):
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.time()

        def on_epoch_end(self, epoch, logs=None):
            dt = time.time() - self.t0
            val = (f" val_loss {logs['val_loss']:.4f} val_acc {logs['val_accuracy']:.4f}"
                   if "val_loss" in logs else "")
            print(f"epoch {epoch + 1}: {dt:.0f}s, {n_train / dt:.1f} img/s, "
                  f"loss {logs['loss']:.4f} acc {logs['accuracy']:.4f}{val}",
                  file=sys.stderr, flush=True)

    return EpochTimer()


def read_history(path):
    """Columns of a Keras CSVLogger file as float lists (empty when there is none yet)."""
    cols = {"accuracy": [], "val_accuracy": []}
    if Path(path).is_file():
        for r in csv.DictReader(open(path)):
            for k, v in r.items():
                # Keras writes NA for validation columns of a run without a validation part
                cols.setdefault(k, []).append(float("nan") if v == "NA" else float(v))
    return cols


# Distillation (--teacher): each target is DISTILL_SHARE of the teacher's probabilities,
# softened at DISTILL_TEMPERATURE, and the rest the true class (Hinton et al. 2015, the soft
# targets mixed rather than two losses weighed)
DISTILL_SHARE = 0.5
DISTILL_TEMPERATURE = 2.0


def soft_targets(teacher_probs, y, n_classes, share=DISTILL_SHARE,
                 temperature=DISTILL_TEMPERATURE):
    """(n, C) teacher probabilities and true labels -> (n, C) targets that sum to one."""
    logits = np.log(np.clip(np.asarray(teacher_probs, dtype=np.float64), 1e-7, 1.0)) / temperature
    soft = np.exp(logits - logits.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    return ((1.0 - share) * np.eye(n_classes)[y] + share * soft).astype(np.float32)


def augmented_batches(x, y, batch_size, seed, white_point=None, turn_clean=False,
                      teacher=None, n_classes=4, as_targets=lambda t: t):
    """The training part as a Keras PyDataset that draws a new random capture of half the
    images each epoch (alledge.train.capture_changes.augment, as in the fine-tuning), in a
    new order, scaled to `white_point` when given. With `turn_clean` the other half is
    turned or flipped: orientation carries no class, and this small network prefers the
    orientation of its untouched half (each other dihedral view of the test set reads 0.4-1.0
    points under the untouched one). With a `teacher` (a Keras model), the targets are
    soft_targets of its probabilities on the very images of the batch, as the device would
    feed them to it; else `as_targets` of the true classes (one-hot rows for a categorical
    loss). Runs in the training process: no worker copies."""
    import keras
    from .finetune import augmented_epoch

    class AugmentedCaptures(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x))

        def __len__(self):
            return -(-len(x) // batch_size)

        def __getitem__(self, i):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            xb = augmented_epoch(x[idx], self.rng, white_point=white_point, turn_clean=turn_clean)
            if teacher is None:
                return xb, as_targets(y[idx])
            return xb, soft_targets(np.asarray(teacher.predict_on_batch(xb)), y[idx], n_classes)

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(x))

    return AugmentedCaptures()


def learning_rate_for(learning_rate, epochs, steps_per_epoch, cosine=False):
    """Adam's learning rate: the number, or with `cosine` a schedule of the step that falls
    from it to COSINE_FLOOR of it over epochs x steps_per_epoch steps."""
    if not cosine:
        return learning_rate
    import keras
    return keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps_per_epoch,
                                                  alpha=COSINE_FLOOR)


def without_validation_problem(early_stopping, augment, cosine, ema):
    """Why a run holding no validation part out cannot take these options, in the command
    line's words; None when it can."""
    if early_stopping:
        return "--no-validation leaves nothing to stop early on: give --no-early-stopping too"
    if augment and not cosine:
        return ("--no-validation with --augment needs --cosine: the learning rate otherwise "
                "halves on plateaus of the validation loss")
    if ema:
        return "--ema validates the averaged weights: it needs the validation part"
    return None


def train_cnn(x, y, out_dir, epochs=DEFAULT_EPOCHS, patience=DEFAULT_PATIENCE, batch_size=32,
              learning_rate=1e-3, seed=0, augment=False, white_point=None, turn_clean=False,
              ema=False, teacher=None, label_smoothing=0.0, cosine=False, validate=True):
    """Fit the Improved CNN; keeps the weights of the epoch with the best validation accuracy.

    patience=None runs every epoch (the paper's recipe: no early stopping).
    augment: every epoch sees a new random capture of half the training images (see
    augmented_batches), and the learning rate halves when validation loss has not improved
    for 10 epochs: a network that must read cells rather than one camera's colours learns
    more slowly, and a fixed 1e-3 keeps it bouncing.
    white_point: every input (training, after its augmentation, and validation) is scaled
    to it, as the device scales it (alledge.device.preprocess.apply_white_point).
    ema: the weights validated, checkpointed and kept are an exponential moving average of
    the trained ones (momentum EMA_MOMENTUM a step, about 3 epochs): on augmented epochs the
    weights of any one epoch carry that epoch's random captures, their average less so.
    teacher: with `augment`, a larger Keras model trained on the same training part whose
    probabilities on each augmented batch join the targets (soft_targets): how sure it is,
    and which class it would take second, under a capture change. The validation images
    keep their true classes alone: the epoch kept is chosen on them, as without it.
    label_smoothing: each target keeps 1 - label_smoothing on its class and spreads the rest
    evenly (Szegedy et al. 2016): a network that must not be sure of one camera's look is
    not pushed to certainty on every augmented capture. The validation loss smooths too.
    cosine: the learning rate falls along a cosine from `learning_rate` to COSINE_FLOOR of it
    over all the epochs (Loshchilov & Hutter 2017), instead of halving on plateaus: the
    plateaus are judged on a validation loss of 228 images, which wanders with the epoch's
    random captures, while a fixed schedule ends every run on small steps whatever the
    noise. Give it a run without early stopping: the schedule is laid over every epoch.
    validate=False: no validation part is held out; every training image trains and the last
    epoch's weights are kept. Choosing the best of many epochs on 228 validation images keeps
    a lucky one (the cosine run kept a 98.68% spike, 94.98% on test, while its last 20 epochs
    held 97.4-97.8%); a fixed schedule that ends on small steps needs no choice. It needs
    patience=None and, with `augment`, `cosine` (the plateau halving watches validation);
    see without_validation_problem.

    Returns (model, history dict). The best weights are also checkpointed to out_dir each
    time they improve, so an interrupted run keeps its best epoch.
    """
    import keras
    import tensorflow as tf
    from .finetune import with_white_point
    problem = (None if validate
               else without_validation_problem(patience is not None, augment, cosine, ema))
    if problem:
        raise ValueError(problem)
    tr, va = (validation_split(y, 0.1, seed=42) if validate
              else (np.arange(len(y)), np.arange(0)))
    model = build_improved_cnn(x.shape[1], seed=seed)
    averaged = {"use_ema": True, "ema_momentum": EMA_MOMENTUM} if ema else {}
    if teacher is not None and not augment:
        raise ValueError("a teacher needs augment: its targets are made batch by batch")
    n_classes = model.output_shape[-1]
    # soft targets and smoothing need the categorical loss; every label goes one-hot with them
    categorical = teacher is not None or label_smoothing > 0
    loss = (keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing) if categorical
            else "sparse_categorical_crossentropy")
    as_targets = ((lambda t: np.eye(n_classes, dtype=np.float32)[t]) if categorical
                  else (lambda t: t))
    y_val = as_targets(y[va])
    rate = learning_rate_for(learning_rate, epochs, -(-len(tr) // batch_size), cosine)
    model.compile(optimizer=keras.optimizers.Adam(rate, **averaged),
                  loss=loss, metrics=["accuracy"])
    # Decoded once into memory; tf.data shuffles and prefetches the uint8 arrays.
    if augment:
        train_ds = augmented_batches(x[tr], y[tr], batch_size, seed, white_point, turn_clean,
                                     teacher, n_classes, as_targets)
    else:
        train_ds = (tf.data.Dataset.from_tensor_slices((with_white_point(x[tr], white_point),
                                                         as_targets(y[tr])))
                    .shuffle(len(tr), seed=seed, reshuffle_each_iteration=True)
                    .batch(batch_size).prefetch(tf.data.AUTOTUNE))
    val_ds = (tf.data.Dataset.from_tensor_slices((with_white_point(x[va], white_point), y_val))
              .batch(64).prefetch(2)) if validate else None
    ckpt = f"{out_dir}/best.weights.h5"
    # A long run (the paper's 500 epochs, no early stopping) resumes where it was stopped:
    # BackupAndRestore keeps the weights, optimizer state and epoch counter after every epoch,
    # the CSV log is appended to, and the best-so-far checkpoint is only beaten, not reset.
    history_csv = Path(out_dir) / "history.csv"
    resuming = Path(out_dir, "backup").is_dir()
    earlier = read_history(history_csv) if resuming else {"val_accuracy": []}
    best_so_far = max(earlier["val_accuracy"], default=None)
    callbacks = [
        keras.callbacks.BackupAndRestore(f"{out_dir}/backup"),  # the trained weights
        # then the averaged ones in the model for the checkpoint, until the next epoch begins
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []),
        *([keras.callbacks.ModelCheckpoint(ckpt, monitor="val_accuracy", save_best_only=True,
                                           save_weights_only=True,
                                           initial_value_threshold=best_so_far)]
          if validate else []),
        keras.callbacks.CSVLogger(str(history_csv), append=resuming),
        _epoch_printer(len(tr)),
    ]
    if augment and not cosine:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                           patience=10, min_lr=1e-5))
    if patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy",
                                                       patience=patience))
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=0)
    h = read_history(history_csv)
    if validate:
        model.load_weights(ckpt)  # the best epoch, also when early stopping never fired
        best = int(np.argmax(h["val_accuracy"]))
        kept = {"best_epoch": best + 1, "best_val_accuracy": float(h["val_accuracy"][best])}
    else:  # the last epoch's weights are the model's as fit left them
        kept = {"kept_epoch": len(h["accuracy"]), "kept": "last epoch, no validation part"}
    return model, {"epochs_run": len(h["accuracy"]), "early_stopping": patience is not None,
                   **kept, "augmented": bool(augment),
                   **({"clean_share_turned": True} if turn_clean else {}),
                   **({"ema_momentum": EMA_MOMENTUM} if ema else {}),
                   **({"label_smoothing": label_smoothing} if label_smoothing else {}),
                   **({"learning_rate_schedule": {"cosine": learning_rate, "floor": COSINE_FLOOR}}
                      if cosine else {}),
                   **({"distilled": {"share": DISTILL_SHARE, "temperature": DISTILL_TEMPERATURE}}
                      if teacher is not None else {}),
                   "n_train": int(len(tr)), "n_val": int(len(va))}
