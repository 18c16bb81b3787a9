"""The live view behind `alledge serve`: one thread reads the camera (or --source) and keeps the
latest frame with its quality measures and the gate's verdict.

One reader, many watchers: every browser gets the same latest frame, and the camera is
opened once. The reader only works while someone watched within IDLE_S, so an unwatched Pi
does not spend a core on previews. A file or folder source starts again at its end, so a
recording can stand in for a camera; a camera that stops is reopened every RETRY_S.
"""
import threading
import time

import cv2

from .capture import CameraError, read_frame
from .quality import judge, measure, thresholds_dict

PREVIEW_SIDE = 640     # the preview JPEG's longer side; the full frame is kept for capture
PREVIEW_QUALITY = 80
FPS = 4                # enough to focus by; a Pi keeps cores for classifying
IDLE_S = 10.0
RETRY_S = 2.0


class LiveView:
    def __init__(self, open_source, thresholds, fps=FPS):
        """`open_source()` returns a capture source (alledge.device.capture) or raises
        CameraError; it is called again when a source ends."""
        self.open_source = open_source
        self.thresholds = thresholds
        self.period = 1.0 / fps
        self.lock = threading.Lock()
        self.frame = None          # dict: number, rgb, jpeg, quality, verdict, source
        self.number = 0
        self.error = None
        self.watched = time.monotonic()
        self.stopping = threading.Event()
        self.src = open_source()   # fail at start, in one line, if there is no camera
        self.thread = threading.Thread(target=self._run, name="alledge-live", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def watch(self):
        """Mark that someone is looking; the reader runs while someone is."""
        self.watched = time.monotonic()

    def latest(self, wait_s=0.0):
        """The latest frame dict (or None), waiting up to wait_s for a first frame."""
        self.watch()
        deadline = time.monotonic() + wait_s
        while True:
            with self.lock:
                frame = self.frame
            if frame is not None or time.monotonic() >= deadline:
                return frame
            time.sleep(0.05)

    def status(self):
        self.watch()
        with self.lock:
            f = self.frame
            return {"source": self.src.name if self.src else None, "error": self.error,
                    "frame": f["number"] if f else None,
                    "quality": f["quality"] if f else None,
                    "verdict": _verdict_words(f["verdict"]) if f else None,
                    "thresholds": thresholds_dict(self.thresholds)}

    def close(self):
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        if self.src is not None:
            self.src.close()

    def _run(self):
        while not self.stopping.is_set():
            if time.monotonic() - self.watched > IDLE_S:
                self.stopping.wait(0.2)
                continue
            start = time.monotonic()
            rgb = read_frame(self.src) if self.src is not None else None
            if rgb is None:
                self._reopen()
                continue
            self._keep(rgb)
            self.stopping.wait(max(0.0, self.period - (time.monotonic() - start)))

    def _keep(self, rgb):
        quality = measure(rgb)
        verdict = judge(quality, self.thresholds)
        preview = shrink(rgb, PREVIEW_SIDE)
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(preview, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_QUALITY])
        with self.lock:
            self.number += 1
            self.frame = {"number": self.number, "rgb": rgb, "quality": quality,
                          "verdict": verdict, "jpeg": jpeg.tobytes() if ok else None,
                          "source": self.src.name}
            self.error = None

    def _reopen(self):
        live = self.src.live if self.src is not None else True
        if self.src is not None:
            self.src.close()
            self.src = None
        if live:  # a camera that stopped: say so, and try again in a while
            with self.lock:
                self.error = "the camera stopped delivering frames; retrying"
            self.stopping.wait(RETRY_S)
        try:
            self.src = self.open_source()
        except CameraError as e:
            with self.lock:
                self.error = str(e)


def _verdict_words(verdict):
    if verdict is None:
        return {"ok": True, "reason": None, "detail": None}
    return {"ok": False, "reason": verdict[0], "detail": verdict[1]}


def shrink(rgb, side):
    """HxWx3 -> the same image with its longer side at most `side` (previews, thumbnails)."""
    h, w = rgb.shape[:2]
    if max(h, w) <= side:
        return rgb
    f = side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))),
                      interpolation=cv2.INTER_AREA)
