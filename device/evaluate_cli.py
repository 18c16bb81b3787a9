"""`alledge evaluate --data DATA --split CSV [--subset test] [--bundle DIR] [--out FILE]`.

Measures a bundle on a labelled split through the device code path and writes the figures
with their provenance (results/default/paper-test.json is the shipped bundle's, written by
`make eval-default`; tests/test_default_bundle_real.py holds the bundle to it).
"""
import sys
from pathlib import Path

import click

from . import exitcodes
from .cli import fail
from .evaluate import SplitError, evaluate
from .fileio import atomic_write_json
from .options import bundle_option, open_classifier, threads_option
from .provenance import provenance


@click.command("evaluate")
@bundle_option
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False),
              help="Folder with the class folders (or its parent holding Original/).")
@click.option("--split", "split_csv", required=True, type=click.Path(dir_okay=False),
              help="Split CSV (alledge data split).")
@click.option("--subset", default="test", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the figures as JSON here (with provenance).")
@threads_option
def evaluate_command(bundle_dir, data_dir, split_csv, subset, out, threads):
    """Accuracy, per-class recall and answered fraction of a bundle on a split's subset.

    Exit 0; 1 when some images could not be read (they count as unanswered); 2 bad input.
    """
    classifier = open_classifier(bundle_dir, threads)
    try:
        result, _ = evaluate(classifier, data_dir, split_csv, subset)
    except SplitError as e:
        fail(str(e), exitcodes.USAGE)
    result["threads"] = threads
    result["provenance"] = provenance()
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out, result)
    click.echo(f"bundle {result['bundle']}  {subset} of {split_csv}: n {result['n']}")
    click.echo(f"accuracy {result['accuracy']:.4f}  answered {result['answered_fraction']:.4f}"
               f"  accuracy of answered {result['accuracy_answered'] or 0:.4f}")
    for c, d in result["per_class"].items():
        recall = "-" if d["recall"] is None else f"{d['recall']:.4f}"
        click.echo(f"  {c:<8} recall {recall}  ({d['correct']}/{d['support']})")
    if out:
        click.echo(f"wrote {out}")
    if result["errors"]:  # counted as unanswered; like classify, the exit code says so
        click.echo(f"error: {result['errors']} images could not be read or classified",
                   err=True)
        sys.exit(exitcodes.SOME_FAILED)
