"""`alledge train svm|cnn|baseline|table3`. TensorFlow is imported only when a command runs."""
import os

import click

from alledge.device import exitcodes
from alledge.device.cli import fail, require

# Names only: importing .backbones pulls in nothing heavy.
from .backbones import BACKBONES as BACKBONE_NAMES
from .table3 import ALL_MODELS

DATA = click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
                    help="Dataset folder (class folders, or their parent holding Original/).")
SPLIT = click.option("--split", "split_csv", required=True, type=click.Path(dir_okay=False),
                     help="Split CSV from `alledge data split`.")
OUT = click.option("--out", required=True, type=click.Path(file_okay=False),
                   help="Model directory to write.")


def _quiet_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _load_split(data_dir, split_csv):
    from .dataset import DatasetError, resolve_root
    from .split import read_split
    try:
        resolve_root(data_dir)
        return read_split(split_csv)
    except (DatasetError, ValueError, OSError) as e:
        fail(str(e), exitcodes.USAGE)


@click.group()
def train():
    """Train the paper's models and build its Table 3."""


def _summary(name, metrics, out):
    click.echo(f"{name}: test accuracy {metrics['accuracy']:.4f} "
               f"[{metrics['accuracy_ci95'][0]:.4f}, {metrics['accuracy_ci95'][1]:.4f}] "
               f"macro-F1 {metrics['macro_f1']:.4f}; wrote {out}")


@train.command()
@DATA
@SPLIT
@OUT
@click.option("--epochs", default=500, show_default=True, type=click.IntRange(1),
              help="Maximum epochs (the paper's 500).")
@click.option("--patience", default=30, show_default=True, type=click.IntRange(1),
              help="Stop after this many epochs without a better validation accuracy.")
@click.option("--no-early-stopping", is_flag=True,
              help="Run every epoch (the paper's recipe); the best validation epoch is kept.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1))
# 94 px is the smallest input the five valid-padded conv + pool blocks leave a pixel of
@click.option("--input-size", default=224, show_default=True, type=click.IntRange(94))
@click.option("--augment", is_flag=True,
              help="Train on a new random capture of half the images each epoch "
                   "(alledge.train.capture_changes), learning rate halved on plateaus.")
@click.option("--white-point", is_flag=True,
              help="Scale every input to the training images' white point, in training as "
                   "on the device (the bundle takes it from the model).")
@click.option("--turn-clean", is_flag=True,
              help="With --augment: the images left clean each epoch are turned or flipped.")
@click.option("--ema", is_flag=True,
              help="Validate and keep an exponential moving average of the weights (about "
                   "3 epochs) rather than the last epoch's.")
@click.option("--teacher", type=click.Path(file_okay=False),
              help="With --augment: a CNN model directory trained on the same split (the "
                   "fine-tuned Lite0) whose probabilities on each augmented batch join the "
                   "targets (distillation).")
@click.option("--label-smoothing", default=0.0, show_default=True,
              type=click.FloatRange(0.0, 0.5, max_open=True),
              help="Each target keeps 1 - this on its class and spreads the rest evenly.")
@click.option("--cosine", is_flag=True,
              help="With --no-early-stopping: the learning rate falls along a cosine over "
                   "every epoch rather than halving on plateaus.")
@click.option("--no-validation", is_flag=True,
              help="With --no-early-stopping (and with --augment, --cosine): hold no "
                   "validation part out; every training image trains and the last epoch is kept.")
@click.option("--seed", default=0, show_default=True, type=int)
def cnn(data_dir, split_csv, out, epochs, patience, no_early_stopping, batch_size, input_size,
        augment, white_point, turn_clean, ema, teacher, label_smoothing, cosine, no_validation,
        seed):
    """The paper's Improved CNN, trained on the split's training part.

    An interrupted run resumes from OUT/backup when started again with the same arguments.
    """
    if turn_clean and not augment:
        fail("--turn-clean turns the images --augment leaves clean: give both",
             exitcodes.USAGE)
    if teacher is not None and not augment:
        fail("--teacher teaches on the captures --augment makes: give both", exitcodes.USAGE)
    if cosine and not no_early_stopping:
        fail("--cosine lays its schedule over every epoch: give --no-early-stopping too",
             exitcodes.USAGE)
    if no_validation:
        from .cnn import without_validation_problem
        problem = without_validation_problem(not no_early_stopping, augment, cosine, ema)
        if problem:
            fail(problem, exitcodes.USAGE)
    if no_early_stopping:
        patience = None
    _quiet_tf()
    require("tensorflow", "train")
    rows, split_id = _load_split(data_dir, split_csv)
    from .fit import cnn_model_name, fit_cnn_model
    metrics = _guard(fit_cnn_model, data_dir, rows, split_id, out, epochs, patience,
                     batch_size, input_size, seed, split_file=str(split_csv), augment=augment,
                     white_point=white_point, turn_clean=turn_clean, ema=ema,
                     teacher_dir=teacher, label_smoothing=label_smoothing, cosine=cosine,
                     validate=not no_validation, log=lambda m: click.echo(m, err=True))
    _summary(cnn_model_name(augment, teacher is not None), metrics, out)


@train.command()
@DATA
@SPLIT
@OUT
@click.option("--epochs", default=6, show_default=True, type=click.IntRange(1, 200))
@click.option("--train-blocks", default=5, show_default=True, type=click.IntRange(0, 16),
              help="MBConv blocks trained, counted from the last (BatchNorm stays frozen).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--white-point", is_flag=True,
              help="Scale every input to the training images' white point, in training as "
                   "on the device (the bundle takes it from the model).")
@click.option("--max-gain", type=click.FloatRange(1.1, 3.0),
              help="Augment with exposure gains up to this, drawn log-uniform from 0.75 "
                   "(default: uniform 0.75-1.3).")
def finetune(data_dir, split_csv, out, epochs, train_blocks, seed, white_point, max_gain):
    """EfficientNet-Lite0 fine-tuned end to end on augmented captures (a 'cnn' model)."""
    _quiet_tf()
    require("tensorflow", "train")
    rows, split_id = _load_split(data_dir, split_csv)
    from .fit import fit_finetuned_model
    metrics = _guard(fit_finetuned_model, data_dir, rows, split_id, out, epochs, train_blocks,
                     seed, split_file=str(split_csv), white_point=white_point,
                     max_gain=max_gain, log=lambda m: click.echo(m, err=True))
    _summary("efficientnet-lite0-finetuned", metrics, out)


@train.command()
@DATA
@SPLIT
@OUT
@click.option("--backbone", required=True, type=click.Choice(sorted(BACKBONE_NAMES)))
@click.option("--weights", default="imagenet", show_default=True,
              help="imagenet (Keras download for B0-B7; packaged for Lite0-2), none (random), "
                   "or PATH to a local Keras weights file.")
@click.option("--input-size", default=None, type=click.IntRange(32),
              help="Override the input size (paper: 224 for B0-B5, 128 for B6-B7).")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1))
