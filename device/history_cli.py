"""`alledge history [--json] [--limit N] [--db PATH]`: the results log, newest first."""
import json
from pathlib import Path

import click

from . import exitcodes
from .cli import fail
from .options import db_option
from .results_log import LogError, ResultsLog, default_path


@click.command("history")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Show at most N results.")
@click.option("--slides", is_flag=True,
              help="List slide sessions (classify --slide, capture --count) and their summaries.")
@db_option
def history(as_json, limit, db, slides):
    """List logged classifications, newest first."""
    path = Path(db) if db else default_path()
    if not path.is_file():
        fail(f"{path}: no results log yet (classify or capture something first)",
             exitcodes.USAGE)
    if slides:
        return show_slides(path, limit, as_json)
    try:
        log = ResultsLog(path)
        rows, total = log.recent(limit), log.count()
    except LogError as e:
        fail(str(e), exitcodes.USAGE)
    for row in rows:
        click.echo(json.dumps(row) if as_json else format_row(row))
    if total > len(rows) and not as_json:  # --json stays one object per line
        click.echo(f"(showing the newest {len(rows)} of {total} results; --limit N for more)")


def show_slides(path, limit, as_json):
    from .sessions import SessionStore
    try:
        ResultsLog(path)  # refuses a file that is not our log before the sessions tables touch it
        rows = SessionStore(path).slides(limit)
    except LogError as e:
        fail(str(e), exitcodes.USAGE)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
            continue
        s = row["summary"]
        what = (f"{s['call']}: {s['answered']} answered, {s['out_of_domain']} out of domain, "
                f"{s['rejected']} rejected of {s['fields']} fields ({s['why']})"
                if s else f"unfinished ({row['planned']} fields planned)")
        click.echo(f"{row['time']}  slide {row['id']}  {row['name']}  {what}")


def format_row(row):
    """One line: time, status or label with its probability, latency, source, bundle.
    Any field may be missing or odd in an old or foreign row; the line is still printed."""
    where = row["source"] if row["frame"] is None else f"{row['source']} #{row['frame']}"
    status = row.get("status") or "ok"
    probs = row["probabilities"] if isinstance(row["probabilities"], dict) else {}
    p = probs.get(row["label"])
    what = row["label"] if status == "ok" and row["label"] else status
    score = f"{p:.3f}" if isinstance(p, (int, float)) else "  -  "
    latency = row["latency_ms"]
    ms = f"{latency:.1f} ms" if isinstance(latency, (int, float)) else "- ms"
    return f"{row['time']}  {what:<13} {score}  {ms}  {where}  [{row['bundle']}]"
