"""device/pi/setup.sh, read by running it with --dry-run: the plan a Pi would carry out.

The script runs nothing with --dry-run (every command goes through one `run` helper that only
prints then), so its plan can be checked here, on x86 without apt, camera or Coral.
"""
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SETUP = REPO / "device" / "pi" / "setup.sh"
UNIT = REPO / "device" / "pi" / "alledge-capture.service"


def plan(*args, python="python3"):
    p = subprocess.run(["bash", str(SETUP), "--dry-run", "--venv", "/opt/av", "--python", python,
                        *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    commands = [line[2:] for line in p.stdout.splitlines() if line.startswith("+ ")]
    return commands, p.stdout + p.stderr


def test_camera_module_plan():
    commands, _ = plan("--picam")
    assert any("apt-get install -y" in c and "python3-picamera2" in c for c in commands)
    # the venv must see apt's picamera2 and libcamera
    assert "python3 -m venv --system-site-packages /opt/av" in commands
    install = [c for c in commands if " -m pip install " in c and "[device]" in c]
    assert install == [f"/opt/av/bin/python -m pip install --only-binary=:all: {REPO}[device]"]
    assert "/opt/av/bin/alledge capture --camera picam --count 1 --no-log" in commands


def test_plain_plan_has_no_camera_and_no_system_site_packages():
    commands, _ = plan()
    assert "python3 -m venv /opt/av" in commands
    assert not any("picamera2" in c or "system-site-packages" in c for c in commands)
    assert not any("edgetpu" in c for c in commands)


def test_coral_comes_from_coral_apt_never_pycoral():
    commands, out = plan("--coral")
    assert any("install -y libedgetpu1-std" in c for c in commands)
    assert any("coral-edgetpu-stable main" in c and "signed-by=" in c for c in commands)
    assert not any("pycoral" in c for c in commands)


def test_service_fills_in_the_unit():
    commands, _ = plan("--picam", "--service")
    assert any("@VENV@|/opt/av" in c and "alledge-capture.service" in c for c in commands)
    assert "systemctl enable --now alledge-capture.service" in " ".join(commands)
    unit = UNIT.read_text()
    assert "ExecStart=@VENV@/bin/alledge capture --camera picam" in unit
    assert "User=@USER@" in unit and "Restart=on-failure" in unit


@pytest.mark.parametrize("version, says", [("3.13", "no ai-edge-litert or tflite-runtime wheel"),
                                           ("3.9", "needs CPython 3.11 or 3.12")])
def test_unsupported_python_is_told_what_to_do(tmp_path, version, says):
    fake = tmp_path / "python"  # answers the version question only
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
    _, out = plan(python=str(fake))
    assert says in out


def test_the_script_parses_and_explains_itself():
    assert subprocess.run(["bash", "-n", str(SETUP)]).returncode == 0
    p = subprocess.run(["bash", str(SETUP), "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "--dry-run" in p.stdout and "--picam" in p.stdout
