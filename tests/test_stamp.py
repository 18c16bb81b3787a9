"""convert.stamp: figures printed by older code get the code's commit and a provenance."""
import json
import subprocess
from pathlib import Path

import pytest

from alledge.convert.stamp import main, stamp

ROOT = Path(__file__).resolve().parent.parent


def test_figures_kept_and_the_measuring_commit_named(tmp_path):
    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=ROOT,
                           capture_output=True, text=True).stdout.split()[0]
    src = tmp_path / "raw.json"
    src.write_text(json.dumps({"bundle": "b@1", "stages": {"invoke": {"median_ms": 4.6}}}))
    main([str(src), str(tmp_path / "out.json"), first[:7], "alledge bench --json"])
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["stages"] == {"invoke": {"median_ms": 4.6}} and out["code_commit"] == first
    assert out["provenance"]["command"] == "alledge bench --json"
    assert out["machine"] == out["provenance"]["machine"] and out["date"]


def test_an_unknown_commit_is_refused():
    with pytest.raises(ValueError, match="not a commit"):
        stamp({}, "0" * 40, "x", cwd=ROOT)
