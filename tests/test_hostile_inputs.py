"""Hostile inputs: every one is refused or handled, never a traceback, a hang or a guess.

Each case runs the real `alledge` command in a subprocess (with a timeout, so a hang fails
the test) and asserts the documented exit code, exactly one `error: ...` line on stderr
where the command stops, and, for a batch, that every other input was still classified
and logged. The cases are those of issue 13's adversarial pass.
"""
import json
import os
import shutil
import sqlite3
import stat
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from alledge.device import exitcodes
from alledge.device.bundle import DEFAULT_BUNDLE, seal
from alledge.device.results_log import ResultsLog
from bundles import smear, svm_bundle

ALLEDGE = str(Path(sys.executable).parent / "alledge")


def alledge(env, *args, timeout=60, limit_memory=None):
    """(exit code, stdout, stderr) of one real run of the command; fails on a hang or a
    traceback. Arguments may hold non-UTF-8 bytes (as surrogate escapes)."""
    def limit():
        if limit_memory:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))
    argv = [ALLEDGE] + [os.fsencode(a) if isinstance(a, (str, Path)) else a for a in args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=limit)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"alledge {' '.join(map(str, args))} hung for {timeout} s")
    out, err = out.decode("utf-8"), err.decode("utf-8")
    assert "Traceback" not in out + err, err
    return proc.returncode, out, err


# Peak RSS must be read from a small parent: Linux carries the forking process's peak (here
# pytest's, gigabytes after the training tests) into its child's ru_maxrss across exec.
_MEASURE = """import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = p.stderr.read()
_, status, usage = os.wait4(p.pid, 0)
sys.stderr.buffer.write(err)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss_mb(env, *args, timeout=60):
    """Exit code, stderr and peak resident memory (MB) of one run, from the kernel's count."""
    try:
        r = subprocess.run([sys.executable, "-c", _MEASURE, ALLEDGE, *map(str, args)],
                           capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"alledge {' '.join(map(str, args))} hung for {timeout} s")
    assert "Traceback" not in r.stderr, r.stderr
    code, maxrss_kb = map(int, r.stdout.split())
    return code, r.stderr, maxrss_kb / 1024


def one_error_line(err):
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def records(out):
    return [json.loads(line) for line in out.splitlines()]


def judged(record):
    """An input the device read and judged (ok, out_of_domain or rejected), not an error."""
    return "error" not in record and record.get("status", "ok") != "error"


def answered(record):
    """A record that carries a class: status ok (or, before statuses, a label)."""
    return record.get("status", "ok") == "ok" and record.get("label") is not None


def logged_sources(db):
    return [row["source"] for row in ResultsLog(db).recent()]


@pytest.fixture(scope="module")
def good_jpeg():
    rgb = smear(2, np.random.default_rng(7), size=224)
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_of_zeros(path, width, height, depth, colour_type, raw_bytes):
    """A PNG whose IDAT inflates to `raw_bytes` zero bytes, written without holding them."""
    z = zlib.compressobj(9)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type,
                                                0, 0, 0)))
        block, left = bytes(1 << 24), raw_bytes
        while left:
            piece = z.compress(block[:min(left, len(block))])
            left -= min(left, len(block))
            if piece:
                f.write(png_chunk(b"IDAT", piece))
        f.write(png_chunk(b"IDAT", z.flush()))
        f.write(png_chunk(b"IEND", b""))
    return path


# --- names, special files, huge files ---------------------------------------------------

def test_a_non_utf8_file_name_does_not_stop_the_batch(env, tmp_path, good_jpeg):
    folder = tmp_path / "batch"
    folder.mkdir()
    odd = os.path.join(os.fsencode(folder), b"a\xff.jpg")
    Path(os.fsdecode(odd)).write_bytes(good_jpeg)
    (folder / "b.jpg").write_bytes(good_jpeg)
    (folder / "c\nd.jpg").write_bytes(good_jpeg)  # a newline in a name: still one line
    db = tmp_path / "r.db"
    code, out, err = alledge(env, "classify", folder, "--json", "--db", db)
    assert code == exitcodes.OK and err == ""
    paths = [r["path"] for r in records(out)]
    assert paths == [f"{folder}/a\\xff.jpg", f"{folder}/b.jpg", f"{folder}/c\\nd.jpg"]
    assert sorted(logged_sources(db)) == sorted(paths)
    code, out, _ = alledge(env, "classify", folder, "--db", db)  # the text output too
    assert code == 0 and len(out.splitlines()) == 3


