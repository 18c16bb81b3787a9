"""A slide: `classify --slide DIR` and `capture --count N` read fields into one session of the
results log, end with a summary (alledge.device.slide's rule), shown by `history --slides`;
every printed field is stored before it is printed, so kill -9 loses none."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest


def smear(seed, side=224):
    """A drawn field: grey-blue red cells and one violet white cell, on a bright background."""
    rng = np.random.default_rng(seed)
    img = np.full((side, side, 3), (240, 236, 232), np.uint8)  # BGR
    for _ in range(60):
        x, y = (int(v) for v in rng.integers(0, side, 2))
        cv2.circle(img, (x, y), 9, (205, 180, 170), -1)
    cv2.circle(img, (side // 2, side // 2), 20, (200, 60, 110), -1)
    return cv2.GaussianBlur(img, (0, 0), 0.8)


@pytest.fixture
def slide_dir(tmp_path):
    d = tmp_path / "slide"
    d.mkdir()
    for i in range(6):
        cv2.imwrite(str(d / f"field_{i:02d}.jpg"), smear(i))
    (d / "field_99.jpg").write_bytes(b"\xff\xd8\xff not really")  # one unreadable field
    return d


def test_classify_slide_ends_with_a_stored_summary(run_cli, slide_dir, tmp_path):
    db = tmp_path / "log.db"
    r = run_cli("classify", "--slide", slide_dir, "--json", "--db", db)
    lines = [json.loads(x) for x in r.output.splitlines() if x.startswith("{")]
    fields, summary = lines[:-1], lines[-1]["slide"]
    assert len(fields) == 7 and summary["fields"] == 7 and summary["error"] == 1
    assert summary["answered"] + summary["out_of_domain"] + summary["rejected"] == 6
    assert summary["call"] == "inconclusive" or summary["answered"] >= 5
    stored = json.loads(sqlite3.connect(db).execute(
        "SELECT summary FROM summaries WHERE session_id=?", (summary["session"],)).fetchone()[0])
    assert stored == summary
    shown = run_cli("history", "--slides", "--json", "--db", db)
    assert json.loads(shown.output.splitlines()[0])["summary"] == summary


def test_slide_and_images_are_one_or_the_other(run_cli, slide_dir):
    r = run_cli("classify", "--slide", slide_dir, slide_dir / "field_00.jpg", "--no-log")
    assert r.exit_code == 2 and "one of them" in r.stderr
    r = run_cli("classify", "--no-log")
    assert r.exit_code == 2 and r.stderr.startswith("error:")


def test_capture_count_is_a_slide(run_cli, slide_dir, tmp_path):
    db = tmp_path / "log.db"
    r = run_cli("capture", "--source", slide_dir, "--count", "3", "--json", "--db", db)
    last = json.loads(r.output.splitlines()[-1])["slide"]
    assert last["fields"] == 3
    rows = sqlite3.connect(db).execute("SELECT count(*) FROM fields WHERE session_id=?",
                                       (last["session"],)).fetchone()
    assert rows[0] == 3


def test_kill_9_mid_slide_loses_no_printed_field(slide_dir, tmp_path):
    for i in range(6, 40):
        cv2.imwrite(str(slide_dir / f"field_{i:02d}.jpg"), smear(i))
    db = tmp_path / "log.db"
    proc = subprocess.Popen([sys.executable, "-m", "alledge.device.cli", "classify", "--slide",
                             str(slide_dir), "--json", "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    printed = []
    deadline = time.time() + 60
    while len(printed) < 5 and time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("{"):
            printed.append(json.loads(line)["path"])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(printed) == 5
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    stored = {json.loads(r[0])["path"] for r in con.execute("SELECT record FROM fields")}
    assert set(printed) <= stored
    assert con.execute("SELECT count(*) FROM summaries").fetchone()[0] == 0  # unfinished
