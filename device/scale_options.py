"""--rbc-diameter-px, --um-per-px and --tiles, shared by classify and capture, and the scale
hint they (or a saved microscope calibration) give the classifier."""
import click

from . import exitcodes
from .cli import fail
from .frames import ScaleHint
from .microscope import MicroscopeError, load
from .scale import diameter_from_um_per_px


def scale_options(f):
    f = click.option("--tiles", "keep_tiles", is_flag=True,
                     help="Add the per-tile results to each JSON record.")(f)
    f = click.option("--um-per-px", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="The camera's micrometres per pixel (a red cell is 7.5 um).")(f)
    return click.option(
        "--rbc-diameter-px", type=click.FloatRange(min=0, min_open=True), default=None,
        help="Red-cell diameter in pixels of these frames (default: the saved microscope "
             "calibration for frames of its size, else estimated per frame).")(f)


def apply_scale_options(classifier, rbc_diameter_px, um_per_px, keep_tiles):
    """Set the classifier's scale hint and tile output; every failure is one line."""
    if rbc_diameter_px is not None and um_per_px is not None:
        fail("give --rbc-diameter-px or --um-per-px, not both", exitcodes.USAGE)
    given = rbc_diameter_px or (diameter_from_um_per_px(um_per_px) if um_per_px else None)
    if given is not None and classifier.training_diameter is None:
        fail(f"{classifier.bundle.path}: this bundle records no training scale (run "
             "'alledge scale' on it): --rbc-diameter-px/--um-per-px cannot be used",
             exitcodes.USAGE)
    if given is not None:
        classifier.scale_hint = ScaleHint(given, "given")
    elif classifier.training_diameter is not None:
        try:
            classifier.scale_hint = load()
        except MicroscopeError as e:
            fail(str(e), exitcodes.USAGE)
    classifier.keep_tiles = keep_tiles
