"""`alledge data split`: the paper's stratified 70/30 split, and a duplicate-aware variant.

The plain split is scikit-learn's stratified shuffle split (test_size=0.3, seed 42) over the
files sorted by relative path; on the real dataset it reproduces the paper's Table 2 counts
exactly. The grouped split keeps each group of identical or near-identical images (union of
exact sha256 matches and pHash near-duplicates) on one side.
"""
import csv
import hashlib
import io

import numpy as np

from alledge.device import CLASSES

from .check import NEAR_DUP_BITS, inspect_file, near_duplicate_pairs
from .dataset import list_images

FIELDS = ("path", "label", "label_id", "subset", "sha256")


def scan(data):
    """Usable images of a dataset: (root, [(rel, label, sha256, phash)]). Skips unusable files."""
    from alledge.device.images import ImageError
    root, items = list_images(data)
    rows, skipped = [], []
    for rel, label in items:
        try:
            info = inspect_file(root / rel)
        except (ImageError, OSError) as e:
            skipped.append((rel, str(e)))
            continue
        rows.append((rel, label, info["sha256"], info["phash"]))
    return root, rows, skipped


def plain_split(labels, test_size=0.3, seed=42):
    """Boolean test mask: stratified, as scikit-learn allocates it."""
    from sklearn.model_selection import train_test_split
    idx = np.arange(len(labels))
    _, test_idx = train_test_split(idx, test_size=test_size, random_state=seed,
                                   stratify=labels)
    mask = np.zeros(len(labels), dtype=bool)
    mask[test_idx] = True
    return mask


def duplicate_groups(shas, hashes, near_bits=NEAR_DUP_BITS):
    """Group id per image: union-find over exact (sha256) and near (pHash) duplicates."""
    parent = list(range(len(shas)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i, j):
        parent[find(i)] = find(j)

    first = {}
    for i, sha in enumerate(shas):
        if sha in first:
            union(i, first[sha])
        else:
            first[sha] = i
    for i, j, _ in near_duplicate_pairs(hashes, near_bits):
        union(i, j)
    return np.array([find(i) for i in range(len(shas))])


def grouped_split(labels, groups, test_size=0.3, seed=42):
    """Boolean test mask keeping every group on one side, stratified by class.

    Groups are visited in a seeded random order; a group goes to test while that keeps its
    class at or under the class's test target, so the counts end as close to 70/30 as the
    group sizes allow. A group is assigned by its most common label.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, class_counts = np.unique(labels, return_counts=True)
    target = {c: int(round(n * test_size)) for c, n in zip(classes, class_counts)}
    taken = {c: 0 for c in classes}
    members = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    order = list(members)
    rng.shuffle(order)
    mask = np.zeros(len(labels), dtype=bool)
    for g in order:
        idx = members[g]
        vals, counts = np.unique(labels[idx], return_counts=True)
        c = vals[np.argmax(counts)]
        if taken[c] + len(idx) <= target[c]:
            mask[idx] = True
            taken[c] += len(idx)
    return mask


def leaked_test_images(shas, groups, test_mask):
    """How many test images have an identical (sha256) or near copy in the train part."""
    train_groups = set(groups[~test_mask])
    train_shas = set(np.asarray(shas)[~test_mask])
    exact = sum(1 for i in np.nonzero(test_mask)[0] if shas[i] in train_shas)
    near = sum(1 for i in np.nonzero(test_mask)[0] if groups[i] in train_groups)
    return exact, near


def make_split(data, test_size=0.3, seed=42, group_duplicates=False):
    """Returns (rows, info). rows are dicts with FIELDS; info has counts and leak figures."""
    root, scanned, skipped = scan(data)
    rels = [r[0] for r in scanned]
    labels = np.array([r[1] for r in scanned])
    shas = [r[2] for r in scanned]
    groups = duplicate_groups(shas, [r[3] for r in scanned])
    plain = plain_split(labels, test_size, seed)
    leak_exact, leak_near = leaked_test_images(shas, groups, plain)
    mask = grouped_split(labels, groups, test_size, seed) if group_duplicates else plain
    rows = [{"path": rel, "label": lab, "label_id": CLASSES.index(lab),
             "subset": "test" if t else "train", "sha256": sha}
            for rel, lab, sha, t in zip(rels, labels, shas, mask)]
    info = {
        "root": str(root), "skipped": skipped,
        "plain_leak_exact": leak_exact, "plain_leak_near": leak_near,
        "counts": {s: {c: int(((labels == c) & (mask == (s == "test"))).sum()) for c in CLASSES}
                   for s in ("train", "test")},
    }
    return rows, info


def to_csv(rows):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def read_split(path):
    """Rows of a split CSV and its id (sha256 of the file's bytes)."""
    data = open(path, "rb").read()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    missing = set(FIELDS) - set(rows[0] if rows else FIELDS)
    if not rows or missing:
        raise ValueError(f"{path} is not a split CSV (needs columns {', '.join(FIELDS)})")
    for r in rows:
        r["label_id"] = int(r["label_id"])
    return rows, hashlib.sha256(data).hexdigest()


def subset(rows, name):
    return [r for r in rows if r["subset"] == name]
