"""Outside the dataset: what bundles answer, refuse and get wrong under capture changes and
on smears they were never meant for. `alledge stress` writes it to results/.

Every figure goes through the device code path: each image (changed or not) is encoded as a
JPEG at quality 95, the way a re-written file would be, and handed to
Classifier.classify_bytes (decode, quality gate, model, out-of-domain gate, SVM, sets).

For each bundle and each input set it records the statuses (answered / out of domain /
rejected / error), the accuracy of the answered images, the correct share of ALL images
(unanswered counts as wrong) with a 95% bootstrap interval, and its drop against the clean
test images. Input sets: the split's test images, clean and under every capture change of
alledge.train.capture_changes at the chosen severities; and, labels unknown, another lab's
smears (BCCD), the dataset's own Segmented/ images (black background), a synthetic smear set.
Plus a risk-coverage curve on the clean test images (answering only the most confident).

The colour baseline (an SVM on colour histograms, `alledge train baseline`) has no bundle:
with `baselines`, its model directories go through the same changed images, encoded the same
way, on the desktop (decode, histogram, its svm.npz); it has no gates, so it answers every
image. It says how far a model that reads nothing but colour falls under the same changes.
"""
import glob
import json
from pathlib import Path

import cv2
import numpy as np

from alledge.device.bundle import load_bundle
from alledge.device.classify import Classifier
from alledge.device.images import decode_rgb, read_rgb
from alledge.train import capture_changes
from alledge.train.split import subset

from .gate import outcome_figures


def _jpeg(rgb):
    return cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def _run(classifier, images):
    return [classifier.classify_bytes(_jpeg(im)) for im in images]


