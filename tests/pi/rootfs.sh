#!/usr/bin/env bash
# A Debian bookworm arm64 userland (Python 3.11, the Raspberry Pi OS Bookworm base) built from
# Debian's own packages, for running the device part under qemu-aarch64-static.
#
#   tests/pi/rootfs.sh [ROOT]      default ROOT: ~/.cache/alledge/pi-rootfs
#
# No chroot, no binfmt, no maintainer scripts: the arm64 .debs of python3.11 and the libraries
# they need are fetched with `apt-get download` and unpacked with `dpkg-deb -x`. qemu-user's
# `-L ROOT` then finds the arm64 loader and libraries under ROOT. The result is cached outside
# the clone (it is ~100 MB and the same for every checkout); delete ROOT to rebuild it.
# Needs root for apt (adds the arm64 architecture and installs qemu-user-static once).
set -euo pipefail

root="${1:-${ALLEDGE_PI_ROOTFS:-$HOME/.cache/alledge/pi-rootfs}}"
# What the device needs from the OS: the interpreter and its standard library (wheels bring
# numpy, OpenCV and LiteRT with their own libraries), libstdc++ for those wheels, and
# coreutils so `uname -m` can be asked inside the emulation.
packages=(python3.11-minimal libpython3.11-stdlib libstdc++6 libgcc-s1 coreutils)

if [ -x "$root/usr/bin/python3.11" ] && [ -f "$root/.complete" ]; then
    echo "rootfs cached: $root"; exit 0
fi

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v qemu-aarch64-static >/dev/null || ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static
elif ! apt-cache show python3.11-minimal:arm64 >/dev/null 2>&1; then
    $sudo apt-get update -q      # arm64 added earlier but its package lists are missing
fi

# The closure of Depends/PreDepends for arm64 (no recommends: a minimal userland); <virtual>
# names are dropped, the packages that provide them are in the list.
mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances "${packages[@]/%/:arm64}" \
    | grep -v '^ ' | grep -v '^<' | sed 's/:arm64$//' | sort -u)
echo "rootfs: ${#closure[@]} packages -> $root"

tmp="$root.tmp"; debs="$root.debs"
rm -rf "$tmp" "$debs"; mkdir -p "$tmp" "$debs"
# apt names an arm64 package NAME:arm64 and an architecture-independent one (mailcap,
# tzdata...) just NAME; one `apt-cache show` says which is which, one `apt-get download`
# fetches them all (each apt run costs seconds: not one per package).
mapfile -t arm64 < <(apt-cache show --no-all-versions "${closure[@]/%/:arm64}" 2>/dev/null \
    | awk '/^Package:/ {p = $2} /^Architecture: arm64/ {print p}' | sort -u)
names=()
for p in "${closure[@]}"; do
    if printf '%s\n' "${arm64[@]}" | grep -qx -- "$p"; then names+=("$p:arm64"); else names+=("$p"); fi
done
(cd "$debs" && apt-get download -q "${names[@]}")
for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$tmp"; done
# bookworm's .debs still ship /bin, /lib (merged /usr is made at install time, not in the
# packages): the loader is ROOT/lib/ld-linux-aarch64.so.1, where qemu -L looks for it.
test -e "$tmp/lib/ld-linux-aarch64.so.1" || { echo "error: no arm64 loader in $tmp"; exit 1; }
touch "$tmp/.complete"
rm -rf "$root" "$debs"; mv "$tmp" "$root"
echo "rootfs ready: $root ($(du -sh "$root" | cut -f1))"
