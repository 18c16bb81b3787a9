"""`alledge data split` on made data: the CSV format, stratification, duplicate grouping."""
import csv
import hashlib
import shutil
from collections import Counter

import cv2
import pytest

from alledge.device import CLASSES

pytest.importorskip("sklearn")

FIELDS = ["path", "label", "label_id", "subset", "sha256"]


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == FIELDS
        return list(reader)


def split(run_cli, data, out, *flags):
    r = run_cli("data", "split", data, "--out", out, *flags)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r


def test_csv_columns_labels_and_hashes(synth_data, tmp_path, run_cli):
    r = split(run_cli, synth_data, tmp_path / "s.csv")
    assert r.exit_code == 0, r.output
    rows = read_csv(tmp_path / "s.csv")
    assert len(rows) == 4 * 30
    for row in rows:
        assert row["path"] == f"{row['label']}/{(synth_data / row['path']).name}"
        assert int(row["label_id"]) == CLASSES.index(row["label"])
        assert row["subset"] in ("train", "test")
        assert row["sha256"] == hashlib.sha256((synth_data / row["path"]).read_bytes()).hexdigest()
    test = Counter(r["label"] for r in rows if r["subset"] == "test")
    assert test == {c: 9 for c in CLASSES}  # 30% of 30, every class
    assert "train: 21/21/21/21 = 84" in r.output and "test: 9/9/9/9 = 36" in r.output


def test_same_seed_same_split_other_seed_other_split(synth_data, tmp_path, run_cli):
    for name, seed in (("a", 42), ("b", 42), ("c", 7)):
        assert split(run_cli, synth_data, tmp_path / f"{name}.csv", "--seed", seed).exit_code == 0
    a, b, c = ((tmp_path / f"{n}.csv").read_bytes() for n in "abc")
    assert a == b and a != c


def test_test_size_option(synth_data, tmp_path, run_cli):
    assert split(run_cli, synth_data, tmp_path / "s.csv", "--test-size", "0.5").exit_code == 0
    rows = read_csv(tmp_path / "s.csv")
    assert sum(r["subset"] == "test" for r in rows) == 60


@pytest.fixture
def data_with_copies(synth_data, tmp_path):
    """The synth set plus 6 exact copies and 6 re-encoded (near-identical) copies."""
    data = tmp_path / "data"
    shutil.copytree(synth_data, data)
    for c in CLASSES[:3]:
        for i in range(2):
            src = data / c / f"synth-{c}-{i:03d}.jpg"
            shutil.copy(src, data / c / f"copy-{i}.jpg")
            bgr = cv2.imread(str(src))
            cv2.imwrite(str(data / c / f"resaved-{i}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 60])
    return data


def test_grouped_split_keeps_copies_together(data_with_copies, tmp_path, run_cli):
    r = split(run_cli, data_with_copies, tmp_path / "g.csv", "--group-duplicates")
    assert r.exit_code == 0, r.output
    assert "plain split:" in r.output
    rows = read_csv(tmp_path / "g.csv")
    side = {r["path"]: r["subset"] for r in rows}
    for c in CLASSES[:3]:
        for i in range(2):
            orig = f"{c}/synth-{c}-{i:03d}.jpg"
            assert side[orig] == side[f"{c}/copy-{i}.jpg"] == side[f"{c}/resaved-{i}.jpg"]
    by_sha = {}
    for row in rows:
        by_sha.setdefault(row["sha256"], set()).add(row["subset"])
    assert all(len(s) == 1 for s in by_sha.values())
    n_test = Counter(r["label"] for r in rows if r["subset"] == "test")
    n_all = Counter(r["label"] for r in rows)
    for c in CLASSES:  # still stratified, close to 30%
        assert abs(n_test[c] - 0.3 * n_all[c]) <= 3


def test_leak_figures_of_plain_split(data_with_copies, tmp_path, run_cli):
    """The printed leak counts agree with the plain split's CSV."""
    r = split(run_cli, data_with_copies, tmp_path / "p.csv")
    rows = read_csv(tmp_path / "p.csv")
    train = {row["sha256"] for row in rows if row["subset"] == "train"}
    exact = sum(row["sha256"] in train for row in rows if row["subset"] == "test")
    assert f"plain split: {exact} test images have an identical copy" in r.output


def test_unusable_files_are_skipped_and_named(synth_data, tmp_path, run_cli):
    data = tmp_path / "data"
    shutil.copytree(synth_data, data)
    (data / "Pro" / "zero.jpg").write_bytes(b"")
    r = split(run_cli, data, tmp_path / "s.csv")
    assert r.exit_code == 0
    assert "skipped Pro/zero.jpg: zero-byte file" in r.stderr
    assert "Pro/zero.jpg" not in (tmp_path / "s.csv").read_text()


@pytest.mark.parametrize("case", ["missing", "class-of-one", "too-few"])
def test_unusable_input_exits_2(synth_data, tmp_path, run_cli, case):
    data = tmp_path / "data"
    if case != "missing":
        shutil.copytree(synth_data, data)
        keep = 1 if case == "class-of-one" else 0
        for f in sorted((data / "Pre").iterdir())[keep:]:
            f.unlink()
        if case == "too-few":
            for c in CLASSES:
                for f in sorted((data / c).iterdir())[1:]:
                    f.unlink()
    r = split(run_cli, data, tmp_path / "s.csv")
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error: ")
    assert not (tmp_path / "s.csv").exists()
