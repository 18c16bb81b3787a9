#!/usr/bin/env bash
# Do the core and `device` requirements resolve to wheels a Raspberry Pi can install?
#
#   tests/pi/resolve_wheels.sh [PYTHON]     (default .venv/bin/python; any python with pip)
#
# Asks the package index, as pip on a Pi would, for aarch64 manylinux wheels only (no source
# builds: a Pi would spend an hour compiling or fail), for CPython 3.11 (Raspberry Pi OS
# Bookworm) and 3.12, and fails unless a TFLite interpreter wheel is among them. Downloads into
# a temporary folder that is removed afterwards. pip evaluates environment markers for this
# machine, not the --platform one: pyproject.toml's `device` line is written for that.
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${1:-.venv/bin/python}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT

"$py" - > "$tmp/reqs" <<'P'
import tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["device"]))
P
plats=(); for v in 17 28 31 34 35 36; do plats+=(--platform "manylinux_2_${v}_aarch64"); done
for pyv in 3.11 3.12; do
    if ! "$py" -m pip download -q -d "$tmp/$pyv" "${plats[@]}" --python-version "$pyv" \
            --implementation cp --only-binary=:all: -r "$tmp/reqs" > "$tmp/pip.log" 2>&1; then
        grep -v '^WARNING: Location' "$tmp/pip.log" | tail -n 5
        echo "error: the core + device requirements do not resolve for aarch64 CPython $pyv"
        exit 1
    fi
    interp=$(ls "$tmp/$pyv" | grep -iE '^(ai_edge_litert|tflite_runtime)-' || true)
    [ -n "$interp" ] || { echo "error: no interpreter wheel for aarch64 CPython $pyv"; exit 1; }
    echo "aarch64 cp${pyv/./}: $(ls "$tmp/$pyv" | sed 's/-py[23].*//; s/-cp3.*//' | tr '\n' ' ')"
done