def test_a_fifo_is_refused_at_once_and_the_batch_goes_on(env, tmp_path, good_jpeg):
    fifo, good = tmp_path / "f.jpg", tmp_path / "good.jpg"
    os.mkfifo(fifo)
    good.write_bytes(good_jpeg)
    db = tmp_path / "r.db"
    code, out, err = alledge(env, "classify", fifo, good, "--json", "--db", db, timeout=30)
    assert code == exitcodes.SOME_FAILED and err == ""
    bad, ok = records(out)
    assert "FIFO" in bad["error"] and not answered(bad)
    assert ok["path"] == str(good) and judged(ok)
    assert str(good) in logged_sources(db)


def test_a_fifo_inside_a_folder_is_reported_not_skipped(env, tmp_path, good_jpeg):
    os.mkfifo(tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(good_jpeg)
    code, out, _ = alledge(env, "classify", tmp_path, "--json", "--no-log", timeout=30)
    assert code == exitcodes.SOME_FAILED
    assert ["error" in r for r in records(out)] == [True, False]


def test_bench_refuses_a_fifo_image_in_one_line(env, tmp_path):
    os.mkfifo(tmp_path / "f.jpg")
    code, _, err = alledge(env, "bench", "--image", tmp_path / "f.jpg", "--runs", "1",
                           timeout=30)
    assert code == exitcodes.USAGE and "not a regular file" in one_error_line(err)


def test_dev_zero_under_a_2_gb_memory_limit_is_an_error_not_a_memory_error(env, tmp_path):
    code, out, err = alledge(env, "classify", "/dev/zero", "--db", tmp_path / "r.db",
                             limit_memory=2_000_000_000, timeout=30)
    assert code == exitcodes.SOME_FAILED and err == ""
    assert "character device" in out


@pytest.mark.parametrize("size", [1 << 30, 100 << 20])  # over, and under, the file size cap
def test_a_large_non_image_is_refused_without_reading_it(env, tmp_path, size):
    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:
        f.write(b"just text, not an image" * 10)
        f.truncate(size)  # sparse: no disk used
    start = time.monotonic()
    code, rss_err, peak = peak_rss_mb(env, "classify", big, "--no-log")
    assert code == exitcodes.SOME_FAILED and time.monotonic() - start < 20
    assert peak < 300, f"peak RSS {peak:.0f} MB: the file was read"


def test_a_40_megapixel_16_bit_rgba_png_is_refused_within_400_mb(env, tmp_path):
    big = png_of_zeros(tmp_path / "big16.png", 8000, 5000, 16, 6, 5000 * (1 + 8000 * 8))
    assert big.stat().st_size < 1_000_000
    code, err, peak = peak_rss_mb(env, "classify", big, "--no-log")
    assert code == exitcodes.SOME_FAILED and err == ""
    assert peak < 400, f"peak RSS {peak:.0f} MB"


def test_a_png_zlib_bomb_is_refused_fast_and_never_answered(env, tmp_path):
    # a 1000x1000 RGB header (3 MB of pixels) with 1 GB of zlib data behind it
    bomb = png_of_zeros(tmp_path / "bomb.png", 1000, 1000, 8, 2, 1 << 30)
    start = time.monotonic()
    code, out, err = alledge(env, "classify", bomb, "--json", "--no-log")
    assert time.monotonic() - start < 5
    (r,) = records(out)
    assert code == exitcodes.SOME_FAILED and not answered(r) and "inflates to more" in r["error"]


# --- decoder warnings are errors -------------------------------------------------------

def damaged_scan(data):
    """Add 77 (mod 256) to every 97th byte from 3000 to 9000 (issue 10's damaged scan)."""
    d = bytearray(data)
    for i in range(3000, min(9001, len(d) - 2), 97):
        d[i] = (d[i] + 77) % 256
    return bytes(d)


def half_with_end_marker(data):
    return data[:len(data) // 2] + b"\xff\xd9"


def bad_png_crc(data):
    d = bytearray(data)
    i = d.find(b"IDAT") + 8
    d[i] ^= 0xFF
    return bytes(d)


@pytest.mark.parametrize("damage", [damaged_scan, half_with_end_marker])
def test_a_jpeg_with_corrupt_data_never_gets_a_label(env, tmp_path, good_jpeg, damage):
    (tmp_path / "bad.jpg").write_bytes(damage(good_jpeg))
    (tmp_path / "good.jpg").write_bytes(good_jpeg)
    code, out, err = alledge(env, "classify", tmp_path, "--json", "--db", tmp_path / "r.db")
    bad, good = records(out)
    assert code == exitcodes.SOME_FAILED and err == ""
    assert not answered(bad) and "corrupt" in bad["error"] and judged(good)
    assert str(tmp_path / "good.jpg") in logged_sources(tmp_path / "r.db")


@pytest.mark.parametrize("damage", [damaged_scan, half_with_end_marker])
def test_the_dataset_jpeg_damaged_as_in_issue_10_is_an_error(env, tmp_path, real_data, damage):
    data = (real_data / "Pro" / "WBC-Malignant-Pro-001.jpg").read_bytes()
    (tmp_path / "bad.jpg").write_bytes(damage(data))
    code, out, _ = alledge(env, "classify", tmp_path / "bad.jpg", "--json", "--no-log")
    assert code == exitcodes.SOME_FAILED and not answered(records(out)[0])


def test_strict_decoding_refuses_no_dataset_image_and_gives_opencvs_pixels(real_data):
    # the models were trained on OpenCV-decoded pixels: the strict decoder must not change one
    from alledge.device.images import decode_rgb
    files = sorted(real_data.glob("*/*.jpg"))
    assert len(files) == 3256
    for f in files:
        data = f.read_bytes()
        opencv = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                              cv2.COLOR_BGR2RGB)
        assert np.array_equal(decode_rgb(data), opencv), f


def test_a_png_with_a_bad_crc_or_missing_data_is_an_error(env, tmp_path):
    png = cv2.imencode(".png", smear(1, np.random.default_rng(3), size=64))[1].tobytes()
    (tmp_path / "crc.png").write_bytes(bad_png_crc(png))
    z = zlib.compress(bytes(10 * (1 + 10 * 3)))[:-8]  # a zlib stream cut short
    (tmp_path / "short.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0))
        + png_chunk(b"IDAT", z) + png_chunk(b"IEND", b""))
    code, out, _ = alledge(env, "classify", tmp_path, "--json", "--no-log")
    assert code == exitcodes.SOME_FAILED
    assert [(answered(r), "error" in r) for r in records(out)] == [(False, True)] * 2


# --- flags -----------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [["--threads", "2147483648"], ["--threads", "0"],
                                   ["--threads", "10000"], ["--delegate", "nonsense"],
                                   ["--db", "FOLDER"], ["--db", ""], ["--trust", ""]])
