"""`alledge calibrate` measures a microscope once; classify uses it for frames of its size,
estimates others, and a given scale overrides both."""
import json

import cv2
import numpy as np

from test_slide_cli import smear


def big_frame(path, zoom=3.0):
    img = cv2.resize(smear(1, 300), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def test_calibrate_saves_and_classify_uses_it(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ALLEDGE_HOME", str(tmp_path / "home"))
    frame = big_frame(tmp_path / "f.jpg")
    r = run_cli("calibrate", frame, frame, "--json")
    assert r.exit_code == 0, r.stderr
    saved = json.loads((tmp_path / "home" / "microscope.json").read_text())
    assert saved["frame_size"] == [900, 900] and saved["rbc_diameter_px"] > 30
    out = run_cli("classify", "--no-log", "--json", frame)
    assert json.loads(out.output)["scale"]["source"] == "calibrated"
    given = run_cli("classify", "--no-log", "--json", "--rbc-diameter-px", "57", frame)
    assert json.loads(given.output)["scale"] == {**json.loads(given.output)["scale"],
                                                  "source": "given", "rbc_diameter_px": 57.0}
    other = big_frame(tmp_path / "g.jpg", zoom=2.0)  # another size: estimated
    assert json.loads(run_cli("classify", "--no-log", "--json", other).output)["scale"][
        "source"] == "estimated"


def test_calibrate_refuses_mixed_sizes_and_bad_files_in_one_line(run_cli, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("ALLEDGE_HOME", str(tmp_path / "home"))
    a, b = big_frame(tmp_path / "a.jpg"), big_frame(tmp_path / "b.jpg", zoom=2.0)
    r = run_cli("calibrate", a, b)
    assert r.exit_code == 2 and "different sizes" in r.stderr and "\n" == r.stderr[-1]
    r = run_cli("calibrate", tmp_path / "none.jpg")
    assert r.exit_code == 2 and "no such file" in r.stderr
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 200, np.uint8))
    r = run_cli("calibrate", blank)
    assert r.exit_code == 2 and "no red cells" in r.stderr


def test_a_bad_calibration_file_is_one_line(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ALLEDGE_HOME", str(tmp_path))
    (tmp_path / "microscope.json").write_text("{not json")
    r = run_cli("classify", "--no-log", big_frame(tmp_path / "f.jpg"))
    assert r.exit_code == 2 and "microscope calibration" in r.stderr
