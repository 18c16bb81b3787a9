"""`alledge data check|split|synth`. Needs numpy/OpenCV; `split` also scikit-learn."""
import json
import sys
from pathlib import Path

import click

from alledge.device import CLASSES, exitcodes
from alledge.device.cli import fail
from alledge.device.fileio import atomic_write_text

from .dataset import DatasetError


@click.group()
def data():
    """Check the dataset, make the paper's split, draw a synthetic set."""


@data.command()
@click.argument("data_dir", metavar="DATA", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(data_dir, as_json):
    """Decode every image of DATA and report problems and duplicates.

    Exit 0 clean, 1 problems found, 2 unusable input.
    """
    from .check import check_dataset, format_report, has_problems
    try:
        report = check_dataset(data_dir)
    except DatasetError as e:
        fail(str(e), exitcodes.USAGE)
    if as_json:
        from alledge.device.provenance import provenance
        report["provenance"] = provenance()
    if report["usable"] == 0:
        click.echo(json.dumps(report, indent=1) if as_json else format_report(report))
        fail(f"{data_dir}: no usable images", exitcodes.USAGE)
    click.echo(json.dumps(report, indent=1) if as_json else format_report(report))
    sys.exit(exitcodes.SOME_FAILED if has_problems(report) else exitcodes.OK)


@data.command()
@click.argument("data_dir", metavar="DATA", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="split CSV to write")
@click.option("--test-size", default=0.3, show_default=True, type=click.FloatRange(0.05, 0.95))
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--group-duplicates", is_flag=True,
              help="Keep identical and near-identical images on one side of the split.")
def split(data_dir, out, test_size, seed, group_duplicates):
    """Stratified train/test split of DATA written as CSV (path,label,label_id,subset,sha256)."""
    from alledge.device.cli import require
    require("sklearn", "train")
    from .split import make_split, to_csv
    try:
        rows, info = make_split(data_dir, test_size, seed, group_duplicates)
    except DatasetError as e:
        fail(str(e), exitcodes.USAGE)
    except ValueError as e:  # scikit-learn: a class too small to stratify
        fail(f"{data_dir}: cannot make a stratified split: {e}", exitcodes.USAGE)
    if len(rows) < 2 * len(CLASSES):
        fail(f"{data_dir}: too few usable images to split ({len(rows)})", exitcodes.USAGE)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, to_csv(rows))  # its sha256 is the split id: never half-written
    for path, why in info["skipped"]:
        click.echo(f"skipped {path}: {why}", err=True)
    for s in ("train", "test"):
        c = info["counts"][s]
        click.echo(f"{s}: " + "/".join(str(c[k]) for k in CLASSES) + f" = {sum(c.values())}")
    click.echo(f"plain split: {info['plain_leak_exact']} test images have an identical copy "
               f"and {info['plain_leak_near']} an identical or near-identical copy in train")
    click.echo(f"wrote {out}")


@data.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--per-class", default=60, show_default=True, type=click.IntRange(1, 100000))
@click.option("--seed", default=0, show_default=True, type=int)
def synth(out, per_class, seed):
    """Draw a synthetic smear set into OUT/<Class>/ (224x224 JPEGs)."""
    from .synth import write_synth
    n = write_synth(out, per_class, seed)
    click.echo(f"wrote {n} images to {out}")
