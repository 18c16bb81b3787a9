"""The accuracy-vs-quantization report.

For every trained model under MODELS (the Improved CNN, each extractor + SVM) and every
quantization level: convert to a bundle, then evaluate it on the test split through the
device code path. Per bundle: accuracy and macro-F1 with 95% bootstrap intervals, the drop
from the model's float32 bundle, label agreement with it, bundle size, median latency at 1
thread and at all threads, and accuracy on rotated/flipped test images.
Accuracy is read at all threads on every test image (LiteRT gives the very same probabilities
at 1 thread: measured on the grouped split's Lite0 bundles, float32, dynamic and int8); the 1-thread
latency and the rotation/flip views are read on stratified, seeded samples of the test set,
which keeps `make reproduce` within its hour.
Each bundle's figures are kept in ROWS/<bundle>.json so an interrupted report resumes.
"""
import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from alledge.device.bundle import BundleError, load_bundle
from alledge.device.fileio import atomic_write_json, atomic_write_text

from .evaluation import TRANSFORMS, bundle_classifier, load_test_images, predict
from .tflite import QUANT_LEVELS

COLUMNS = ["model", "quant", "bundle", "size_kb", "accuracy", "accuracy_ci95", "macro_f1",
           "macro_f1_ci95", "drop_vs_float32", "agreement_vs_float32", "latency_ms_1t",
           "latency_ms_all", "threads_all", "acc_upright_views",
           *[f"acc_{t}" for t in TRANSFORMS], "acc_min_view"]


def model_dirs(models, split_id):
    """Model directories under `models` with a network, trained on this split, sorted."""
    from alledge.train.modeldir import read_model_info
    out = []
    for info_path in sorted(Path(models).glob("*/model.json")):
        info = read_model_info(info_path.parent)
        if info.get("kind") in ("cnn", "svm") and info.get("split_id") == split_id \
                and not info.get("random_weights"):
            out.append((info_path.parent, info))
    return out


def bundle_size_kb(bundle_dir):
    m = load_bundle(bundle_dir).manifest
    return sum((Path(bundle_dir) / f).stat().st_size for f in m["files"]
               if f != m.get("edgetpu_model_file")) / 1024


def ensure_bundle(model_dir, bundle_dir, quant, data_dir, split_csv, log):
    """Reuse a bundle made from this very model at this level, else build it; returns it."""
    from alledge.train.modeldir import KERAS_FILE, SVM_FILE, file_sha256
    from .build import build_bundle
    svm = Path(model_dir) / SVM_FILE
    try:
        b = load_bundle(bundle_dir)
        if (b.manifest["source_model"]["id"] == file_sha256(Path(model_dir) / KERAS_FILE)
                and b.manifest["quantization"] == quant
                and b.manifest["files"].get(SVM_FILE) == (file_sha256(svm) if svm.is_file()
                                                          else None)):
            return b
    except (BundleError, KeyError, TypeError):
        pass
    log(f"converting {Path(model_dir).name} -> {quant}")
    build_bundle(model_dir, bundle_dir, quant, data_dir=data_dir, split_csv=split_csv,
                 evaluate=False, gate=False, log=log)
    return load_bundle(bundle_dir)


def measure_bundle(bundle_dir, images, y, view_idx, latency_idx, threads_all):
    """Figures of one bundle; returns (row dict, predicted labels on the plain test set)."""
    from alledge.train.evaluate import evaluate
    many = bundle_classifier(bundle_dir, threads=threads_all)
    probs, secs_all = predict(many, images)
    pred = probs.argmax(1)
    m = evaluate(y, pred)
    one = bundle_classifier(bundle_dir, threads=1)
    _, secs = predict(one, [images[i] for i in latency_idx])
    row = {"bundle": Path(bundle_dir).name, "size_kb": round(bundle_size_kb(bundle_dir), 1),
           "accuracy": m["accuracy"], "accuracy_ci95": m["accuracy_ci95"],
           "macro_f1": m["macro_f1"], "macro_f1_ci95": m["macro_f1_ci95"],
           "latency_ms_1t": float(np.median(secs) * 1000),
           "latency_ms_all": float(np.median(secs_all) * 1000), "threads_all": threads_all,
           "latency_images_1t": len(latency_idx), "view_images": len(view_idx),
           "confusion": m["confusion"]}
    view_images = [images[i] for i in view_idx]
    for name, fn in TRANSFORMS.items():
        p, _ = predict(many, view_images, fn)
        row[f"acc_{name}"] = float(np.mean(p.argmax(1) == y[view_idx]))
    row["acc_min_view"] = min(row[f"acc_{t}"] for t in TRANSFORMS)
    return row, pred