def test_a_bad_flag_is_one_line_and_exit_2(env, tmp_path, good_jpeg, flags):
    (tmp_path / "a.jpg").write_bytes(good_jpeg)
    flags = [str(tmp_path) if f == "FOLDER" else f for f in flags]
    code, out, err = alledge(env, "classify", tmp_path / "a.jpg", *flags)
    assert code == exitcodes.USAGE and out == ""
    assert flags[0] in one_error_line(err)
    assert not (Path(env["ALLEDGE_HOME"]) / "results.db").exists()  # '' never meant default


# --- the results log -------------------------------------------------------------------

def damaged_sqlite(path):
    """A real results log with one b-tree page overwritten."""
    log = ResultsLog(path)
    for i in range(300):
        log.record({"label": "Pro", "probabilities": {"Pro": 1.0}}, source=f"{i}.jpg" * 5)
    log.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")  # fold the WAL into the file
    conn.close()
    data = bytearray(path.read_bytes())
    data[2 * 4096:2 * 4096 + 40] = b"\xa5" * 40
    path.write_bytes(bytes(data))
    return path


def not_sqlite(path):
    path.write_bytes(b"this is not sqlite at all, not even close" * 3)
    return path


@pytest.mark.parametrize("make", [not_sqlite, damaged_sqlite])
def test_a_damaged_or_foreign_database_is_refused_and_left_untouched(env, tmp_path, good_jpeg,
                                                                    make):
    db = tmp_path / "r.db"
    make(db)
    before = db.read_bytes()
    (tmp_path / "a.jpg").write_bytes(good_jpeg)
    code, out, err = alledge(env, "classify", tmp_path / "a.jpg", "--db", db)
    assert code == exitcodes.USAGE and str(db) in one_error_line(err)
    assert db.read_bytes() == before and not Path(f"{db}-wal").exists()


