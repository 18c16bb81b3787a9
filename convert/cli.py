"""`alledge convert` and `alledge report`. TensorFlow is imported only when they run."""
import os
from pathlib import Path

import click

from alledge.device import exitcodes
from alledge.device.cli import fail, require

from .tflite import QUANT_LEVELS


def _quiet_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# convert's and gate's: the white point for overexposed fields only
WHITE_POINT_OVEREXPOSED = click.option(
    "--white-point-overexposed", is_flag=True,
    help="As --white-point, but only for overexposed fields: those with more pixels at the "
         "sensor's ceiling than 95% of the training images (the others are read as they are, "
         "as the model learnt them).")


def _white_point_choice(every_field, overexposed):
    """--white-point / --white-point-overexposed -> build_bundle's white_point argument."""
    if every_field and overexposed:
        fail("--white-point and --white-point-overexposed are two kinds of white point: "
             "give one", exitcodes.USAGE)
    return "overexposed" if overexposed else every_field


@click.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Bundle directory.")
@click.option("--quant", required=True, type=click.Choice(QUANT_LEVELS))
@click.option("--edgetpu", is_flag=True, help="Also run edgetpu_compiler (int8 only).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False),
              help="Dataset: needed for int8 calibration and to put test metrics in the manifest.")
@click.option("--split", "split_csv", type=click.Path(dir_okay=False),
              help="Split CSV (default: the one the model was trained on).")
@click.option("--calibration", default=200, show_default=True, type=click.IntRange(1),
              help="int8 calibration images, drawn stratified from the training split.")
@click.option("--no-eval", is_flag=True, help="Do not evaluate the bundle on the test split.")
@click.option("--white-point", is_flag=True,
              help="Scale each input to the training images' white point (fitted with the "
                   "gate; for a model trained on augmented exposure, as the default).")
@WHITE_POINT_OVEREXPOSED
@click.option("--sign", "sign_key", type=click.Path(dir_okay=False), default=None,
              help="Sign the bundle with this Ed25519 private key ('alledge keys new').")
def convert(model_dir, out, quant, edgetpu, data_dir, split_csv, calibration, no_eval,
            white_point, white_point_overexposed, sign_key):
    """Quantize a trained model directory to a verified TFLite bundle."""
    white_point = _white_point_choice(white_point, white_point_overexposed)
    from .sign import SignError, load_private_key, sign_bundle
    try:  # a bad key is found before TensorFlow loads and the conversion runs
        key = load_private_key(sign_key) if sign_key else None
    except SignError as e:
        fail(str(e), exitcodes.USAGE)
    _quiet_tf()
    require("tensorflow", "train")
    from .build import ConvertError, build_bundle
    if edgetpu and quant != "int8":
        fail("--edgetpu needs --quant int8 (the Edge TPU runs full-integer models only)",
             exitcodes.USAGE)
    try:
        manifest = build_bundle(model_dir, out, quant, data_dir=data_dir, split_csv=split_csv,
                                calibration=calibration, edgetpu=edgetpu, evaluate=not no_eval,
                                white_point=white_point, log=lambda m: click.echo(m, err=True))
    except ConvertError as e:
        fail(str(e), e.code)
    signed = f", signed by key {sign_bundle(out, key)}" if key is not None else ""
    m = manifest.get("metrics") or {}
    acc = f", test accuracy {m['accuracy']:.4f}" if "accuracy" in m else ""
    click.echo(f"wrote {out} ({manifest['kind']}, {quant}{acc}{signed})")


@click.command()
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="The dataset the bundle's model was trained on.")
@click.option("--split", "split_csv", required=True, type=click.Path(dir_okay=False),
              help="The split the bundle's model was trained on (its id is checked).")
@click.option("--model-dir", type=click.Path(file_okay=False),
              help="SVM bundles: the trained model directory (its model.json names the SVM's "
                   "hyperparameters, refitted per fold for the prediction sets).")
@click.option("--flag-rate", default=0.01, show_default=True, type=click.FloatRange(0.001, 0.2),
              help="Share of in-domain training images the out-of-domain gate may flag.")
@click.option("--coverage", default=0.95, show_default=True, type=click.FloatRange(0.5, 0.999),
              help="Prediction-set coverage.")
@click.option("--white-point", is_flag=True,
              help="Scale each input to the training images' white point (a model that "
                   "learnt from unnormalised images sees them otherwise than it learnt).")
@WHITE_POINT_OVEREXPOSED
@click.option("--sign", "sign_key", type=click.Path(dir_okay=False), default=None,
              help="Sign the rewritten bundle with this Ed25519 private key.")