@click.option("--cv", default=5, show_default=True, type=click.IntRange(2))
@click.option("--seed", default=0, show_default=True, type=int)
def svm(data_dir, split_csv, out, backbone, weights, input_size, batch_size, cv, seed):
    """A frozen EfficientNet feature extractor + a grid-searched, calibrated SVM."""
    _quiet_tf()
    require("tensorflow", "train")
    rows, split_id = _load_split(data_dir, split_csv)
    from .fit import fit_svm_model
    metrics = _guard(fit_svm_model, data_dir, rows, split_id, out, backbone, weights,
                     input_size, batch_size, cv, seed, split_file=str(split_csv))
    _summary(f"{backbone}-svm", metrics, out)


@train.command()
@DATA
@SPLIT
@OUT
@click.option("--cv", default=5, show_default=True, type=click.IntRange(2))
@click.option("--seed", default=0, show_default=True, type=int)
def baseline(data_dir, split_csv, out, cv, seed):
    """The colour baseline: RGB histograms + SVM, no CNN."""
    require("sklearn", "train")
    rows, split_id = _load_split(data_dir, split_csv)
    from .fit import fit_baseline_model
    metrics = _guard(fit_baseline_model, data_dir, rows, split_id, out, cv, seed,
                     split_file=str(split_csv))
    _summary("colour-baseline", metrics, out)


@train.command()
@DATA
@SPLIT
@OUT
@click.option("--models", default=",".join(ALL_MODELS), show_default=True,
              help="Comma-separated rows to build.")
@click.option("--weights-dir", type=click.Path(file_okay=False, exists=True),
              help="Folder with Keras' ImageNet files for B0-B7 (efficientnetb0_notop.h5 ...).")
@click.option("--random-weights", is_flag=True,
              help="Run B0-B7 rows without a weights file on random weights (labelled so).")
@click.option("--cnn-epochs", default=500, show_default=True, type=click.IntRange(1))
@click.option("--cnn-patience", default=30, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=int)
def table3(data_dir, split_csv, out, models, weights_dir, random_weights, cnn_epochs,
           cnn_patience, seed):
    """The paper's Table 3: every model on one split; reuses finished model directories."""
    _quiet_tf()
    require("tensorflow", "train")
    from .table3 import parse_models, run_table3, to_markdown
    try:
        wanted = parse_models(models)
    except ValueError as e:
        fail(str(e), exitcodes.USAGE)
    rows, split_id = _load_split(data_dir, split_csv)
    table = _guard(run_table3, data_dir, rows, split_id, str(split_csv), out, wanted,
                   weights_dir, random_weights, cnn_epochs, cnn_patience, seed, log=click.echo)
    click.echo(to_markdown(table))


def _guard(fn, *args, **kwargs):
    """Run a training step; known failures become one line and an exit code."""
    from alledge.device.images import ImageError
    from .backbones import WeightsUnavailable
    from .fit import TeacherError
    from .lite import LiteWeightsMissing
    try:
        return fn(*args, **kwargs)
    except (WeightsUnavailable, LiteWeightsMissing) as e:
        fail(str(e), exitcodes.NO_WEIGHTS)
    except ImageError as e:
        fail(f"an image of the split cannot be read: {e} (run `alledge data check`)",
             exitcodes.USAGE)
    except FileNotFoundError as e:
        fail(str(e), exitcodes.USAGE)
    except TeacherError as e:
        fail(str(e), exitcodes.USAGE)
