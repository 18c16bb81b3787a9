"""The `alledge` command as a whole: one group, lazy desktop commands, one-way dependencies."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alledge.device import cli, exitcodes

REPO = Path(__file__).resolve().parent.parent
DESIGN_COMMANDS = {"data", "train", "convert", "report", "classify", "capture", "history",
                   "bench", "info", "keys", "gate", "serve", "evaluate", "stress", "matrix", "scale",
                   "calibrate"}


def test_help_lists_every_command_of_the_design(run_cli):
    r = run_cli("--help")
    assert r.exit_code == 0
    listed = {line.split()[0] for line in r.output.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed == DESIGN_COMMANDS


def test_version(run_cli):
    r = run_cli("--version")
    assert r.exit_code == 0 and "0." in r.output


def test_data_subcommands(run_cli):
    r = run_cli("data", "--help")
    assert r.exit_code == 0
    for name in ("check", "split", "synth"):
        assert name in r.output


def test_unknown_command_is_a_usage_error(run_cli):
    r = run_cli("frobnicate")
    assert r.exit_code == exitcodes.USAGE


def test_missing_extra_is_one_line_and_exit_2(run_cli, monkeypatch):
    monkeypatch.setitem(cli.LAZY_COMMANDS, "data", ("alledge_no_such_module", "data", "train"))
    r = run_cli("data", "check", ".")
    assert r.exit_code == exitcodes.USAGE
    assert r.output.strip().splitlines() == [
        "error: 'alledge data' needs the train extra (alledge_no_such_module is not "
        "installed): pip install 'alledge[train]'"]


def test_exit_codes_are_distinct():
    codes = {k: v for k, v in vars(exitcodes).items() if k.isupper()}
    assert codes["OK"] == 0 and codes["SOME_FAILED"] == 1 and codes["USAGE"] == 2
    assert len(set(codes.values())) == len(codes)


def test_console_script_runs():
    script = Path(sys.executable).with_name("alledge")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "alledge.device.cli"]
    r = subprocess.run([*cmd, "data", "check", "/no/such/folder"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == exitcodes.USAGE
    assert r.stderr.strip() == "error: /no/such/folder is not a folder"


def loaded_after(code):
    """Names of the heavy or desktop modules loaded after running `code` in a fresh Python."""
    probe = (code + "\nimport sys\nprint(' '.join(m for m in sys.modules if "
             "m.split('.')[0] in ('tensorflow', 'keras', 'sklearn', 'torch') "
             "or m.startswith(('alledge.train', 'alledge.convert'))))\n")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_device_imports_no_tensorflow_and_nothing_desktop():
    assert loaded_after("import alledge.device.cli, alledge.device.preprocess, "
                        "alledge.device.images") == set()


def test_help_imports_no_tensorflow():
    """`alledge --help` lists the desktop commands without loading TensorFlow."""
    loaded = loaded_after("from alledge.device.cli import main\n"
                          "try:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert not {m for m in loaded if m.split(".")[0] in ("tensorflow", "keras", "torch")}


def imports_of(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield ("." * node.level) + (node.module or "")


@pytest.mark.parametrize("path", sorted((REPO / "device").rglob("*.py")),
                         ids=lambda p: p.relative_to(REPO).as_posix())
def test_device_never_imports_train_convert_or_tensorflow(path):
    for name in imports_of(path):
        assert not name.startswith(("alledge.train", "alledge.convert", "..train",
                                    "..convert", "tensorflow", "keras", "sklearn")), name


@pytest.mark.parametrize("path", sorted((REPO / "train").rglob("*.py")),
                         ids=lambda p: p.relative_to(REPO).as_posix())
def test_train_never_imports_convert(path):
    """Dependencies run one way, convert -> train -> device: train may import only device."""
    for name in imports_of(path):
        assert not name.startswith(("alledge.convert", "..convert")), name


@pytest.mark.parametrize("command", [["convert", "model", "--out", "b", "--quant", "int8"],
                                     ["gate", "b", "--data", "d", "--split", "s.csv"]])
def test_both_kinds_of_white_point_at_once_is_a_usage_error(run_cli, command):
    r = run_cli(*command, "--white-point", "--white-point-overexposed")
    assert r.exit_code == exitcodes.USAGE
    assert r.output.strip().splitlines()[-1].startswith("error: --white-point and")
