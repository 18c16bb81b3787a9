"""The device part on a Raspberry Pi's OS and CPU architecture, emulated: `make test-pi`.

    .venv/bin/python tests/pi/emulated_run.py [--n 60] [--out results/pi/emulated-aarch64.json]

1. A Debian bookworm arm64 userland (tests/pi/rootfs.sh, cached in ~/.cache/alledge/pi-rootfs).
2. alledge as committed (HEAD, built into a wheel from `git archive`) with the `device` extra,
   installed from aarch64 CPython 3.11 wheels only (`pip install --target --platform ...`),
   and the same wheel with x86_64 wheels for the reference run here.
3. Under qemu-aarch64-static: `uname -m`, `alledge info`, `alledge classify --json` on the
   first n/4 test images of each class of the paper split, and `alledge bench`.
4. The same classify here (x86_64, LiteRT 2.x), on the same wheel; agreement and the largest
   probability difference between the two go into --out with command, commit, machine, date.

qemu translates every arm64 instruction: its timings say nothing about a Pi's, so the bench
figures are kept only as proof the command runs, under a key that says so.
"""
import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "all-leukemia" / "Original"
SPLIT = REPO / "results" / "splits" / "paper.csv"
CLASSES = ("Benign", "Early", "Pre", "Pro")
# The glibc levels a Pi's Bookworm (glibc 2.36) can load; pip wants each named.
PLATFORMS = [f"manylinux_2_{v}_aarch64" for v in (17, 28, 31, 34, 35, 36)] + ["manylinux2014_aarch64"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="test images, n/4 of each class")
    ap.add_argument("--rootfs", default=os.environ.get(
        "ALLEDGE_PI_ROOTFS", str(Path.home() / ".cache/alledge/pi-rootfs")))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default=str(REPO / "results/pi/emulated-aarch64.json"))
    args = ap.parse_args()

    root = Path(args.rootfs)
    run(["bash", str(REPO / "tests/pi/rootfs.sh"), str(root)])
    images = test_images(Path(args.data), args.n)
    with tempfile.TemporaryDirectory(prefix="alledge-pi-") as tmp:
        tmp = Path(tmp)
        wheel = build_wheel(tmp)
        site = install(wheel, tmp / "site-aarch64", aarch64=True)
        site_x86 = install(wheel, tmp / "site-x86_64", aarch64=False)
        pi = Emulated(root, site, tmp / "home")
        machine = pi.run([str(root / "bin/uname"), "-m"]).strip()
        info = json.loads(pi.alledge("info", "--json"))
        print(f"emulated: {machine}, python {info['python']}, numpy {info['numpy']}, "
              f"opencv {info['opencv']}, runtime {info['runtime']}", flush=True)
        emulated = rows(pi.alledge("classify", "--json", "--no-log", *images))
        bench = json.loads(pi.alledge("bench", "--runs", "3", "--threads", "1", "--json"))
        # the same wheel here: -S keeps this venv's packages (and its editable alledge,
        # which may hold uncommitted changes) out, so both sides run exactly HEAD
        x86_env = dict(clean_env(tmp / "home-x86"), PYTHONPATH=str(site_x86))
        native = rows(subprocess.run(
            [sys.executable, "-S", "-m", "alledge.device.cli", "classify", "--json",
             "--no-log", *images], env=x86_env, capture_output=True, text=True,
            check=True).stdout)
        native_rt = subprocess.run(
            [sys.executable, "-S", "-c", "from alledge.device.runtime import runtime; "
             "m, v, *_ = runtime(); print(m, v)"], env=x86_env, capture_output=True,
            text=True, check=True).stdout.strip()
    agree, diff = compare(emulated, native, images)
    result = {
        "machine": machine,
        "python": info["python"],
        "runtime": f"{info['runtime']['module']} {info['runtime']['version']}",
        "numpy": info["numpy"], "opencv": info["opencv"],
        "bundle": info["bundle"].get("id"),
        "n_images": len(images),
        "images": f"paper split test subset, first {args.n // 4} of each class in "
                  f"{SPLIT.relative_to(REPO)} order",
        "answered": sum("probabilities" in r for r in emulated.values()),
        "top1_agreement": agree,
        "max_abs_prob_diff": diff,
        "reference": {"machine": platform.machine(), "python": platform.python_version(),
                      "runtime": native_rt},
        "emulation": {"emulator": qemu_version(), "rootfs": "Debian bookworm arm64 "
                      "(tests/pi/rootfs.sh)", "host": platform.platform()},
        "bench_under_emulation": {
            "note": "qemu user-mode emulation on an x86_64 host: NOT a Raspberry Pi timing",
            "stages": bench["stages"]},
        "command": " ".join(shlex.quote(a) for a in
                            [".venv/bin/python", "tests/pi/emulated_run.py", *sys.argv[1:]]),
        "commit": git("rev-parse", "HEAD"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{out}: {machine}, {len(images)} images, top-1 agreement {agree}, "
          f"max |p_arm64 - p_x86| {diff}")
    if agree < 0.99:
        sys.exit(f"error: aarch64 and x86_64 disagree on {1 - agree:.1%} of the images")


def test_images(data, n):
    """The first n/4 test images of each class, in the split file's order (deterministic)."""
    per_class = {c: [] for c in CLASSES}
    with open(SPLIT) as f:
        for r in csv.DictReader(f):
            if r["subset"] == "test" and len(per_class[r["label"]]) < n // 4:
                per_class[r["label"]].append(str(data / r["path"]))
    images = [p for c in CLASSES for p in per_class[c]]
    missing = [p for p in images if not Path(p).is_file()]
    if missing:
        sys.exit(f"error: {len(missing)} test images missing, e.g. {missing[0]} (--data DIR)")
    return images


def build_wheel(tmp):
    """alledge as committed (HEAD) in a wheel, so the result's commit names exactly what ran."""
    src, wheels = tmp / "src", tmp / "wheels"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(src)])
    return next(wheels.glob("alledge-*.whl"))