def gate(bundle_dir, data_dir, split_csv, model_dir, flag_rate, coverage, white_point,
         white_point_overexposed, sign_key):
    """Fit a bundle's out-of-domain gate and prediction sets on its training split (in place);
    for a CNN bundle also its white point and quality thresholds."""
    white_point = _white_point_choice(white_point, white_point_overexposed)
    _quiet_tf()
    require("sklearn", "train")
    from .build import ConvertError, regate_bundle
    from .sign import SignError, load_private_key, sign_bundle
    try:
        key = load_private_key(sign_key) if sign_key else None
    except SignError as e:
        fail(str(e), exitcodes.USAGE)
    try:
        m = regate_bundle(bundle_dir, data_dir, split_csv, model_dir, flag_rate, coverage,
                          white_point=white_point, log=lambda msg: click.echo(msg, err=True))
    except ConvertError as e:
        fail(str(e), e.code)
    signed = f", signed by key {sign_bundle(bundle_dir, key)}" if key is not None else ""
    g = (m.get("metrics") or {}).get("gated") or {}
    click.echo(f"wrote {bundle_dir}: out-of-domain threshold {m['ood']['threshold']:.1f}, "
               f"set threshold {m['conformal']['threshold']:.3f}; test: answered "
               f"{g.get('answered', 0):.4f}, accuracy of answered "
               f"{g.get('accuracy_of_answered', 0):.4f}, set coverage "
               f"{g.get('set_coverage', 0):.4f}{signed}")


@click.command()
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False))
@click.option("--split", "split_csv", required=True, type=click.Path(dir_okay=False))
@click.option("--models", required=True, type=click.Path(file_okay=False),
              help="Folder of trained model directories (e.g. Table 3's --out).")
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--quant", "quants", multiple=True, type=click.Choice(QUANT_LEVELS),
              help="Levels to include (default: all four).")
@click.option("--latency-images", default=100, show_default=True, type=click.IntRange(1),
              help="Test images timed at 1 thread, a stratified sample (all are read, and "
                   "timed, at all threads).")
@click.option("--view-images", default=200, show_default=True, type=click.IntRange(0),
              help="Test images for the rotation/flip views, a stratified sample (0: all).")
def report(data_dir, split_csv, models, out, quants, latency_images, view_images):
    """Convert every model at every level and compare the bundles on the test split."""
    _quiet_tf()
    require("tensorflow", "train")
    from .build import ConvertError
    from .report import run_report
    try:
        run_report(data_dir, split_csv, models, out, quants or QUANT_LEVELS,
                   latency_images, view_images, log=lambda m: click.echo(m, err=True))
    except (ConvertError, FileNotFoundError, ValueError) as e:
        fail(str(e), getattr(e, "code", exitcodes.USAGE))
    click.echo(Path(out, "report.md").read_text())


@click.command()
@click.option("--bundle", "bundle_dirs", multiple=True, type=click.Path(file_okay=False),
              help="Bundle(s) to measure (default, without --baseline: the shipped default bundle).")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False))
@click.option("--split", "split_csv", required=True, type=click.Path(dir_okay=False))
@click.option("--bccd", "bccd_dir", type=click.Path(file_okay=False),
              help="Another lab's smears (e.g. ../shared/data/bccd/JPEGImages): not leukemia data.")
@click.option("--severity", "severities", multiple=True, default=("moderate", "strong"),
              show_default=True, type=click.Choice(["mild", "moderate", "strong"]))
@click.option("--baseline", "baseline_dirs", multiple=True, type=click.Path(file_okay=False),
              help="A colour baseline model directory ('alledge train baseline') to put "
                   "through the same changes, on the desktop (it has no bundle).")
@click.option("--out", required=True, type=click.Path(file_okay=False))
def stress(bundle_dirs, data_dir, split_csv, bccd_dir, severities, baseline_dirs, out):
    """Robustness and refusal: every capture change, other labs' smears, risk-coverage."""
    require("sklearn", "train")
    from alledge.device.bundle import DEFAULT_BUNDLE, BundleError
    from alledge.device.images import ImageError
    from .stress import run_stress
    try:
        bundles = bundle_dirs or ([] if baseline_dirs else [DEFAULT_BUNDLE])
        run_stress(bundles, data_dir, split_csv, out, bccd_dir, severities,
                   baseline_dirs=baseline_dirs, log=lambda m: click.echo(m, err=True))
    except (BundleError, ImageError, OSError, ValueError) as e:
        fail(str(e), exitcodes.USAGE)
    click.echo(f"wrote {out}/stress.json, stress.md and plots")


@click.command()
@click.argument("stress_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False))
def matrix(stress_dirs, out):
    """Several `alledge stress` results (same split and changes) as one robustness matrix."""
    from .stress import combine
    try:
        combine(stress_dirs, out)
    except ValueError as e:
        fail(str(e), exitcodes.USAGE)
    click.echo(Path(out, "matrix.md").read_text())
