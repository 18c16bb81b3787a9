"""`alledge capture [--camera N | --source PATH_OR_URL] [--count N] [--interval S] [--save-dir DIR]`."""
import json
import sys
from dataclasses import replace

import click
import cv2

from . import exitcodes
from .capture import CameraError, open_source, run
from .classify import format_result
from .cli import fail
from .options import (bundle_option, db_option, delegate_option, no_log_option,
                      open_classifier, open_log, threads_option)
from .quality import Thresholds
from .results_log import LogError
from .scale_options import apply_scale_options, scale_options
from .slide_session import SlideSession, format_summary

_T = Thresholds()
_BUNDLES = " (default: the bundle's own, fitted by `alledge gate`, else %g)"


@click.command("capture")
@click.option("--camera", default=None,
              help="Camera index (OpenCV/V4L2, default 0) or 'picam' for the Pi camera module.")
@click.option("--source", default=None,
              help="Video file, stream URL, image-sequence pattern (img_%03d.png) or folder "
                   "of images, instead of a camera.")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="Stop after N frames (accepted or rejected). Default: until the source ends.")
@click.option("--interval", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to wait between frames.")
@click.option("--save-dir", type=click.Path(file_okay=False), default=None,
              help="Save each accepted frame (PNG) with its result (JSON) here.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per frame.")
@click.option("--min-brightness", type=float, default=None,
              help="Reject frames darker than this mean grey level (0-255)"
                   + _BUNDLES % _T.min_brightness)
@click.option("--max-clipped", type=float, default=None,
              help="Reject frames with more than this fraction of pixels at 250 or above"
                   + _BUNDLES % _T.max_clipped)
@click.option("--min-contrast", type=float, default=None,
              help="Reject frames whose grey-level standard deviation is lower (blank)"
                   + _BUNDLES % _T.min_contrast)
@click.option("--min-sharpness", type=float, default=None,
              help="Reject frames whose variance of the Laplacian is lower (out of focus)"
                   + _BUNDLES % _T.min_sharpness)
@bundle_option
@threads_option
@delegate_option
@db_option
@no_log_option
@scale_options
def capture(camera, source, count, interval, save_dir, as_json, min_brightness, max_clipped,
            min_contrast, min_sharpness, bundle_dir, threads, delegate, db, no_log,
            rbc_diameter_px, um_per_px, keep_tiles):
    """Capture frames, reject poor ones (dark, overexposed, blank, out of focus), classify
    the rest. Each result is logged (and saved with --save-dir) before it is printed."""
    if camera is not None and source is not None:
        fail("give --camera or --source, not both", exitcodes.USAGE)
    classifier = open_classifier(bundle_dir, threads, delegate)
    given = {"min_brightness": min_brightness, "max_clipped": max_clipped,
             "min_contrast": min_contrast, "min_sharpness": min_sharpness}
    thresholds = replace(classifier.thresholds,
                         **{k: v for k, v in given.items() if v is not None})
    classifier.thresholds = thresholds  # the tiles are judged by the same gate
    apply_scale_options(classifier, rbc_diameter_px, um_per_px, keep_tiles)
    log = open_log(db, enabled=not no_log)
    if save_dir is not None:
        _make_dir(save_dir)
    slide = None
    if count is not None:  # N fields of one slide: a session, ended by its summary
        try:
            slide = SlideSession(log, f"capture {source or camera or 0}", count)
        except LogError as e:
            fail(str(e), exitcodes.USAGE)

    def emit(record):
        if slide is not None:  # stored before it is printed, like its result
            slide.keep(record, logged=log is not None and "status" in record)
        _emit(record, as_json)
    try:
        # a bad file of an image folder is one line, like classify's, and the batch goes on
        src = open_source(camera, source,
                          on_bad=lambda name, reason: emit({"source": name, "error": reason}))
    except CameraError as e:
        fail(str(e), exitcodes.NO_CAMERA)
    try:
        frames, results, stopped = run(src, classifier, thresholds,
                                       emit=emit, log=log, count=count,
                                       interval=interval, save_dir=save_dir)
    except LogError as e:
        fail(str(e), exitcodes.USAGE)
    except (OSError, cv2.error) as e:
        fail(f"cannot save frame: {e}", exitcodes.USAGE)
    except KeyboardInterrupt:
        sys.exit(130)  # everything emitted so far is already logged and saved
    finally:
        src.close()
    if slide is not None and not stopped:  # a slide cut short stays unfinished in history
        try:
            summary = slide.finish()
        except LogError as e:
            fail(str(e), exitcodes.USAGE)
        click.echo(json.dumps({"slide": summary}) if as_json else format_summary(summary))
    if stopped:
        wanted = f" of {count}" if count else ""
        fail(f"{src.name} stopped delivering frames after {frames}{wanted}; "
             f"{results} results saved", exitcodes.NO_CAMERA)
    if getattr(src, "bad", 0):
        sys.exit(exitcodes.SOME_FAILED)  # each bad file was reported on its own line


def _emit(record, as_json):
    if as_json:
        click.echo(json.dumps(record))
    elif "error" in record:
        click.echo(f"{record['source']}: error: {record['error']}")
    elif "rejected" in record:
        click.echo(f"frame {record['frame']}: rejected, {record['rejected']} "
                   f"({record['detail']})")
    else:
        click.echo(f"frame {record['frame']}: {format_result(record)}")
    sys.stdout.flush()


def _make_dir(path):
    from pathlib import Path
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"{path}: cannot create the save folder ({e.strerror})", exitcodes.USAGE)
