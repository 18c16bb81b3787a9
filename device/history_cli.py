"""`alledge history [--json] [--limit N] [--db PATH]`: the results log, newest first."""
import json

import click

from . import exitcodes
from .cli import fail
from .options import db_option
from .results_log import LogError, ResultsLog, default_path


@click.command("history")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Show at most N results.")
@db_option
def history(as_json, limit, db):
    """List logged classifications, newest first."""
    path = db or default_path()
    if not path or not _exists(path):
        fail(f"{path}: no results log yet (classify or capture something first)",
             exitcodes.USAGE)
    try:
        rows = ResultsLog(path).recent(limit)
    except LogError as e:
        fail(str(e), exitcodes.USAGE)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
        else:
            where = row["source"] if row["frame"] is None else f"{row['source']} #{row['frame']}"
            p = row["probabilities"].get(row["label"], float("nan"))
            click.echo(f"{row['time']}  {row['label']:<7} {p:.3f}  {row['latency_ms']:.1f} ms  "
                       f"{where}  [{row['bundle']}]")


def _exists(path):
    from pathlib import Path
    return Path(path).is_file()
