"""Camera frames -> quality gate -> classify -> log and save. One plain loop.

Sources: a camera index (OpenCV, V4L2 on the Pi: USB microscope cameras), 'picam' (the Pi
camera module through picamera2, when installed), a video file, a stream URL, or a folder
of images (read in sorted order). Live sources (cameras, URLs) may drop a frame now and then,
so a read is retried a few times before the source counts as stopped.
"""
import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path

import cv2

from .classify import IMAGE_SUFFIXES, shown_path
from .fileio import atomic_write_json
from .images import ImageError, read_rgb, to_rgb8
from .quality import judge, measure

LIVE_RETRIES = 10        # consecutive failed reads before a live source counts as stopped
LIVE_RETRY_WAIT_S = 0.1


class CameraError(Exception):
    """The source cannot be opened; one line."""


class OpenCvSource:
    def __init__(self, target, live, name):
        # OpenCV logs each backend it tried, FFmpeg its complaints: we say it in one line
        with _quiet_opencv(), _quiet_stderr():
            self.cap = cv2.VideoCapture(target)
        self.live = live
        self.name = name
        if not self.cap.isOpened():
            hint = " (is it connected? see /dev/video*)" if isinstance(target, int) else ""
            raise CameraError(f"cannot open {name}{hint}")

    def read(self):
        with _quiet_stderr():
            ok, frame = self.cap.read()
        return to_rgb8(frame, bgr=True) if ok and frame is not None else None

    def close(self):
        self.cap.release()


class FolderSource:
    """Image files in order: a folder's JPEG/PNG files, or one image file.

    `current` names the file of the last frame (results are logged under it). A file that
    cannot be read is passed to `on_bad(name, reason)` and skipped: the batch goes on.
    """
    live = False

    def __init__(self, folder=None, files=None, on_bad=None):
        if files is None:
            try:
                files = sorted(str(p) for p in Path(folder).iterdir()
                               if p.suffix.lower() in IMAGE_SUFFIXES)
            except OSError as e:
                raise CameraError(f"{shown_path(folder)}: cannot list the folder "
                                  f"({e.strerror})") from None
            if not files:
                raise CameraError(f"{shown_path(folder)}: folder holds no .jpg/.jpeg/.png images")
        self.name = shown_path(folder if folder is not None else files[0])
        self.files = files
        self.current = None
        self.on_bad = on_bad or (lambda name, reason: None)
        self.bad = 0
        self.next = 0

    def read(self):
        while self.next < len(self.files):
            path = self.files[self.next]
            self.next += 1
            try:
                rgb = read_rgb(path)  # bounded and strict, as for classify
            except ImageError as e:
                self.bad += 1
                self.on_bad(shown_path(path), str(e))
                continue
            self.current = shown_path(path)
            return rgb
        return None

    def close(self):
        pass


@contextmanager
def _quiet_opencv():
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:
        yield
        return
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(level)


@contextmanager
def _quiet_stderr():
    """Silence what C libraries (FFmpeg under OpenCV) write to file descriptor 2."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_source(camera=None, source=None, on_bad=None):
    """--camera N|picam or --source PATH_OR_URL -> a frame source, or CameraError.

    `on_bad(name, reason)` hears of each unreadable file of an image folder."""
    if source is not None:
        if "://" in source:
            return OpenCvSource(source, live=True, name=f"stream {source}")
        if os.path.isdir(source):
            return FolderSource(source, on_bad=on_bad)
        if not os.path.exists(source) and "%" not in source:  # %03d: an image sequence
            raise CameraError(f"{shown_path(source)}: no such file")
        if source.lower().endswith(IMAGE_SUFFIXES):  # one image: our strict reader, not FFmpeg
            try:
                read_rgb(source)
            except ImageError as e:
                raise CameraError(f"{shown_path(source)}: {e}") from None
            return FolderSource(files=[source])
        return OpenCvSource(source, live=False, name=shown_path(source))
    camera = "0" if camera is None else str(camera)
    if camera == "picam":  # imported only here: picamera2 exists only on a Pi (device/picam.py)
        from .picam import PicameraSource
        return PicameraSource()
    if not camera.isdigit():
        raise CameraError(f"--camera takes a camera index or 'picam', got {camera!r}")
    return OpenCvSource(int(camera), live=True, name=f"camera {camera}")


def read_frame(src):
    """Next RGB frame, or None once the source has stopped delivering."""
    tries = LIVE_RETRIES if src.live else 1
    for attempt in range(tries):
        frame = src.read()
        if frame is not None:
            return frame
        if attempt + 1 < tries:
            time.sleep(LIVE_RETRY_WAIT_S)
    return None


def run(src, classifier, thresholds, emit, log=None, count=None, interval=0.0,
        save_dir=None):
    """Capture up to `count` frames (all, if None). Returns (frames read, results, stopped).

    `stopped` is True when the source ended before `count` frames, or a live source ended.
    Every accepted frame is classified, saved (if save_dir) and logged before it is emitted.
    """
    frames = results = 0
    while count is None or frames < count:
        rgb = read_frame(src)
        if rgb is None:
            return frames, results, (count is not None or src.live)
        frames += 1
        origin = getattr(src, "current", None) or src.name  # an image folder: the file
        quality = measure(rgb)
        verdict = judge(quality, thresholds)
        if verdict is not None:
            emit({"frame": frames, "source": origin, "rejected": verdict[0],
                  "detail": verdict[1], "quality": quality})
        else:
            result = classifier.classify_capture(rgb)  # at the training scale, tiled
            record = {"frame": frames, "source": origin, **result,
                      "bundle": classifier.bundle.id, "quality": quality,
                      "input_sha256": hashlib.sha256(rgb.tobytes()).hexdigest()}
            if save_dir is not None:
                save_frame(save_dir, frames, rgb, record)
            if log is not None:
                log.record(result, source=origin, frame=frames,
                           input_sha256=record["input_sha256"],
                           bundle=classifier.bundle.id, quality=quality)
            results += 1
            emit(record)
        if interval and (count is None or frames < count):
            time.sleep(interval)
    return frames, results, False


def save_frame(save_dir, number, rgb, record):
    """frame_000001.png (lossless, what was classified) and frame_000001.json beside it."""
    save_dir = Path(save_dir)
    stem = save_dir / f"frame_{number:06d}"
    png = stem.with_suffix(".png")
    if not cv2.imwrite(str(png), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {png}")
    atomic_write_json(stem.with_suffix(".json"), {**record, "image": png.name})