def _ci(correct, n_boot=1000, seed=0):
    correct = np.asarray(correct, dtype=float)
    if len(correct) == 0:
        return [0.0, 0.0]
    idx = np.random.default_rng(seed).integers(0, len(correct), (n_boot, len(correct)))
    lo, hi = np.percentile(correct[idx].mean(1), [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def figures(results, truth=None):
    n = len(results)
    st = [r.get("status", "ok") for r in results]
    out = {"n": n}
    for s in ("ok", "out_of_domain", "rejected", "error"):
        out[s if s != "ok" else "answered"] = round(st.count(s) / n, 4) if n else 0.0
    labels = [r.get("label") if s == "ok" else None for r, s in zip(results, st)]
    out["benign_or_unanswered"] = round(np.mean([lab in (None, "Benign") for lab in labels]), 4)
    if truth is not None:
        f = outcome_figures(results, truth)
        out["correct_of_all"] = round(f["correct_of_all"], 4)
        out["correct_of_all_ci95"] = _ci([lab == t for lab, t in zip(labels, truth)])
        out["accuracy_of_answered"] = round(f["accuracy_of_answered"], 4)
        if f["answered"]:
            out["set_coverage"] = round(f["set_coverage"], 4)
            out["mean_set_size"] = round(f["mean_set_size"], 3)
    return out


def risk_coverage(results, truth):
    """Answer only the most confident: (coverage, risk) as the confidence bar rises."""
    pairs = sorted(((max(r["probabilities"].values()), r["label"] == t)
                    for r, t in zip(results, truth) if r.get("status") == "ok"),
                   key=lambda p: -p[0])
    n = len(results)
    curve, wrong = [], 0
    for k, (_, ok) in enumerate(pairs, 1):
        wrong += not ok
        curve.append((round(k / n, 4), round(wrong / k, 4)))
    return curve


def _changes(run, clean, truth, clean_figures, severities, log=None):
    """{change/severity: figures with their drop against clean}: `run` classifies a list of
    RGB images (a bundle's Classifier, or the colour baseline)."""
    out = {}
    for name, sev in capture_changes.suite(severities):
        changed = [capture_changes.apply(im, name, sev, seed=i) for i, im in enumerate(clean)]
        f = figures(run(changed), truth)
        f["drop"] = round(clean_figures["correct_of_all"] - f["correct_of_all"], 4)
        out[f"{name}/{sev}"] = f
        if log:
            log(f"  {name}/{sev}: correct of all {f['correct_of_all']:.4f} "
                f"(answered {f['answered']:.4f})")
    return out


def _baseline_run(svm, images):
    from alledge.train.colour import colour_features
    x = colour_features([decode_rgb(_jpeg(im)) for im in images])
    labels = [svm.classes[i] for i in svm.predict(x)]
    return [{"status": "ok", "label": lab, "prediction_set": [lab]} for lab in labels]


def baseline_entry(model_dir, clean, truth, severities, log=print):
    """The colour baseline under the suite: {model, dir, clean, changes} (no gates)."""
    from alledge.device.svm import load_svm
    from alledge.train.modeldir import SVM_FILE, read_model_info
    info = read_model_info(model_dir)
    if info.get("kind") != "baseline":
        raise ValueError(f"{model_dir}: not a colour baseline model (kind {info.get('kind')!r})")
    svm = load_svm(Path(model_dir) / SVM_FILE)
    run = lambda images: _baseline_run(svm, images)  # noqa: E731
    entry = {"model": info["name"], "dir": str(model_dir), "clean": figures(run(clean), truth)}
    entry["changes"] = _changes(run, clean, truth, entry["clean"], severities)
    log(f"{info['name']}: clean {entry['clean']['correct_of_all']:.4f}, worst "
        f"{min(f['correct_of_all'] for f in entry['changes'].values()):.4f}")
    return entry


def run_stress(bundle_dirs, data_dir, split_csv, out_dir, bccd_dir=None, severities=("moderate", "strong"),
               synth_per_class=50, baseline_dirs=(), log=print):
    from alledge.device.provenance import provenance
    from alledge.device.fileio import atomic_write_json
    from alledge.train.dataset import resolve_root
    from alledge.train.split import read_split
    rows, split_id = read_split(split_csv)
    root = resolve_root(data_dir)
    test = subset(rows, "test")
    truth = [r["label"] for r in test]
    clean = [read_rgb(root / r["path"]) for r in test]
    others = _other_sets(Path(root), bccd_dir, synth_per_class, log) if bundle_dirs else {}
    report = {"split_file": str(split_csv), "split_id": split_id, "severities": list(severities),
              "encoding": "JPEG quality 95, then Classifier.classify_bytes", "bundles": {},
              "baselines": {}, "provenance": provenance()}
    for mdir in baseline_dirs:
        entry = baseline_entry(mdir, clean, truth, severities, log)
        report["baselines"][entry["model"]] = entry
    for bdir in bundle_dirs:
        bundle = load_bundle(bdir)
        if bundle.manifest.get("split_id") != split_id:
            log(f"{bdir}: trained on another split than {split_csv}; its test figures here "
                "would include its own training images: skipped")
            continue
        c = Classifier(bundle, threads=1)
        log(f"{bundle.id}: clean test images")
        base = _run(c, clean)
        entry = {"bundle": bundle.id, "dir": str(bdir), "clean": figures(base, truth),
                 "risk_coverage": risk_coverage(base, truth), "other": {}}
        entry["changes"] = _changes(lambda images: _run(c, images), clean, truth,
                                    entry["clean"], severities, log)
        for name, images in others.items():
            entry["other"][name] = figures(_run(c, images))
            log(f"  {name}: {entry['other'][name]}")
        report["bundles"][bundle.id] = entry
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "stress.json", report)
    (out / "stress.md").write_text(to_markdown(report))
    _plots(report, out)
    return report


def _other_sets(root, bccd_dir, synth_per_class, log):
    import tempfile
    from alledge.train.synth import write_synth
    sets = {}
    if bccd_dir:
        paths = sorted(glob.glob(str(Path(bccd_dir) / "*.jpg")))
        sets["bccd"] = [read_rgb(p) for p in paths]
    seg = root.parent / "Segmented"
    if seg.is_dir():
        sets["segmented"] = [read_rgb(p) for p in sorted(glob.glob(str(seg / "*" / "*.jpg")))]
    with tempfile.TemporaryDirectory() as tmp:
        write_synth(tmp, per_class=synth_per_class, seed=7)
        sets["synthetic"] = [read_rgb(p) for p in sorted(glob.glob(f"{tmp}/*/*.jpg"))]
    log("other sets: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))
    return sets


def to_markdown(report):
    lines = []
    for bid, e in report["bundles"].items():
        c = e["clean"]
        lines += [f"### {bid}", "",
                  f"Clean test: correct of all {100 * c['correct_of_all']:.2f}% "
                  f"[{100 * c['correct_of_all_ci95'][0]:.2f}, {100 * c['correct_of_all_ci95'][1]:.2f}], "
                  f"answered {100 * c['answered']:.2f}%, accuracy of answered "
                  f"{100 * c['accuracy_of_answered']:.2f}%, set coverage "
                  f"{100 * c.get('set_coverage', 0):.2f}% (mean size {c.get('mean_set_size', 0):.2f})",
                  "", "| change | correct of all % | 95% CI | drop (points) | answered % | "
                  "out of domain % | rejected % | accuracy of answered % |",
                  "|---|---|---|---|---|---|---|---|"]
        for k, f in e["changes"].items():
            lines.append(f"| {k} | {100 * f['correct_of_all']:.2f} | "
                         f"{100 * f['correct_of_all_ci95'][0]:.1f}-{100 * f['correct_of_all_ci95'][1]:.1f} | "
                         f"{100 * f['drop']:.2f} | {100 * f['answered']:.1f} | "
                         f"{100 * f['out_of_domain']:.1f} | {100 * f['rejected']:.1f} | "
                         f"{100 * f['accuracy_of_answered']:.2f} |")
        lines += ["", "| other smears (no labels) | n | answered % | out of domain % | rejected % "
                  "| Benign or unanswered % |", "|---|---|---|---|---|---|"]
        for k, f in e["other"].items():
            lines.append(f"| {k} | {f['n']} | {100 * f['answered']:.1f} | "
                         f"{100 * f['out_of_domain']:.1f} | {100 * f['rejected']:.1f} | "
                         f"{100 * f['benign_or_unanswered']:.1f} |")
        lines.append("")
    for name, e in report.get("baselines", {}).items():
        lines += [f"### {name} (desktop, no gates: every image answered)", "",
                  f"Clean test: {100 * e['clean']['correct_of_all']:.2f}% "
                  f"[{100 * e['clean']['correct_of_all_ci95'][0]:.2f}, "
                  f"{100 * e['clean']['correct_of_all_ci95'][1]:.2f}]", "",
                  "| change | correct of all % | 95% CI | drop (points) |", "|---|---|---|---|"]
        for k, f in e["changes"].items():
            lines.append(f"| {k} | {100 * f['correct_of_all']:.2f} | "
                         f"{100 * f['correct_of_all_ci95'][0]:.1f}-{100 * f['correct_of_all_ci95'][1]:.1f} | "
                         f"{100 * f['drop']:.2f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _plots(report, out):
    plt = _pyplot()
    for bid, e in report["bundles"].items():
        safe = bid.replace("@", "-")
        names = list(e["changes"])
        drops = np.array([[100 * e["changes"][k]["drop"] for k in names]])
        fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names)), 2.6))
        im = ax.imshow(drops, cmap="Reds", vmin=0, vmax=max(5, float(drops.max())))
        ax.set_xticks(range(len(names)), names, rotation=70, fontsize=7)
        ax.set_yticks([0], [bid.split("@")[0]], fontsize=7)
        for j, v in enumerate(drops[0]):
            ax.text(j, 0, f"{v:.1f}", ha="center", va="center", fontsize=6)
        fig.colorbar(im, ax=ax, label="points lost vs clean")
        fig.tight_layout()
        fig.savefig(out / f"robustness-{safe}.png", dpi=120)
        plt.close(fig)
        cov, risk = zip(*e["risk_coverage"]) if e["risk_coverage"] else ((), ())
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        ax.plot(cov, np.array(risk) * 100)
        ax.set_xlabel("coverage (share of test images answered)")
        ax.set_ylabel("error among answered, %")
        ax.set_title(bid, fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"risk-coverage-{safe}.png", dpi=120)
        plt.close(fig)
    _matrix_plot(report, out, plt)


