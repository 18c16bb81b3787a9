"""What made a result file: the command, the git commit, the machine, the runtimes, the date.

Every JSON the project writes into results/ carries `provenance()` under the key
"provenance", so a figure can be traced to the code and the machine that measured it.
The device layer holds it (the Pi's `bench` and `evaluate` write results too); it never
imports TensorFlow: a runtime is reported only when the process has already loaded it.
"""
import datetime
import os
import platform
import shlex
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# distributions whose versions a result may depend on, when installed
PACKAGES = ("alledge", "numpy", "opencv-python-headless", "opencv-python", "ai-edge-litert",
            "tflite-runtime", "scikit-learn", "keras", "tensorflow", "tensorflow-cpu")


def provenance(command=None, cwd=None):
    """{command, commit, dirty, machine, runtime, date} of the running process.

    command: the command line as a string (default: `alledge ARGS` of this process, or
    `python -m MODULE ARGS` / `python SCRIPT ARGS` when not run as the alledge CLI).
    """
    return {
        "command": command or command_line(),
        **git_state(cwd),
        "machine": machine(),
        "runtime": runtime_versions(),
        "date": now(),
    }


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def command_line(argv=None):
    argv = list(sys.argv if argv is None else argv)
    prog = Path(argv[0]).name if argv else ""
    args = " ".join(shlex.quote(a) for a in argv[1:])
    if prog == "alledge" or prog == "cli.py":
        head = "alledge"
    elif prog == "__main__.py" or not prog:
        head = "python -m ?"
    else:
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        head = f"python -m {spec.name}" if spec and spec.name else f"python {argv[0]}"
        if spec and spec.name == "alledge.device.cli":
            head = "alledge"
    return f"{head} {args}".strip()


def git_state(cwd=None):
    """{commit, dirty} of the checkout the code runs from; commit None outside a checkout.

    `dirty` lists the modified tracked files (a result made from uncommitted code says so).
    """
    where = cwd or Path(__file__).resolve().parent
    try:
        commit = _git(where, "rev-parse", "HEAD").strip()
        status = _git(where, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    dirty = sorted(line[3:].split(" -> ")[-1] for line in status.splitlines() if line.strip())
    return {"commit": commit, "dirty": dirty}


def _git(cwd, *args):
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20,
                       check=True)
    return r.stdout.rstrip("\n")


def machine():
    """CPU, cores, memory, OS and Python of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        mem_gib = None
    return {"cpu": cpu, "arch": platform.machine(), "cores": os.cpu_count(),
            "memory_gib": mem_gib, "system": platform.platform(),
            "python": platform.python_version()}


def runtime_versions():
    """Installed versions of the packages a result may depend on, and the TFLite
    interpreter this process has loaded (if any: it is never imported here)."""
    out = {}
    for dist in PACKAGES:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    rt = sys.modules.get("alledge.device.runtime")
    if rt is not None and rt.runtime.cache_info().currsize:
        name, ver, _, _ = rt.runtime()
        out["interpreter"] = f"{name} {ver}"
    return out
