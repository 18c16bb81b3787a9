"""The microscope's scale, measured once by `alledge calibrate` and used by classify and capture.

Stored as JSON at $ALLEDGE_MICROSCOPE, else $ALLEDGE_HOME/microscope.json, else
~/.config/alledge/microscope.json: the red-cell diameter in pixels of the camera's full frame,
the frame size it holds for (a calibration says nothing of frames of another size: those are
estimated as usual), and the per-capture estimates it came from.
"""
import datetime
import json
import os
from pathlib import Path

from .fileio import atomic_write_json
from .frames import ScaleHint


class MicroscopeError(ValueError):
    """The calibration file cannot be read or written; one line naming it."""


def default_path(environ=None):
    environ = os.environ if environ is None else environ
    if environ.get("ALLEDGE_MICROSCOPE"):
        return Path(environ["ALLEDGE_MICROSCOPE"])
    if environ.get("ALLEDGE_HOME"):
        return Path(environ["ALLEDGE_HOME"]) / "microscope.json"
    return Path.home() / ".config" / "alledge" / "microscope.json"


def load(path=None):
    """The saved calibration as a ScaleHint, None when there is none."""
    path = Path(path) if path else default_path()
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        diameter = data["rbc_diameter_px"]
        size = data["frame_size"]
        if type(diameter) not in (int, float) or not 0 < diameter < 10_000 or \
                not (isinstance(size, list) and len(size) == 2
                     and all(type(v) is int and v > 0 for v in size)):
            raise ValueError("bad values")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MicroscopeError(f"{path}: not a readable microscope calibration ({e}); run "
                              "'alledge calibrate' again or remove it") from None
    return ScaleHint(diameter, "calibrated", tuple(size))


def save(path, diameter, frame_size, estimates, sources):
    path = Path(path) if path else default_path()
    record = {"rbc_diameter_px": round(float(diameter), 3),
              "frame_size": [int(frame_size[0]), int(frame_size[1])],
              "captures": [{"path": p, "rbc_diameter_px": round(float(e), 3)}
                           for p, e in zip(sources, estimates)],
              "date": datetime.datetime.now(datetime.timezone.utc)
              .isoformat(timespec="seconds")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, record)
    except OSError as e:
        raise MicroscopeError(f"{path}: cannot save the calibration ({e.strerror})") from None
    return path
