"""`alledge classify IMAGE... | --slide DIR [--bundle DIR] [--json] [--threads N] [--delegate edgetpu]`."""
import json
import sys

import click

from . import exitcodes
from .classify import (classify_data, error_record, expand_inputs, format_record, sha256_bytes,
                       shown_path)
from .cli import fail
from .images import ImageError, read_file
from .options import (bundle_option, db_option, delegate_option, no_log_option,
                      open_classifier, open_log, threads_option)
from .results_log import LogError
from .scale_options import apply_scale_options, scale_options
from .slide_session import SlideSession, format_summary


@click.command("classify")
@click.argument("images", nargs=-1)
@bundle_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@threads_option
@delegate_option
@db_option
@no_log_option
@scale_options
@click.option("--slide", "slide_dir", type=click.Path(file_okay=False), default=None,
              help="Read the images of this folder as the fields of one slide: a session in "
                   "the results log, ended by a slide summary.")
def classify(images, bundle_dir, as_json, threads, delegate, db, no_log, rbc_diameter_px,
             um_per_px, keep_tiles, slide_dir):
    """Classify blood smear images: files, folders (their JPEG/PNG files) and globs.

    Each line has a status: ok (a label and its prediction set), out_of_domain (unlike the
    training smears: not judged), rejected (the quality gate said no, with the measured
    value) or error (unreadable). Each result is written to the results log before it is
    printed. An error is reported and the batch goes on; the exit code is then 1.
    """
    if bool(images) == bool(slide_dir):
        fail("give IMAGE... or --slide DIR (a slide's fields), one of them", exitcodes.USAGE)
    classifier = open_classifier(bundle_dir, threads, delegate)
    apply_scale_options(classifier, rbc_diameter_px, um_per_px, keep_tiles)
    log = open_log(db, enabled=not no_log)
    inputs = expand_inputs([slide_dir] if slide_dir else images)
    slide = None
    if slide_dir:
        try:
            slide = SlideSession(log, shown_path(slide_dir), len(inputs))
        except LogError as e:
            fail(str(e), exitcodes.USAGE)
    failed = 0
    for path, error in inputs:
        data = None
        if error is None:
            try:
                data = read_file(path)  # bounded: size cap, regular files only
            except ImageError as e:
                error = str(e)
        name = shown_path(path)  # the real path opens the file; this one is shown and logged
        record = error_record(name, error) if error else classify_data(classifier, data, name)
        if "error" in record:
            failed += 1
        elif log is not None:
            try:
                log.record(record, source=name, input_sha256=sha256_bytes(data),
                           bundle=classifier.bundle.id, quality=record.get("quality"))
            except LogError as e:
                fail(str(e), exitcodes.USAGE)
        if slide is not None:
            try:
                slide.keep(record, logged=log is not None and "error" not in record)
            except LogError as e:
                fail(str(e), exitcodes.USAGE)
        emit(record, as_json)
    if slide is not None:
        try:
            summary = slide.finish()
        except LogError as e:
            fail(str(e), exitcodes.USAGE)
        click.echo(json.dumps({"slide": summary}) if as_json else format_summary(summary))
    sys.exit(exitcodes.SOME_FAILED if failed else exitcodes.OK)


def emit(record, as_json):
    click.echo(json.dumps(record) if as_json else format_record(record))
    sys.stdout.flush()