def test_history_shows_odd_rows_and_says_when_it_shows_only_the_newest(env, tmp_path):
    db = tmp_path / "r.db"
    log = ResultsLog(db)
    for i in range(25):
        log.record({"label": "Pro", "probabilities": {"Pro": 0.9}, "latency_ms": 2.0},
                   source=f"{i}.jpg")
    log.record({"status": "error", "label": None, "probabilities": None}, source="bad.jpg")
    log.conn.execute("UPDATE results SET probabilities = 'not json', latency_ms = NULL "
                     "WHERE id = 3")
    log.close()
    code, out, err = alledge(env, "history", "--db", db)
    lines = out.splitlines()
    assert code == 0 and err == "" and len(lines) == 21
    assert "error" in lines[0] and "bad.jpg" in lines[0]
    assert lines[-1] == "(showing the newest 20 of 26 results; --limit N for more)"
    code, out, _ = alledge(env, "history", "--db", db, "--limit", "100", "--json")
    rows = records(out)
    assert code == 0 and len(rows) == 26 and rows[0]["status"] == "error"
    assert rows[-3]["probabilities"] is None and rows[-3]["latency_ms"] is None


# --- capture ---------------------------------------------------------------------------

def test_capture_folder_reports_bad_files_and_logs_file_names(env, tmp_path, good_jpeg):
    folder = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caps\xff")))
    folder.mkdir()
    (folder / "1.jpg").write_bytes(good_jpeg)
    (folder / "2.jpg").write_bytes(b"not an image")
    (folder / "3.jpg").write_bytes(damaged_scan(good_jpeg))
    os.mkfifo(folder / "4.jpg")
    (folder / "5.jpg").write_bytes(good_jpeg)
    db = tmp_path / "r.db"
    code, out, err = alledge(env, "capture", "--source", folder, "--json", "--db", db,
                             "--min-sharpness", "0", timeout=30)
    assert code == exitcodes.SOME_FAILED and err == ""
    shown = f"{tmp_path}/caps\\xff"
    rs = records(out)
    assert [r.get("source") for r in rs] == [f"{shown}/{n}.jpg" for n in range(1, 6)]
    assert [(judged(r), "error" in r) for r in rs] == [(True, False)] + [(False, True)] * 3 \
        + [(True, False)]
    assert {f"{shown}/1.jpg", f"{shown}/5.jpg"} <= set(logged_sources(db))


def test_capture_source_text_file_named_jpg_is_one_line(env, tmp_path):
    (tmp_path / "t.jpg").write_text("hello\n")
    code, out, err = alledge(env, "capture", "--source", tmp_path / "t.jpg", "--no-log")
    assert code == exitcodes.NO_CAMERA and out == ""
    assert "not a JPEG or PNG image" in one_error_line(err)


def test_capture_source_text_file_named_avi_is_one_line_without_ffmpeg_noise(env, tmp_path):
    (tmp_path / "t.avi").write_text("hello\n")
    code, _, err = alledge(env, "capture", "--source", tmp_path / "t.avi", "--no-log")
    assert code == exitcodes.NO_CAMERA and "cannot open" in one_error_line(err)


# --- tampered bundles ------------------------------------------------------------------

