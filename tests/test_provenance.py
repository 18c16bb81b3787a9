"""Every result file says what made it: the command, the git commit, the machine and the date.

The project's writers (bench --json, data check --json, evaluate --out, train's model.json and
metrics.json, table3, report) all take `alledge.device.provenance.provenance()`; files written
before commits were recorded carry the commit from `git log`, labelled as such.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from alledge.device.provenance import provenance

RESULTS = Path(__file__).resolve().parent.parent / "results"
KEYS = ("command", "commit", "machine", "date")


def _provenance_keys(obj, depth=0, found=None):
    """{key: value} of every dict key within three levels (lists: their first item)."""
    found = {} if found is None else found
    if depth > 3:
        return found
    if isinstance(obj, dict):
        for k, v in obj.items():
            if str(k).lower() in KEYS and v not in (None, "", {}, []):
                found.setdefault(str(k).lower(), v)
            _provenance_keys(v, depth + 1, found)
    elif isinstance(obj, list) and obj:
        _provenance_keys(obj[0], depth + 1, found)
    return found


def _result_files():
    return sorted(RESULTS.rglob("*.json"))


def test_results_hold_json_files():
    assert len(_result_files()) >= 30


@pytest.mark.parametrize("path", _result_files(), ids=lambda p: str(p.relative_to(RESULTS)))
def test_every_result_json_names_command_commit_machine_and_date(path):
    found = _provenance_keys(json.loads(path.read_text()))
    missing = [k for k in KEYS if k not in found]
    assert not missing, f"{path} lacks {', '.join(missing)}"
    commit = found["commit"]
    assert isinstance(commit, str) and len(commit) == 40 and int(commit, 16) >= 0, commit
    known = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=RESULTS.parent,
                           capture_output=True)
    assert known.returncode == 0, f"{path}: commit {commit} is not in this repository"


def test_provenance_names_this_checkout_and_machine():
    p = provenance(command="alledge test")
    assert p["command"] == "alledge test"
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=RESULTS.parent).stdout.strip()
    assert p["commit"] == head and isinstance(p["dirty"], list)
    assert p["machine"]["cores"] >= 1 and p["machine"]["python"]
    assert p["runtime"]["numpy"] and p["date"].endswith("+00:00")


def test_the_device_provenance_never_imports_tensorflow():
    code = ("import sys; from alledge.device.provenance import provenance; provenance(); "
            "print(' '.join(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'sklearn')))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ""


def alledge(*args):
    """`alledge ARGS` in a fresh process (its command line is what provenance records)."""
    return subprocess.run([sys.executable, "-m", "alledge.device.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_bench_json_carries_provenance():
    r = alledge("bench", "--runs", "1", "--json")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)["provenance"]
    assert p["command"] == "alledge bench --runs 1 --json"
    assert all(p[k] for k in KEYS) and "bench" in p["command"]
    assert p["runtime"]["interpreter"].startswith(json.loads(r.stdout)["machine"]["runtime"]
                                                  .split()[0])


def test_data_check_json_carries_provenance(synth_data):
    r = alledge("data", "check", synth_data, "--json")
    assert r.returncode in (0, 1), r.stderr
    p = json.loads(r.stdout)["provenance"]
    assert all(p[k] for k in KEYS) and p["command"].startswith("alledge data check ")


def test_evaluate_writes_its_figures_with_provenance(synth_data, tmp_path):
    """`alledge evaluate` on a synthetic split: the file names bundle, split and provenance."""
    rows = ["path,label,label_id,subset,sha256"]
    for i, c in enumerate(("Benign", "Early", "Pre", "Pro")):
        for f in sorted((synth_data / c).iterdir())[:2]:
            rows.append(f"{c}/{f.name},{c},{i},test,x")
    split = tmp_path / "split.csv"
    split.write_text("\n".join(rows) + "\n")
    out = tmp_path / "eval" / "out.json"
    r = alledge("evaluate", "--data", synth_data, "--split", split, "--out", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["n"] == 8 and d["answered"] + 0 == round(d["answered_fraction"] * 8)
    assert sum(map(sum, d["confusion"])) == 8
    assert d["correct"] == sum(d["per_class"][c]["correct"] for c in d["per_class"])
    from alledge.device.bundle import DEFAULT_BUNDLE, load_bundle
    assert d["bundle"] == load_bundle(DEFAULT_BUNDLE).id
    assert all(d["provenance"][k] for k in KEYS)
    assert d["provenance"]["command"].startswith("alledge evaluate --data ")