def install(wheel, site, aarch64):
    """wheel[device] and its requirements, wheels only, into the folder `site`: for aarch64
    CPython 3.11 (what pip on a Pi would pick), or for this machine."""
    target = ([a for p in PLATFORMS for a in ("--platform", p)]
              + ["--python-version", "3.11", "--implementation", "cp"]) if aarch64 else []
    run([sys.executable, "-m", "pip", "install", "-q", "--target", str(site), *target,
         "--only-binary=:all:", f"{wheel}[device]"])
    names = sorted(p.name.removesuffix(".dist-info") for p in site.glob("*.dist-info"))
    print(f"{'aarch64' if aarch64 else 'x86_64'} site: " + ", ".join(names), flush=True)
    return site


class Emulated:
    """Commands in the arm64 userland: qemu finds the loader and libraries under -L root."""

    def __init__(self, root, site, home):
        self.root = root
        self.env = dict(clean_env(home), PYTHONPATH=str(site), PYTHONNOUSERSITE="1")

    def run(self, argv):
        p = subprocess.run(["qemu-aarch64-static", "-L", str(self.root), *argv], env=self.env,
                           capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"error: emulated {' '.join(argv[:4])} ... exit {p.returncode}:\n"
                     f"{p.stderr[-2000:]}")
        return p.stdout

    def alledge(self, *args):
        return self.run([str(self.root / "usr/bin/python3.11"), "-m", "alledge.device.cli",
                         *args])


def clean_env(home):
    """No bundle or database of the user's: the default bundle, a throwaway home."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ALLEDGE_BUNDLE", "ALLEDGE_DB", "PYTHONPATH", "PYTHONHOME")}
    env["ALLEDGE_HOME"] = str(home)
    return env


def rows(stdout):
    out = {}
    for line in stdout.splitlines():
        r = json.loads(line)
        if "error" in r and r.get("status") in (None, "error"):
            sys.exit(f"error: {r.get('path')}: could not be classified: {r['error']}")
        out[r["path"]] = r
    return out


def compare(a, b, images):
    """(fraction where both give the same answer, largest |p_a - p_b| where both give
    probabilities, 6 digits). An answer is the status and the top-1 label: a refusal (out
    of domain) on one machine and a label on the other is a disagreement."""
    if sorted(a) != sorted(images) or sorted(b) != sorted(images):
        sys.exit("error: the two runs did not classify the same images")
    answer = lambda r: (r.get("status", "ok"), r.get("label"))  # noqa: E731
    same = sum(answer(a[p]) == answer(b[p]) for p in images)
    diffs = [abs(a[p]["probabilities"][c] - b[p]["probabilities"][c]) for p in images
             if "probabilities" in a[p] and "probabilities" in b[p] for c in CLASSES]
    return round(same / len(images), 4), round(max(diffs, default=0.0), 6)


def qemu_version():
    p = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True)
    return p.stdout.splitlines()[0] if p.stdout else "qemu-aarch64-static"


def git(*args):
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def run(argv):
    subprocess.run(argv, check=True)


if __name__ == "__main__":
    main()
