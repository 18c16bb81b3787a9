"""`alledge capture`: frames pass a quality gate, good ones are classified, logged and saved."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from alledge.device import exitcodes
from alledge.device.cli import main
from alledge.device.quality import Thresholds, judge, measure
from alledge.device.results_log import ResultsLog
from bundles import cnn_bundle, smear

SIZE = 160


def good(i):
    return smear(i % 4, np.random.default_rng(i), size=SIZE)


def dark(i):
    return (good(i) * 0.08).astype(np.uint8)


def overexposed(i):
    return np.clip(good(i).astype(int) + 120, 0, 255).astype(np.uint8)


def blank(i):
    return np.full((SIZE, SIZE, 3), 128, np.uint8)


def blurred(i):
    return cv2.GaussianBlur(good(i), (9, 9), 0)


# frame number (1-based) -> what the gate says
FRAMES = [good, dark, good, overexposed, blank, blurred, good]
EXPECTED = [None, "too dark", None, "overexposed", "blank", "out of focus", None]


@pytest.mark.parametrize("make, reason", list(zip(FRAMES, EXPECTED))[:6])
def test_quality_gate_reasons(make, reason):
    verdict = judge(measure(make(0)))
    assert (verdict[0] if verdict else None) == reason


def test_thresholds_are_settable():
    m = measure(good(0))
    assert judge(m, Thresholds(min_sharpness=m["sharpness"] + 1))[0] == "out of focus"
    assert judge(m, Thresholds(min_brightness=255))[0] == "too dark"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """An MJPG .avi of the FRAMES sequence, as a USB camera or recording would deliver."""
    path = tmp_path_factory.mktemp("video") / "smear.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (SIZE, SIZE))
    assert writer.isOpened()
    for i, make in enumerate(FRAMES):
        writer.write(cv2.cvtColor(make(i), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def capture(*args):
    r = CliRunner().invoke(main, ["capture", *map(str, args)])
    return r.exit_code, r.output


def test_video_frames_are_gated_classified_logged_and_saved(tmp_path_factory, video, tmp_path):
    db, saved = tmp_path / "r.db", tmp_path / "saved"
    code, out = capture("--source", video, "--json", "--save-dir", saved, "--db", db,
                        "--bundle", cnn_bundle(tmp_path_factory))
    assert code == exitcodes.OK
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["frame"] for r in records] == list(range(1, len(FRAMES) + 1))
    assert [r.get("rejected") for r in records] == EXPECTED
    accepted = [r for r in records if "label" in r]
    for r in accepted:
        stem = saved / f"frame_{r['frame']:06d}"
        assert cv2.imread(str(stem) + ".png") is not None
        on_disk = json.loads((stem.with_suffix(".json")).read_text())
        assert on_disk["label"] == r["label"] and on_disk["quality"] == r["quality"]
    assert len(list(saved.glob("*.json"))) == len(accepted) == 3
    rows = ResultsLog(db).recent()
    assert sorted(row["frame"] for row in rows) == [r["frame"] for r in accepted]
    assert all(row["quality"]["sharpness"] > 0 for row in rows)


def test_rejections_print_reason_and_measured_value(tmp_path_factory, video, tmp_path):
    code, out = capture("--source", video, "--count", "2", "--no-log",
                        "--bundle", cnn_bundle(tmp_path_factory))
    lines = out.splitlines()
    assert code == 0 and len(lines) > 2 and lines[2].startswith("slide")  # then its summary
    assert lines[0].startswith("frame 1: ") and "ms" in lines[0]
    assert lines[1].startswith("frame 2: rejected, too dark (brightness ")


def test_source_that_stops_early_ends_clearly_after_saving(tmp_path_factory, video, tmp_path):
    saved = tmp_path / "saved"
    code, out = capture("--source", video, "--count", "50", "--save-dir", saved,
                        "--db", tmp_path / "r.db", "--bundle", cnn_bundle(tmp_path_factory))
    assert code == exitcodes.NO_CAMERA
    assert out.splitlines()[-1] == (f"error: {video} stopped delivering frames after "
                                    f"{len(FRAMES)} of 50; 3 results saved")
    assert len(list(saved.glob("*.png"))) == 3 and len(ResultsLog(tmp_path / "r.db").recent()) == 3


def test_image_folder_is_a_source(tmp_path_factory, tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:02d}.png"), cv2.cvtColor(FRAMES[i](i), cv2.COLOR_RGB2BGR))
    code, out = capture("--source", folder, "--json", "--no-log",
                        "--bundle", cnn_bundle(tmp_path_factory))
    assert code == 0
    assert [json.loads(x).get("rejected") for x in out.splitlines()] == EXPECTED[:3]


@pytest.mark.parametrize("args", [["--source", "/nonexistent/video.avi"], ["--camera", "97"],
                                  ["--camera", "picam"]])
def test_camera_that_cannot_be_opened_is_one_line(tmp_path_factory, args):
    if args == ["--camera", "picam"]:
        try:
            import picamera2  # noqa: F401
            pytest.skip("picamera2 installed")
        except ImportError:
            pass
    # a real process: OpenCV's own logging goes to the stderr file descriptor
    p = subprocess.run([sys.executable, "-m", "alledge.device.cli", "capture", *args, "--no-log",
                        "--bundle", str(cnn_bundle(tmp_path_factory))],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == exitcodes.NO_CAMERA
    assert p.stdout == "" and p.stderr.count("\n") == 1 and p.stderr.startswith("error: ")