def _matrix_plot(report, out, plt):
    """Every model (bundles, then baselines) x every change: points lost against clean."""
    rows = _models(report)
    if not rows:
        return
    names = list(rows[0][1]["changes"])
    drops = np.array([[100 * e["changes"][k]["drop"] for k in names] for _, e in rows])
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names)), 1.4 + 0.45 * len(rows)))
    im = ax.imshow(drops, cmap="Reds", vmin=0, vmax=max(5, float(drops.max())), aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=70, fontsize=7)
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=7)
    for i in range(drops.shape[0]):
        for j, v in enumerate(drops[i]):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label="points lost vs clean")
    fig.tight_layout()
    fig.savefig(out / "robustness-matrix.png", dpi=120)
    plt.close(fig)


def _models(report):
    """(label, entry) of every model of a report: its bundles, then its baselines."""
    rows = [(bid.split("@")[0], e) for bid, e in report["bundles"].items()]
    return rows + [(f"{name} (no gates)", e) for name, e in report.get("baselines", {}).items()]


def combine(stress_dirs, out_dir):
    """One robustness matrix from several `alledge stress` runs on the same split, changes
    and encoding: their models side by side (stress.json with each run's provenance, a
    matrix.md of correct-of-all per change, robustness-matrix.png). Nothing is re-measured."""
    from alledge.device.fileio import atomic_write_json
    from alledge.device.provenance import provenance
    runs = []
    for d in stress_dirs:
        path = Path(d) / "stress.json"
        try:
            runs.append((str(d), json.loads(path.read_text())))
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: not an alledge stress result ({e})") from None
    same = ("split_id", "severities", "encoding")
    first = runs[0][1]
    report = {**{k: first.get(k) for k in ("split_file", *same)}, "bundles": {},
              "baselines": {}, "sources": [], "provenance": provenance()}
    for d, r in runs:
        for k in same:
            if r.get(k) != first.get(k):
                raise ValueError(f"{d}: its {k} is not that of {runs[0][0]}: "
                                 "only runs over the same test images and changes combine")
        for part in ("bundles", "baselines"):
            for name, entry in (r.get(part) or {}).items():
                if name in report["bundles"] or name in report["baselines"]:
                    raise ValueError(f"{name} is in more than one of the runs")
                report[part][name] = entry
        report["sources"].append({"dir": d, "provenance": r.get("provenance")})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "stress.json", report)
    (out / "matrix.md").write_text(matrix_markdown(report))
    _matrix_plot(report, out, _pyplot())
    return report


def matrix_markdown(report):
    """Changes x models: correct of all (%), unanswered counted wrong."""
    cols = _models(report)
    lines = ["| change | " + " | ".join(name for name, _ in cols) + " |",
             "|---|" + "---|" * len(cols),
             "| none | " + " | ".join(f"{100 * e['clean']['correct_of_all']:.2f}"
                                      for _, e in cols) + " |"]
    for k in cols[0][1]["changes"]:
        lines.append(f"| {k} | " + " | ".join(f"{100 * e['changes'][k]['correct_of_all']:.2f}"
                                             for _, e in cols) + " |")
    worst = [min(f["correct_of_all"] for f in e["changes"].values()) for _, e in cols]
    lines.append("| worst | " + " | ".join(f"{100 * w:.2f}" for w in worst) + " |")
    return ("Correct of all test images, % (unanswered counts as wrong), per capture change "
            "and model.\n\n" + "\n".join(lines) + "\n")
