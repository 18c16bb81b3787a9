#!/usr/bin/env bash
# Install the alledge device part on a Raspberry Pi (Raspberry Pi OS Bookworm, 64-bit).
# Read it first: it is the README's "Raspberry Pi install", step by step, and
#
#   device/pi/setup.sh --dry-run [options]      prints every command without running one.
#
# Options:
#   --venv DIR     the virtual environment (default ~/alledge-venv)
#   --picam        the camera module: apt's python3-picamera2, and a venv made with
#                  --system-site-packages so it can import it (pip cannot install it)
#   --coral        the Coral Edge TPU: libedgetpu1-std from Coral's apt repository; alledge
#                  loads libedgetpu.so.1 itself as a delegate (no pycoral: it has no wheels for
#                  these Pythons, and the PyPI name `pycoral` is an unrelated package)
#   --service      install device/pi/alledge-capture.service (unattended capture, systemd)
#   --python EXE   the interpreter for the venv (default python3; see below for 3.13)
#   --dry-run      print, do not run
#
# It installs the checkout it sits in (this folder's ../..), with the `device` extra, from
# wheels only: numpy, OpenCV, simplejpeg and ai-edge-litert all have aarch64 wheels for
# CPython 3.11 (Bookworm's) and 3.12; nothing is compiled on the Pi. On Python 3.13 (an
# image based on Debian trixie) there is no LiteRT wheel: the script stops and says what to do.
set -euo pipefail

venv="$HOME/alledge-venv"; picam=0; coral=0; service=0; python=python3; dry=0
while [ $# -gt 0 ]; do
    case "$1" in
        --venv) venv="$2"; shift ;;
        --picam) picam=1 ;;
        --coral) coral=1 ;;
        --service) service=1 ;;
        --python) python="$2"; shift ;;
        --dry-run) dry=1 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
checkout="$(cd "$(dirname "$0")/../.." && pwd)"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

# Every command goes through here: shown, then run (or only shown with --dry-run).
run() {
    echo "+ $*"
    [ "$dry" -eq 1 ] || "$@"
}
say() { echo; echo "== $*"; }
stop() { echo "error: $*" >&2; [ "$dry" -eq 1 ] || exit 1; }

say "1. Check the machine: 64-bit OS, a Python the wheels exist for"
machine="$(uname -m)"
[ "$machine" = aarch64 ] || stop "this is $machine, not aarch64: install Raspberry Pi OS (64-bit); \
the 32-bit OS has no LiteRT, OpenCV or numpy wheels"
pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)"
echo "python: $python $pyver"
case "$pyver" in
    3.11|3.12) ;;
    3.13) stop "Python 3.13 has no ai-edge-litert or tflite-runtime wheel for aarch64. Either
  make the venv from a Python 3.11/3.12 (e.g. 'uv python install 3.12', then
  --python \$(uv python find 3.12); the camera module then cannot be used, since
  python3-picamera2 is built for the system's 3.13), or use TensorFlow's own interpreter
  (pip install 'tensorflow>=2.18,<2.22' into the venv: about 1 GB; alledge falls back to
  tensorflow.lite). README: 'Python 3.12 and 3.13 on the Pi'." ;;
    *) stop "Python $pyver: the device part needs CPython 3.11 or 3.12 on a Pi" ;;
esac

say "2. System packages (apt)"
apt_packages=(python3-venv python3-pip)
[ "$picam" -eq 0 ] || apt_packages+=(python3-picamera2)
run $sudo apt-get update
run $sudo apt-get install -y "${apt_packages[@]}"

if [ "$coral" -eq 1 ]; then
    say "3. The Coral Edge TPU runtime, from Coral's apt repository"
    # Coral's signing key into its own keyring, used only for Coral's repository
    run $sudo mkdir -p /etc/apt/keyrings
    if [ "$dry" -eq 1 ]; then
        echo "+ curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | $sudo gpg --dearmor -o /etc/apt/keyrings/coral-edgetpu.gpg"
        echo "+ echo 'deb [signed-by=/etc/apt/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main' | $sudo tee /etc/apt/sources.list.d/coral-edgetpu.list"
    else
        curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg \
            | $sudo gpg --dearmor --yes -o /etc/apt/keyrings/coral-edgetpu.gpg
        echo "deb [signed-by=/etc/apt/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \
            | $sudo tee /etc/apt/sources.list.d/coral-edgetpu.list
    fi
    run $sudo apt-get update
    # -std: the default clock; libedgetpu1-max runs faster and hotter
    run $sudo apt-get install -y libedgetpu1-std
    echo "(replug the USB accelerator now so the udev rule that came with it applies)"
fi

say "4. The virtual environment"
venv_flags=()
# picamera2 and libcamera live in the system's site-packages (apt); the venv must see them
[ "$picam" -eq 0 ] || venv_flags+=(--system-site-packages)
run "$python" -m venv "${venv_flags[@]}" "$venv"
run "$venv/bin/python" -m pip install --upgrade pip

say "5. alledge with the device extra, from wheels only"
run "$venv/bin/python" -m pip install --only-binary=:all: "$checkout[device]"

say "6. Check: runtime, delegates and bundle; latency of classification on this Pi"
run "$venv/bin/alledge" info
run "$venv/bin/alledge" bench --runs 20
[ "$coral" -eq 0 ] || echo "with an Edge TPU bundle: $venv/bin/alledge bench --bundle DIR --delegate edgetpu"
[ "$picam" -eq 0 ] || run "$venv/bin/alledge" capture --camera picam --count 1 --no-log

if [ "$service" -eq 1 ]; then
    say "7. Unattended capture (systemd)"
    unit=/etc/systemd/system/alledge-capture.service
    user="${SUDO_USER:-$(id -un)}"
    # the unit names a user and a venv: fill them in, then let systemd start it on boot
    if [ "$dry" -eq 1 ]; then
        echo "+ sed -e 's|@USER@|$user|g' -e 's|@VENV@|$venv|g' $checkout/device/pi/alledge-capture.service | $sudo tee $unit"
    else
        sed -e "s|@USER@|$user|g" -e "s|@VENV@|$venv|g" "$checkout/device/pi/alledge-capture.service" \
            | $sudo tee "$unit" >/dev/null
    fi
    run $sudo systemctl daemon-reload
    run $sudo systemctl enable --now alledge-capture.service
    echo "logs: journalctl -u alledge-capture -f    results: $venv/bin/alledge history"
fi

say "done: $venv/bin/alledge classify IMAGE  (or: source $venv/bin/activate)"
