"""A bundle measured on a labelled split, through the device code path.

Each image goes through `classify_data` (the record `classify --json` prints), so what is
measured is what the device answers. A record counts as answered when its `status` is "ok",
or, for records without a status, when it has a label; an unanswered image counts as wrong
in `accuracy` (the figure a user of the device gets) and is left out of
`accuracy_answered`.
"""
import csv
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from .classify import classify_data
from .images import ImageError, read_file

UNANSWERED = "(unanswered)"


class SplitError(ValueError):
    """The split file or the data folder cannot be used; one line naming it."""


def read_split_rows(split_csv, subset):
    """[(relative path, label)] of one subset of a split CSV, and the split id (sha256)."""
    split_csv = Path(split_csv)
    try:
        raw = split_csv.read_bytes()
    except OSError as e:
        raise SplitError(f"{split_csv}: cannot read ({e.strerror})") from None
    try:
        reader = csv.DictReader(raw.decode("utf-8").splitlines())
        rows = [(r["path"], r["label"]) for r in reader if r["subset"] == subset]
    except (KeyError, UnicodeDecodeError, csv.Error):
        raise SplitError(f"{split_csv}: not a split CSV (path,label,label_id,subset,sha256)") \
            from None
    if not rows:
        raise SplitError(f"{split_csv}: no rows in subset '{subset}'")
    return rows, hashlib.sha256(raw).hexdigest()


def data_root(data, rows):
    """DATA itself, or DATA/Original when the split's paths lie there (Kaggle's layout)."""
    data = Path(data)
    first = rows[0][0]
    for root in (data, data / "Original"):
        if (root / first).is_file():
            return root
    raise SplitError(f"{data}: the split's first image {first} is not there (pass the folder "
                     "holding the class folders, or its parent holding Original/)")


def is_answered(record):
    if "status" in record:
        return record["status"] == "ok"
    return "label" in record and "error" not in record


def classify_rows(classifier, root, rows):
    """The classify record of every (path, label) row, in order."""
    records = []
    for rel, _ in rows:
        try:
            data = read_file(root / rel)
        except ImageError as e:
            records.append({"path": rel, "error": str(e)})
            continue
        records.append(classify_data(classifier, data, rel))
    return records


def summarize(records, truths, classes):
    """Accuracy, per-class recall/precision, answered fraction and confusion of records."""
    classes = list(classes)
    columns = classes + [UNANSWERED]
    confusion = np.zeros((len(classes), len(columns)), dtype=int)
    for record, truth in zip(records, truths, strict=True):
        if truth not in classes:
            raise SplitError(f"label {truth!r} is not one of the bundle's classes {classes}")
        answered = is_answered(record) and record.get("label") in classes
        col = columns.index(record["label"]) if answered else len(classes)
        confusion[classes.index(truth), col] += 1
    n = int(confusion.sum())
    n_answered = int(confusion[:, :len(classes)].sum())
    correct = int(np.trace(confusion[:, :len(classes)]))
    per_class = {}
    for i, c in enumerate(classes):
        support = int(confusion[i].sum())
        predicted = int(confusion[:, i].sum())
        per_class[c] = {
            "support": support,
            "answered": int(confusion[i, :len(classes)].sum()),
            "correct": int(confusion[i, i]),
            "recall": confusion[i, i] / support if support else None,
            "precision": confusion[i, i] / predicted if predicted else None,
        }
    return {
        "n": n,
        "answered": n_answered,
        "answered_fraction": n_answered / n if n else None,
        "correct": correct,
        "accuracy": correct / n if n else None,
        "accuracy_answered": correct / n_answered if n_answered else None,
        "errors": sum(1 for r in records if "error" in r),
        "statuses": _statuses(records),
        "per_class": {c: {k: (float(v) if isinstance(v, np.floating) else v)
                          for k, v in d.items()} for c, d in per_class.items()},
        "confusion_labels": {"rows": classes, "columns": columns},
        "confusion": confusion.tolist(),
    }


def _statuses(records):
    """How many records of each status (ok, out_of_domain, rejected, error)."""
    counts = Counter(r.get("status", "error" if "error" in r else "ok") for r in records)
    return dict(sorted(counts.items()))


def evaluate(classifier, data, split_csv, subset="test"):
    """Classify every image of a split's subset; the summary with bundle and split named."""
    rows, split_id = read_split_rows(split_csv, subset)
    root = data_root(data, rows)
    records = classify_rows(classifier, root, rows)
    out = {"bundle": classifier.bundle.id, "bundle_dir": str(classifier.bundle.path),
           "split_file": str(split_csv), "split_id": split_id, "subset": subset,
           **summarize(records, [label for _, label in rows], classifier.bundle.classes)}
    return out, records
