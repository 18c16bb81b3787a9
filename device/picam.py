"""The Raspberry Pi camera module through picamera2: the source of `alledge capture --camera picam`.

picamera2 sits on libcamera's Python bindings, which only Raspberry Pi OS's apt packages carry
(even picamera2 from pip needs them), so it comes from apt: `sudo apt install python3-picamera2`.
A venv sees it only when made with `--system-site-packages` (device/pi/setup.sh does so). This
module is imported only when `--camera picam` is asked for, so nothing else needs picamera2.

Every failure to open the camera is a CameraError (exit 4, NO_CAMERA) with what to do; a frame
that cannot be read is a dropped frame (None), and capture's retries decide when the camera
has stopped delivering.
"""
from .capture import CameraError
from .images import to_rgb8

# A still configuration: the full sensor at its best quality (the HQ camera gives 4056x3040),
# in the "RGB888" format, which libcamera names after its 24-bit word and lays out in memory
# as B, G, R: what OpenCV calls BGR.
PIXEL_FORMAT = "RGB888"


class PicameraSource:
    live = True
    name = "Pi camera (picamera2)"

    def __init__(self, camera_num=0):
        Picamera2 = _import_picamera2()
        if _list_cameras(Picamera2) == []:
            raise CameraError("no Pi camera module found: is it connected to the camera port "
                              "and detected (rpicam-hello --list-cameras)?")
        self.cam = None
        try:
            self.cam = Picamera2(camera_num)
            config = self.cam.create_still_configuration(main={"format": PIXEL_FORMAT})
            self.cam.configure(config)
            self.cam.start()
        except Exception as e:  # picamera2 raises many kinds (IndexError, RuntimeError, ...)
            self.close()
            raise CameraError(f"cannot open the Pi camera: {_one_line(e)}") from None

    def read(self):
        """Next frame as HxWx3 uint8 RGB, or None when this one could not be had."""
        try:
            frame = self.cam.capture_array("main")
        except Exception:  # a timeout or a dropped buffer: capture retries, then stops
            return None
        if frame is None or getattr(frame, "ndim", 0) != 3:
            return None
        return to_rgb8(frame, bgr=True)

    def close(self):
        # the camera is a shared device: release it even when stopping fails, and never let
        # a failing close hide the error or results that came before it
        if self.cam is None:
            return
        for step in ("stop", "close"):
            try:
                getattr(self.cam, step)()
            except Exception:
                pass
        self.cam = None


def _import_picamera2():
    try:
        from picamera2 import Picamera2
    except ImportError as e:
        if getattr(e, "name", None) in ("picamera2", None):
            raise CameraError("--camera picam needs picamera2: sudo apt install "
                              "python3-picamera2, and make the venv with "
                              "--system-site-packages (device/pi/setup.sh)") from None
        # picamera2 found, but not what it is built on (libcamera, from apt)
        raise CameraError(f"picamera2 cannot load {e.name}: install python3-picamera2 with "
                          "apt (not pip) and make the venv with --system-site-packages "
                          "(device/pi/setup.sh)") from None
    return Picamera2


def _list_cameras(Picamera2):
    """The cameras libcamera sees, or None when picamera2 cannot say (then opening decides)."""
    try:
        return list(Picamera2.global_camera_info())
    except Exception:
        return None


def _one_line(e):
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