def tampered(tmp_path, what, source=DEFAULT_BUNDLE):
    """A copy of a bundle (the default one unless given) with its manifest changed as an
    attacker or an accident would: rewritten by json.dump(indent=1) (any key order or
    spacing is fine)."""
    b = shutil.copytree(source, tmp_path / "bundle")
    m_path = b / "manifest.json"
    m = json.loads(m_path.read_text())
    if what == "nested":
        m_path.write_text("[" * 200000 + "]" * 200000)
        return b
    if what == "symlink":
        os.rename(b / "model.tflite", tmp_path / "outside.tflite")
        os.symlink(tmp_path / "outside.tflite", b / "model.tflite")
        return b
    edits = {
        "classes": lambda: m.update(classes=m["classes"][::-1]),
        "kind": lambda: m.update(kind="svm" if m["kind"] == "cnn" else "cnn"),
        "version-true": lambda: m.update(format_version=True),
        "version-float": lambda: m.update(format_version=1.0),
        "classes-5": lambda: m.update(classes=m["classes"] + ["Other"]),
        "classes-duplicate": lambda: m.update(classes=["Pro"] * 4),
        "classes-empty": lambda: m.update(classes=["", "Early", "Pre", "Pro"]),
        "dotdot": lambda: m.update(model_file="../model.tflite"),
        "size-bool": lambda: m["input"].update(size=True),
        # an attacker who recomputes the integrity digest still meets the other checks
        "classes-resealed": lambda: m.update(seal({**m, "classes": m["classes"][::-1]})),
        "kind-resealed": lambda: m.update(seal({**m, "kind": "svm" if m["kind"] == "cnn"
                                                else "cnn"})),
        "classes-5-resealed": lambda: m.update(seal({**m, "classes": m["classes"] + ["X"]})),
        "svm-null-resealed": lambda: m.update(seal({**m, "kind": "cnn", "svm_file": None,
                                                    "output": {**m["output"],
                                                               "kind": "probabilities"}})),
    }
    edits[what]()
    m_path.write_text(json.dumps(m, indent=1))
    return b


@pytest.mark.parametrize("what", [
    "classes", "kind", "version-true", "version-float", "nested", "symlink", "classes-5",
    "classes-duplicate", "classes-empty", "dotdot", "size-bool", "classes-resealed",
    "kind-resealed", "classes-5-resealed", "svm-null-resealed"])
def test_a_tampered_bundle_is_refused_in_one_line_with_exit_3(env, tmp_path, good_jpeg, what,
                                                              tmp_path_factory):
    # an SVM bundle turned into a CNN needs an SVM bundle to start from (the default is a CNN)
    source = svm_bundle(tmp_path_factory)[0] if what == "svm-null-resealed" else DEFAULT_BUNDLE
    bundle = tampered(tmp_path, what, source)
    (tmp_path / "a.jpg").write_bytes(good_jpeg)
    code, out, err = alledge(env, "classify", tmp_path / "a.jpg", "--bundle", bundle,
                             "--db", tmp_path / "r.db")
    assert code == exitcodes.BAD_BUNDLE and out == ""
    one_error_line(err)
    assert not (tmp_path / "r.db").exists() or ResultsLog(tmp_path / "r.db").recent() == []


def test_the_untampered_copy_classifies(env, tmp_path, good_jpeg):
    shutil.copytree(DEFAULT_BUNDLE, tmp_path / "bundle")
    (tmp_path / "a.jpg").write_bytes(good_jpeg)
    code, out, _ = alledge(env, "classify", tmp_path / "a.jpg", "--bundle", tmp_path / "bundle",
                           "--json", "--no-log")
    assert code == 0 and judged(records(out)[0])


def test_a_regular_file_mode_is_what_the_bundle_checks(tmp_path):
    # the symlink case above is refused for being a link; a FIFO is refused as non-regular
    from alledge.device.bundle import BundleError, load_bundle
    b = shutil.copytree(DEFAULT_BUNDLE, tmp_path / "bundle")
    (b / "ood.npz").unlink()
    os.mkfifo(b / "ood.npz")
    assert stat.S_ISFIFO(os.lstat(b / "ood.npz").st_mode)
    with pytest.raises(BundleError, match="not a regular file"):
        load_bundle(b)
