"""Every classification lands in the SQLite results log before it is shown, durably."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import cv2
import numpy as np
from click.testing import CliRunner

from alledge.device.cli import main
from alledge.device.results_log import ResultsLog, default_path
from bundles import cnn_bundle, image_dir, smear


def test_default_location_and_overrides(tmp_path):
    assert str(default_path({})).endswith(".local/share/alledge/results.db")
    assert default_path({"ALLEDGE_HOME": "/a"}) == type(default_path({}))("/a/results.db")
    assert str(default_path({"ALLEDGE_HOME": "/a", "ALLEDGE_DB": "/b.db"})) == "/b.db"


def test_classify_logs_each_result_and_history_lists_them(tmp_path_factory, tmp_path):
    db = tmp_path / "results.db"
    images = image_dir(tmp_path_factory)
    bundle = cnn_bundle(tmp_path_factory)
    r = CliRunner().invoke(main, ["classify", str(images), "--bundle", str(bundle), "--json",
                                  "--db", str(db)])
    printed = [json.loads(line) for line in r.output.splitlines()]
    rows = ResultsLog(db).recent()
    assert len(rows) == len(printed)
    newest = rows[0]
    assert newest["source"] == printed[-1]["path"] and newest["frame"] is None
    assert newest["label"] == printed[-1]["label"]
    assert newest["probabilities"] == printed[-1]["probabilities"]
    assert newest["bundle"] == printed[-1]["bundle"] and len(newest["input_sha256"]) == 64
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    h = CliRunner().invoke(main, ["history", "--json", "--limit", "3", "--db", str(db)])
    assert h.exit_code == 0
    assert [json.loads(line)["id"] for line in h.output.splitlines()] == [r["id"] for r in rows[:3]]
    text = CliRunner().invoke(main, ["history", "--db", str(db)])
    assert text.exit_code == 0 and printed[-1]["path"] in text.output


def test_history_without_a_log_says_so(tmp_path):
    r = CliRunner().invoke(main, ["history", "--db", str(tmp_path / "none.db")])
    assert r.exit_code == 2 and "no results log yet" in r.output


def test_killed_batch_leaves_a_clean_log_with_every_reported_result(tmp_path_factory, tmp_path):
    # 400 copies of a large JPEG: long enough a batch to be killed in the middle
    folder = tmp_path / "batch"
    folder.mkdir()
    big = cv2.resize(smear(2, np.random.default_rng(0)), (1600, 1600))
    data = cv2.imencode(".jpg", big)[1].tobytes()
    for i in range(400):
        (folder / f"frame_{i:04d}.jpg").write_bytes(data)
    db = tmp_path / "results.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "alledge.device.cli", "classify", str(folder), "--json",
         "--bundle", str(cnn_bundle(tmp_path_factory)), "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    reported = []
    deadline = time.monotonic() + 120
    while len(reported) < 5 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        reported.append(json.loads(line)["path"])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # lines already in the pipe were reported too (complete lines only)
    reported += [json.loads(x)["path"] for x in proc.stdout.read().splitlines()
                 if x.endswith("}")]
    assert proc.returncode == -signal.SIGKILL, "the batch finished before it was killed"
    assert 5 <= len(reported) < 400

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    logged = {row[0] for row in conn.execute("SELECT source FROM results")}
    assert set(reported) <= logged