def run_report(data_dir, split_csv, models, out, quants=QUANT_LEVELS, latency_n=100,
               view_n=200, log=print):
    from alledge.train.dataset import resolve_root
    from alledge.train.split import read_split, subset
    rows_csv, split_id = read_split(split_csv)
    root = resolve_root(data_dir)
    test = subset(rows_csv, "test")
    y = np.array([r["label_id"] for r in test])
    out = Path(out)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    found = model_dirs(models, split_id)
    if not found:
        raise FileNotFoundError(f"no model trained on {split_csv} under {models}")
    log(f"decoding {len(test)} test images")
    images = load_test_images(root, test)
    view_idx = _sample(y, view_n)
    latency_idx = _sample(y, latency_n)
    threads_all = os.cpu_count() or 1
    table = []
    for model_dir, info in found:
        float_pred = None
        for quant in quants:
            name = f"{model_dir.name}-{quant}"
            bdir = out / "bundles" / name
            manifest = ensure_bundle(model_dir, bdir, quant, data_dir, split_csv, log).manifest
            cache = out / "rows" / f"{name}.json"
            row = _cached_row(cache, manifest, len(view_idx), len(latency_idx))
            if row is None:
                log(f"measuring {name}")
                row, pred = measure_bundle(bdir, images, y, view_idx, latency_idx,
                                            threads_all)
                row.update(model=model_dir.name, quant=quant, pred=pred.tolist(),
                           bundle_files=manifest["files"])
                atomic_write_text(cache, json.dumps(row) + "\n")
            pred = np.array(row["pred"])
            # the views' own baseline: the same sampled images upright
            row["acc_upright_views"] = float(np.mean(pred[view_idx] == y[view_idx]))
            if quant == "float32":
                float_pred, float_acc = pred, row["accuracy"]
            if float_pred is not None:
                row["drop_vs_float32"] = float_acc - row["accuracy"]
                row["agreement_vs_float32"] = float(np.mean(pred == float_pred))
            table.append(row)
    write_outputs(table, out, split_csv, split_id, len(test), len(view_idx),
                  len(latency_idx))
    return table


def _cached_row(path, manifest, n_views, n_latency):
    """The row measured before on this very bundle with the same samples, else None."""
    if not path.is_file():
        return None
    row = json.loads(path.read_text())
    same = (row.get("bundle_files") == manifest["files"] and row.get("view_images") == n_views
            and row.get("latency_images_1t") == n_latency)
    return row if same else None


def _sample(y, n):
    """Test-set indices: all (n 0 or too large), or n drawn stratified (seeded); fewer than
    one per class cannot be stratified and are drawn plainly."""
    if not n or n >= len(y):
        return np.arange(len(y))
    if n < len(np.unique(y)):
        return np.sort(np.random.default_rng(0).choice(len(y), n, replace=False))
    from sklearn.model_selection import train_test_split
    idx, _ = train_test_split(np.arange(len(y)), train_size=n, random_state=0, stratify=y)
    return np.sort(idx)


def _fmt(v, pct=True):
    if v is None or v == "":
        return ""
    if isinstance(v, list):
        return "-".join(_fmt(x, pct) for x in v)
    return f"{100 * v:.2f}" if pct else f"{v:.1f}"


def to_csv(table):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in table:
        w.writerow({k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()})
    return buf.getvalue()


