"""`alledge data check`: decode every file, find what cannot be used and what is duplicated.

Near-duplicates use a 64-bit DCT perceptual hash (pHash: 32x32 grayscale, the 8x8
lowest frequencies without DC, thresholded at their median). Two images are near-duplicates
when their hashes differ in at most NEAR_DUP_BITS bits. The threshold was chosen on the
real dataset: the nearest-neighbour distance of most images is 14-18 bits; pairs at 0-6 bits
were, on inspection, the same microscope field re-saved or slightly shifted, while at 8-12
bits same-field and different-field pairs both occur. So 6 bits, erring on the side of
calling fewer pairs duplicates.
"""
import hashlib
from collections import defaultdict

import cv2
import numpy as np

from alledge.device import CLASSES
from alledge.device.images import ImageError, check_header, decode_rgb

from .dataset import find_layout, list_files

NEAR_DUP_BITS = 6


def phash(rgb):
    """64-bit DCT perceptual hash of an RGB image, as a Python int."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()[1:]  # 63 coefficients without DC
    bits = low > np.median(low)
    return int("".join("1" if b else "0" for b in bits), 2)


def mode_note(fmt, channels, depth):
    """How the import policy treats a valid header: None when it is plain 8-bit RGB."""
    if fmt == "png" and depth == 16:
        return "16-bit PNG, converted to 8-bit RGB"
    if channels == 1:
        return "grayscale, converted to RGB (stain colour is lost)"
    if channels == 2:
        return "grayscale with alpha, converted to RGB"
    if channels == 4:
        return "RGBA, alpha dropped"
    return None


def inspect_file(path):
    """One file -> dict(sha256, phash, shape, note) or raise ImageError."""
    data = path.read_bytes()
    fmt, width, height, channels, depth = check_header(data)
    rgb = decode_rgb(data)
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "phash": phash(rgb),
        "size": [width, height],
        "note": mode_note(fmt, channels, depth),
    }


def near_duplicate_pairs(hashes, max_bits=NEAR_DUP_BITS):
    """Index pairs (i, j), i < j, whose 64-bit hashes differ in <= max_bits bits."""
    if len(hashes) < 2:
        return []
    h = np.array(hashes, dtype=np.uint64)
    pairs = []
    for i in range(len(h) - 1):
        x = np.bitwise_xor(h[i + 1:], h[i])
        dist = np.bitwise_count(x) if hasattr(np, "bitwise_count") else _popcount(x)
        for j in np.nonzero(dist <= max_bits)[0]:
            pairs.append((i, i + 1 + int(j), int(dist[j])))
    return pairs


def _popcount(x):
    bytes_ = x.view(np.uint8).reshape(-1, 8)
    return np.unpackbits(bytes_, axis=1).sum(axis=1)


def check_dataset(data, near_bits=NEAR_DUP_BITS, progress=None):
    """Inspect a dataset folder; returns a JSON-ready report dict."""
    layout = find_layout(data)
    root = layout.root
    report = {
        "root": str(root),
        "counts": {c: 0 for c in CLASSES},
        "usable": 0,
        "unusable": [],          # {"path", "reason", "message"}
        "converted": [],         # {"path", "note"}
        "exact_duplicates": [],  # {"sha256", "paths", "classes", "cross_class"}
        "near_duplicates": [],   # {"paths", "classes", "bits", "cross_class"}
        "empty_classes": [],
        "missing_classes": [c for c in CLASSES if c not in layout.class_dirs],
        "unknown_folders": [p.name for p in layout.unknown_dirs],
        "stray_files": [p.name for p in layout.stray_files],
        "near_dup_bits": near_bits,
    }
    good = []  # (rel, class, info)
    files = [(f, c) for c in CLASSES if c in layout.class_dirs
             for f in list_files(layout.class_dirs[c])]
    for c in CLASSES:
        if c in layout.class_dirs and not any(fc == c for _, fc in files):
            report["empty_classes"].append(c)
    for n, (f, c) in enumerate(files):
        rel = f.relative_to(root).as_posix()
        try:
            info = inspect_file(f)
        except ImageError as e:
            report["unusable"].append({"path": rel, "reason": e.reason, "message": str(e)})
            continue
        except OSError as e:
            report["unusable"].append({"path": rel, "reason": "unreadable", "message": e.strerror})
            continue
        if progress and n % 200 == 0:
            progress(n, len(files))
        report["counts"][c] += 1
        if info["note"]:
            report["converted"].append({"path": rel, "note": info["note"]})
        good.append((rel, c, info))
    report["usable"] = len(good)

    by_sha = defaultdict(list)
    for rel, c, info in good:
        by_sha[info["sha256"]].append((rel, c))
    for sha, members in sorted(by_sha.items(), key=lambda kv: kv[1][0][0]):
        if len(members) > 1:
            classes = sorted({c for _, c in members})
            report["exact_duplicates"].append({
                "sha256": sha, "paths": [r for r, _ in members], "classes": classes,
                "cross_class": len(classes) > 1})
    for i, j, bits in near_duplicate_pairs([info["phash"] for _, _, info in good], near_bits):
        (ri, ci, ii), (rj, cj, ij) = good[i], good[j]
        if ii["sha256"] == ij["sha256"]:
            continue  # already an exact duplicate
        report["near_duplicates"].append({
            "paths": [ri, rj], "classes": sorted({ci, cj}), "bits": bits,
            "cross_class": ci != cj})
    return report


def has_problems(report):
    return bool(report["unusable"] or report["converted"] or report["exact_duplicates"]
                or report["near_duplicates"] or report["empty_classes"]
                or report["missing_classes"] or report["unknown_folders"] or report["stray_files"])


def format_report(report):
    lines = [f"dataset: {report['root']}"]
    counts = report["counts"]
    lines.append("usable images: " + ", ".join(f"{c} {counts[c]}" for c in CLASSES)
                 + f" = {report['usable']}")
    for item in report["unusable"]:
        lines.append(f"unusable: {item['path']}: {item['message']} [{item['reason']}]")
    for item in report["converted"]:
        lines.append(f"converted: {item['path']}: {item['note']}")
    for c in report["missing_classes"]:
        lines.append(f"missing class folder: {c}")
    for c in report["empty_classes"]:
        lines.append(f"empty class folder: {c}")
    for name in report["unknown_folders"]:
        lines.append(f"unknown folder (not a class, ignored): {name}")
    for name in report["stray_files"]:
        lines.append(f"file outside the class folders (ignored): {name}")
    exact = report["exact_duplicates"]
    extra = sum(len(d["paths"]) - 1 for d in exact)
    cross = sum(d["cross_class"] for d in exact)
    lines.append(f"exact duplicates: {len(exact)} groups, {extra} redundant files, "
                 f"{cross} groups across classes")
    for d in exact:
        tag = " (ACROSS CLASSES)" if d["cross_class"] else ""
        lines.append(f"  {d['sha256'][:12]}: {' = '.join(d['paths'])}{tag}")
    near = report["near_duplicates"]
    lines.append(f"near duplicates (pHash <= {report['near_dup_bits']} bits): {len(near)} pairs, "
                 f"{sum(d['cross_class'] for d in near)} across classes")
    for d in near:
        tag = " (ACROSS CLASSES)" if d["cross_class"] else ""
        lines.append(f"  {d['bits']} bits: {' ~ '.join(d['paths'])}{tag}")
    lines.append("result: " + ("problems found" if has_problems(report) else "clean"))
    return "\n".join(lines)
