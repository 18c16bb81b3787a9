"""`alledge calibrate CAPTURES... [--out PATH] [--json]`: measure a microscope's scale once.

Each capture's red-cell diameter is estimated (alledge.device.scale) on the full frame; the
calibration is their median, saved for frames of that size (alledge.device.microscope) and
used by classify and capture from then on instead of a per-frame estimate. All captures must
be frames of one camera at one magnification: one size. Three or more fields of a smear are
better than one (the estimate of one field is within about 10%, the median of several closer).
"""
import json
import statistics

import click

from . import exitcodes
from .classify import expand_inputs, shown_path
from .cli import fail
from .images import ImageError, check_header, decode_rgb, read_file
from .microscope import MicroscopeError, default_path, save
from .scale import ScaleError, estimate_diameter, probe_reduction


@click.command("calibrate")
@click.argument("captures", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Where to save it (default: $ALLEDGE_MICROSCOPE, else "
                   "$ALLEDGE_HOME/microscope.json, else ~/.config/alledge/microscope.json).")
@click.option("--json", "as_json", is_flag=True, help="Print the calibration as JSON.")
def calibrate(captures, out, as_json):
    """Measure the red-cell diameter of a microscope's captures and save it."""
    estimates, sources, sizes = [], [], set()
    for path, error in expand_inputs(captures):
        name = shown_path(path)
        try:
            if error:
                raise ImageError("bad", error)
            data = read_file(path)
            fmt, width, height = check_header(data)[:3]
            reduce = probe_reduction(width, height) if fmt == "jpeg" else 1
            estimates.append(estimate_diameter(decode_rgb(data, reduce)) * reduce)
        except (ImageError, ScaleError) as e:
            fail(f"{name}: {e}", exitcodes.USAGE)
        sources.append(name)
        sizes.add((width, height))
    if len(sizes) > 1:
        fail("captures of different sizes ("
             + ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
             + "): calibrate one camera setting at a time", exitcodes.USAGE)
    diameter = statistics.median(estimates)
    try:
        where = save(out or default_path(), diameter, sizes.pop(), estimates, sources)
    except MicroscopeError as e:
        fail(str(e), exitcodes.USAGE)
    if as_json:
        click.echo(json.dumps({"rbc_diameter_px": round(diameter, 3), "saved": str(where),
                               "captures": len(estimates)}))
        return
    spread = (f", captures {min(estimates):.1f}-{max(estimates):.1f}"
              if len(estimates) > 1 else "")
    click.echo(f"red cells {diameter:.1f} px across (median of {len(estimates)}{spread}); "
               f"saved to {where}")