def to_markdown(table, n_test, n_views, n_latency):
    head = ["model", "quant", "size KB", "accuracy % (95% CI)", "macro-F1 % (95% CI)",
            "drop vs f32 (pts)", "agree w/ f32 %", "ms 1 thread", "ms all threads",
            "upright/rot90/180/270/flip acc % (view sample)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table:
        views = "/".join(_fmt(r[k]) for k in ("acc_upright_views",
                                              *(f"acc_{t}" for t in TRANSFORMS)))
        drop = r.get("drop_vs_float32")
        lines.append("| " + " | ".join([
            r["model"], r["quant"], f"{r['size_kb']:.0f}",
            f"{_fmt(r['accuracy'])} ({_fmt(r['accuracy_ci95'])})",
            f"{_fmt(r['macro_f1'])} ({_fmt(r['macro_f1_ci95'])})",
            "" if drop is None else f"{round(100 * drop, 2) + 0.0:+.2f}",
            _fmt(r.get("agreement_vs_float32")), f"{r['latency_ms_1t']:.1f}",
            f"{r['latency_ms_all']:.1f}", views]) + " |")
    return "\n".join(lines) + "\n\n" + findings(table, n_test, n_views, n_latency)


def findings(table, n_test, n_views, n_latency):
    """A few sentences, computed from the figures (nothing here is written by hand)."""
    best = max(table, key=lambda r: r["accuracy"])
    smallest = min(table, key=lambda r: r["size_kb"])
    fastest = min(table, key=lambda r: r["latency_ms_1t"])
    int8 = [r for r in table if r["quant"] == "int8" and r.get("drop_vs_float32") is not None]
    worst_view = min(table, key=lambda r: r["acc_min_view"] - r["acc_upright_views"])
    s = [f"Test set: {n_test} images; rotation/flip views on {n_views} of them (stratified); "
         f"latency at 1 thread on {n_latency}, at all threads on all.",
         f"Most accurate bundle: {best['bundle']} at {_fmt(best['accuracy'])}% "
         f"(95% CI {_fmt(best['accuracy_ci95'])}).",
         f"Smallest: {smallest['bundle']} ({smallest['size_kb']:.0f} KB, "
         f"{_fmt(smallest['accuracy'])}%); fastest at 1 thread: {fastest['bundle']} "
         f"({fastest['latency_ms_1t']:.1f} ms)."]
    for r in int8:
        change = round(-100 * r["drop_vs_float32"], 2) + 0.0  # + 0.0: no "-0.00"
        s.append(f"{r['model']}: full-integer int8 changes accuracy by "
                 f"{change:+.2f} points and agrees with float32 on "
                 f"{_fmt(r['agreement_vs_float32'])}% of test images, at "
                 f"{r['size_kb']:.0f} KB.")
    s.append(f"Orientation: the largest cost of a view is {worst_view['bundle']}'s, "
             f"{_fmt(worst_view['acc_min_view'])}% against "
             f"{_fmt(worst_view['acc_upright_views'])}% upright on the same images.")
    return " ".join(s) + "\n"


MARKERS = {"float32": "o", "float16": "s", "dynamic": "^", "int8": "D"}


def plot(table, out):
    """Accuracy against size and against latency: a colour per model, a marker per level."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = list(dict.fromkeys(r["model"] for r in table))
    colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(models)}
    for key, xlabel, fname in (("size_kb", "bundle size (KB, log scale)", "accuracy-vs-size.png"),
                               ("latency_ms_1t", "median latency per image, 1 thread (ms, log scale)",
                                "accuracy-vs-latency.png")):
        fig, ax = plt.subplots(figsize=(8, 5.5))
        for r in table:
            ax.scatter(r[key], 100 * r["accuracy"], s=45, color=colours[r["model"]],
                       marker=MARKERS.get(r["quant"], "o"), label=f"{r['model']} {r['quant']}")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="lower right")
        fig.tight_layout()
        fig.savefig(Path(out) / fname, dpi=110)
        plt.close(fig)


def write_outputs(table, out, split_csv, split_id, n_test, n_views, n_latency):
    out = Path(out)
    atomic_write_text(out / "report.csv", to_csv(table))
    header = (f"# Accuracy vs quantization\n\nSplit: `{split_csv}` (id {split_id[:16]}). "
              f"Every figure is from the device code path (LiteRT + plain-weights SVM).\n\n")
    atomic_write_text(out / "report.md", header + to_markdown(table, n_test, n_views, n_latency))
    slim = [{k: v for k, v in r.items() if k != "pred"} for r in table]
    from alledge.train.modeldir import provenance
    atomic_write_json(out / "report.json", {"split_id": split_id, "split_file": str(split_csv),
                                            "provenance": provenance(), "rows": slim})
    plot(table, out)
