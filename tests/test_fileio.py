"""alledge.device.fileio: the one atomic write."""
import json
import os

import numpy as np
import pytest

from alledge.device import fileio


def test_atomic_writes_replace_and_leave_no_temporary(tmp_path):
    p = tmp_path / "a.json"
    fileio.atomic_write_json(p, {"x": 1})
    assert json.loads(p.read_text()) == {"x": 1} and p.read_text().endswith("}\n")
    fileio.atomic_write_text(p, "two")
    assert p.read_text() == "two"
    fileio.atomic_write_bytes(p, b"\x00\xff")
    assert p.read_bytes() == b"\x00\xff"
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


def test_mode_is_not_mkstemps_private_one(tmp_path):
    p = tmp_path / "m.txt"
    fileio.atomic_write_text(p, "x")
    assert p.stat().st_mode & 0o044  # readable by others under the usual umask
    os.chmod(p, 0o600)
    fileio.atomic_write_text(p, "y")
    assert p.stat().st_mode & 0o777 == 0o600  # an existing file keeps its mode


def test_failed_write_keeps_old_file(tmp_path):
    p = tmp_path / "w.npy"
    fileio.atomic_write_bytes(p, b"old")
    with pytest.raises(RuntimeError):
        with fileio.atomic_writer(p) as f:
            f.write(b"half")
            raise RuntimeError("interrupted")
    assert p.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["w.npy"]


def test_writer_takes_numpy(tmp_path):
    p = tmp_path / "a.npz"
    with fileio.atomic_writer(p) as f:
        np.savez(f, w=np.arange(3))
    assert np.load(p)["w"].tolist() == [0, 1, 2]


def test_atomic_path_for_writers_that_take_a_name(tmp_path):
    p = tmp_path / "w.weights.h5"
    with fileio.atomic_path(p, suffix=".weights.h5") as tmp:
        assert tmp.name.endswith(".weights.h5") and tmp.parent == tmp_path
        tmp.write_bytes(b"h5")
    assert p.read_bytes() == b"h5" and sorted(os.listdir(tmp_path)) == ["w.weights.h5"]
