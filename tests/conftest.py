"""Shared fixtures. `real_data` is the Kaggle set (ALLEDGE_DATA), `synth_data` a drawn one.

Tests that use `real_data` are marked `realdata` automatically (`pytest -m "not realdata"`
leaves them out). Without ALLEDGE_DATA they skip, except under CI=true, where they fail.
"""
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from alledge.device.cli import main


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "real_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)


@pytest.fixture(scope="session")
def real_data():
    """The folder holding Benign/ Early/ Pre/ Pro/ of the real dataset (Path)."""
    value = os.environ.get("ALLEDGE_DATA", "")
    path = Path(value) if value else None
    if path is None or not path.is_dir():
        why = (f"ALLEDGE_DATA={value!r} is not a folder" if value
               else "ALLEDGE_DATA is not set")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}: the real dataset is required under CI=true")
        pytest.skip(f"{why}: real-data test skipped")
    from alledge.train.dataset import resolve_root
    return resolve_root(path)  # ALLEDGE_DATA may also name the parent holding Original/


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """A synthetic smear set, 30 images per class, seed 0 (read-only: copy before changing)."""
    from alledge.train.synth import write_synth
    out = tmp_path_factory.mktemp("synth")
    write_synth(out, per_class=30, seed=0)
    return out


@pytest.fixture
def env(tmp_path):
    """A clean environment for a subprocess: no results log, bundle or trust store from the
    machine; its own home and config folders."""
    e = {k: v for k, v in os.environ.items()
         if k not in ("ALLEDGE_BUNDLE", "ALLEDGE_DB", "ALLEDGE_TRUST")}
    e.update(ALLEDGE_HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    return e


@pytest.fixture
def run_cli():
    """run_cli(*args) -> click Result of `alledge ARGS` (stdout and stderr kept apart)."""
    try:
        runner = CliRunner(mix_stderr=False)  # click 8.1
    except TypeError:
        runner = CliRunner()                  # click >= 8.2 keeps them apart anyway

    def run(*args):
        return runner.invoke(main, [str(a) for a in args])
    return run


@pytest.fixture
def cli_ok(run_cli):
    """cli_ok(*args) -> stdout of `alledge ARGS`, which must succeed."""
    def run(*args):
        r = run_cli(*args)
        assert r.exit_code == 0, (r.stderr or r.output)[-2000:]
        return r.stdout
    return run


@pytest.fixture(scope="session")
def trained(tmp_path_factory, synth_data):
    """A split of the synthetic set and three small trained model directories
    (Improved CNN, random-weights B0 at 64 px + SVM, colour baseline), shared by the
    training and conversion tests."""
    from alledge.train.fit import fit_baseline_model, fit_cnn_model, fit_svm_model
    from alledge.train.split import make_split, read_split, to_csv
    root = tmp_path_factory.mktemp("trained")
    os.environ["ALLEDGE_CACHE"] = str(root / "cache")
    rows, _ = make_split(synth_data)
    split = root / "split.csv"
    split.write_text(to_csv(rows))
    rows, split_id = read_split(split)
    models = root / "models"
    fit_cnn_model(synth_data, rows, split_id, models / "improved-cnn", epochs=4, patience=4,
                  split_file=str(split))
    fit_svm_model(synth_data, rows, split_id, models / "efficientnet-b0-svm", "efficientnet-b0",
                  weights="none", input_size=64, cv=3, split_file=str(split))
    fit_baseline_model(synth_data, rows, split_id, models / "colour-baseline", cv=3,
                       split_file=str(split))
    return {"data": synth_data, "split": split, "split_id": split_id, "models": models,
            "rows": rows}


# --- measured floors -------------------------------------------------------------------------
# A test's floor or tolerance is a committed measurement plus or minus a stated margin. The
# measurements live in results/measurements/<test module>.json ({"values": {name: value},
# "provenance": ...}); `make measure` (ALLEDGE_RECORD_MEASUREMENTS=1) re-measures them by
# running the same tests, which then record what they measured before they assert.
MEASUREMENTS = Path(__file__).resolve().parent.parent / "results" / "measurements"
_recorded = {}


def _recording():
    return os.environ.get("ALLEDGE_RECORD_MEASUREMENTS", "") == "1"


@pytest.fixture
def measured(request):
    """measured(name, value) -> the committed value of measurement `name` of this test module.

    With ALLEDGE_RECORD_MEASUREMENTS=1, `value` is recorded first (written at the session's
    end) and returned. A missing measurement is a failure, never a skip.
    """
    module = Path(request.node.fspath).stem

    def get(name, value):
        if _recording():
            _recorded.setdefault(module, {})[name] = value
            return value
        path = MEASUREMENTS / f"{module}.json"
        values = json.loads(path.read_text())["values"] if path.is_file() else {}
        if name not in values:
            pytest.fail(f"no measurement {name!r} in {path}: run `make measure`")
        return values[name]
    return get


def pytest_sessionfinish(session, exitstatus):
    if not (_recording() and _recorded):
        return
    import shlex
    import sys
    from alledge.device.fileio import atomic_write_json
    from alledge.device.provenance import provenance
    MEASUREMENTS.mkdir(parents=True, exist_ok=True)
    command = ("ALLEDGE_RECORD_MEASUREMENTS=1 pytest "
               + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    for module, values in _recorded.items():
        path = MEASUREMENTS / f"{module}.json"
        old = json.loads(path.read_text()) if path.is_file() else {"values": {}}
        out = {"values": {**old["values"], **values}, "provenance": provenance(command=command)}
        kept = sorted(set(old["values"]) - set(values))
        if kept:  # values this run did not re-measure keep the provenance they came with
            earlier = [e for e in old.get("earlier", []) if set(e["values"]) & set(kept)]
            earlier.append({"values": kept, "provenance": old["provenance"]})
            out["earlier"] = earlier
        atomic_write_json(path, out)
