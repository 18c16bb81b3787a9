"""`alledge capture --camera picam` (device/picam.py) against a fake `picamera2`.

No camera module exists here, so the tests write a small `picamera2` package into a folder
put on PYTHONPATH of a real `alledge` process, as apt's python3-picamera2 would be on a Pi.
It hands out the frames a test gives it (as picamera2's "RGB888": B, G, R in memory), then
times out like a camera that stopped; environment variables make it fail in the ways the
real library does. It logs every call, so the tests can see the camera is released.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from alledge.device import exitcodes
from alledge.device.bundle import load_selected_bundle
from alledge.device.classify import Classifier
from alledge.device.images import read_rgb
from bundles import smear

FAKE_PICAMERA2 = '''
"""A stand-in for picamera2 in tests: same names, frames from FAKE_PICAM_FRAMES (.npy)."""
import os
from pathlib import Path

import numpy as np

if os.environ.get("FAKE_PICAM_NO_LIBCAMERA"):
    import libcamera  # noqa: F401  (what a pip-installed picamera2 without apt's libcamera does)


def _log(*words):
    if os.environ.get("FAKE_PICAM_LOG"):
        with open(os.environ["FAKE_PICAM_LOG"], "a") as f:
            f.write(" ".join(map(str, words)) + "\\n")


class Picamera2:
    @staticmethod
    def global_camera_info():
        n = int(os.environ.get("FAKE_PICAM_CAMERAS", "1"))
        return [{"Model": "imx477", "Num": i} for i in range(n)]

    def __init__(self, camera_num=0):
        if os.environ.get("FAKE_PICAM_OPEN_ERROR"):
            raise RuntimeError(os.environ["FAKE_PICAM_OPEN_ERROR"])
        folder = Path(os.environ.get("FAKE_PICAM_FRAMES", "."))
        self.frames = sorted(folder.glob("*.npy"))
        _log("open", camera_num)

    def create_still_configuration(self, main=None):
        return {"main": dict(main or {})}

    def configure(self, config):
        _log("configure", config["main"].get("format"))

    def start(self):
        _log("start")

    def capture_array(self, name="main"):
        if not self.frames:
            raise TimeoutError("Camera frontend has timed out!")
        return np.load(self.frames.pop(0))

    def stop(self):
        _log("stop")

    def close(self):
        _log("close")
'''


@pytest.fixture
def fake(tmp_path):
    """(env, frames folder, call log) for a real alledge process that imports the fake."""
    (tmp_path / "fake" / "picamera2").mkdir(parents=True)
    (tmp_path / "fake" / "picamera2" / "__init__.py").write_text(FAKE_PICAMERA2)
    frames = tmp_path / "frames"
    frames.mkdir()
    log = tmp_path / "calls.log"
    env = {k: v for k, v in os.environ.items() if k not in ("ALLEDGE_BUNDLE", "ALLEDGE_DB")}
    env.update(PYTHONPATH=str(tmp_path / "fake"), FAKE_PICAM_FRAMES=str(frames),
               FAKE_PICAM_LOG=str(log), ALLEDGE_HOME=str(tmp_path / "home"))
    return env, frames, log


def capture(env, *args):
    return subprocess.run([sys.executable, "-m", "alledge.device.cli", "capture",
                           "--camera", "picam", "--no-log", *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=120)


def put_frames(folder, n):
    """n smear frames, stored as the camera delivers them (BGR order); returns them as RGB."""
    rgbs = [smear(i % 4, np.random.default_rng(i), size=160) for i in range(n)]
    for i, rgb in enumerate(rgbs):
        np.save(folder / f"{i:03d}.npy", np.ascontiguousarray(rgb[:, :, ::-1]))
    return rgbs


def calls(log):
    return log.read_text().split("\n")[:-1] if log.exists() else []


def same_result(record, want):
    """The CLI's record carries the classifier's result on the same pixels."""
    for key in ("status", "label", "ood_score"):
        assert record.get(key) == want.get(key), key
    if want.get("probabilities") is None:
        assert record.get("probabilities") is None
    else:
        for c, p_want in want["probabilities"].items():
            assert record["probabilities"][c] == pytest.approx(p_want, abs=1e-6)


def test_frames_in_results_out(fake):
    env, frames, log = fake
    rgbs = put_frames(frames, 4)
    p = capture(env, "--count", 4, "--json")
    assert p.returncode == exitcodes.OK, p.stderr
    records = [json.loads(line) for line in p.stdout.splitlines()]
    assert "slide" in records.pop()  # --count N: the fields of a slide, then its summary
    assert [r["frame"] for r in records] == [1, 2, 3, 4]
    # the results are the classifier's on the very pixels the camera gave, turned to RGB
    # (drawn smears: the bundle may well call them out of domain, which is a result too)
    classifier = Classifier(load_selected_bundle(None))
    for r, rgb in zip(records, rgbs):
        assert r["source"] == "Pi camera (picamera2)"
        same_result(r, classifier.classify_capture(rgb))  # at the training scale
    assert calls(log) == ["open 0", "configure RGB888", "start", "stop", "close"]


@pytest.mark.realdata
def test_real_fields_through_the_camera_are_answered(fake, real_data):
    env, frames, _ = fake
    classifier = Classifier(load_selected_bundle(None))
    # per class, the first field the bundle answers (the gate may refuse an odd one: the
    # fine-tuned default flags WBC-Malignant-Pre-001.jpg as out of domain)
    rgbs = []
    for c in ("Benign", "Early", "Pre", "Pro"):
        for path in sorted((real_data / c).glob("*.jpg")):
            rgb = read_rgb(path)
            if classifier.classify_capture(rgb).get("status") == "ok":
                rgbs.append(rgb)
                break
    for i, rgb in enumerate(rgbs):
        np.save(frames / f"{i:03d}.npy", np.ascontiguousarray(rgb[:, :, ::-1]))
    p = capture(env, "--count", 4, "--json")
    assert p.returncode == exitcodes.OK, p.stderr
    records = [json.loads(line) for line in p.stdout.splitlines()]
    assert "slide" in records.pop()  # --count N: the fields of a slide, then its summary
    assert len(records) == 4
    for r, rgb in zip(records, rgbs):
        want = classifier.classify_capture(rgb)
        assert want.get("status", "ok") == "ok" and want["label"]
        same_result(r, want)


def test_a_camera_that_stops_ends_with_exit_4_after_its_results(fake):
    env, frames, log = fake
    put_frames(frames, 2)
    p = capture(env, "--count", 5, "--json")
    assert p.returncode == exitcodes.NO_CAMERA
    assert len(p.stdout.splitlines()) == 2          # both frames classified and printed
    assert p.stderr.count("\n") == 1 and "stopped delivering frames after 2" in p.stderr
    assert calls(log)[-2:] == ["stop", "close"]     # the camera is released


@pytest.mark.parametrize("setting, says", [
    ({"FAKE_PICAM_CAMERAS": "0"}, "no Pi camera module found"),
    ({"FAKE_PICAM_OPEN_ERROR": "Failed to acquire camera: Device or resource busy"},
     "cannot open the Pi camera: RuntimeError: Failed to acquire camera: Device or resource busy"),
    ({"FAKE_PICAM_NO_LIBCAMERA": "1"}, "--system-site-packages"),
])
def test_a_camera_that_cannot_open_is_exit_4_in_one_line(fake, setting, says):
    env, frames, _ = fake
    put_frames(frames, 1)
    p = capture({**env, **setting}, "--count", 1)
    assert p.returncode == exitcodes.NO_CAMERA, p.stderr
    assert p.stdout == "" and p.stderr.count("\n") == 1 and says in p.stderr, p.stderr


def test_without_picamera2_it_says_how_to_install_it(fake):
    env, _, _ = fake
    env = {**env, "PYTHONPATH": ""}
    if subprocess.run([sys.executable, "-c", "import picamera2"], env=env).returncode == 0:
        pytest.skip("a real picamera2 is installed here")
    p = capture(env, "--count", 1)
    assert p.returncode == exitcodes.NO_CAMERA
    assert "sudo apt install python3-picamera2" in p.stderr and p.stderr.count("\n") == 1
