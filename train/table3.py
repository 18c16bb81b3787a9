"""The paper's Table 3, rebuilt: one row per model, our figures beside the paper's.

Rows whose extractor had random weights are labelled so and never mixed with real ones;
B0-B7 rows without a weights file are listed as not run, with the reason.
"""
import csv
import io
import json
from pathlib import Path

from alledge.device.fileio import atomic_write_json, atomic_write_text

from .backbones import KERAS_EFFICIENTNETS, LITE, default_size
from .cnn import read_history

# Table 3 of Adiwijaya et al. 2025: accuracy (%) and parameters as printed.
PAPER = {
    "efficientnet-b0": (83.93, "4M"), "efficientnet-b1": (54.88, "6.5M"),
    "efficientnet-b2": (74.64, "7.7M"), "efficientnet-b3": (97.35, "10.7M"),
    "efficientnet-b4": (86.04, "17.6M"), "efficientnet-b5": (95.3, "28.5M"),
    "efficientnet-b6": (45.67, "40.9M"), "efficientnet-b7": (38.29, "64M"),
    "improved-cnn": (99.18, "8.1M"), "improved-cnn-500": (99.18, "8.1M"),
    "improved-cnn-augmented-fixed": (99.18, "8.1M"),
    "improved-cnn-augmented": (99.18, "8.1M"), "improved-cnn-augmented-turned": (99.18, "8.1M"),
    "improved-cnn-augmented-ema": (99.18, "8.1M"),
    "improved-cnn-augmented-smoothed": (99.18, "8.1M"),
    "improved-cnn-augmented-distilled": (99.18, "8.1M"),
    "improved-cnn-augmented-cosine": (99.18, "8.1M"),
    "improved-cnn-augmented-self-taught": (99.18, "8.1M"),
}
# One-off runs with their own make targets (hours here): Table 3 shows them when their
# directory holds a finished model, and never trains them itself.
LONG_RUNS = {"improved-cnn-500": "make cnn-500 (the paper's 500 epochs, no early stopping: "
                                 "about 3.5 hours here)",
             "improved-cnn-augmented-fixed": "make cnn-augmented-fixed (150 epochs on "
                                             "augmented captures, every training image, the "
                                             "last epoch kept: hours here)",
             "improved-cnn-augmented": "make cnn-augmented (up to 200 epochs on augmented "
                                       "captures, the best validation epoch kept: hours here)",
             "improved-cnn-augmented-turned": "make cnn-augmented-turned (the same, the clean "
                                              "half turned too: hours here)",
             "improved-cnn-augmented-ema": "make cnn-augmented-ema (the same, weights "
                                           "averaged: hours here)",
             "improved-cnn-augmented-smoothed": "make cnn-augmented-smoothed (the same, "
                                                "labels smoothed: hours here)",
             "improved-cnn-augmented-distilled": "make cnn-augmented-distilled (the same, "
                                                 "taught by the default's model: hours here)",
             "improved-cnn-augmented-cosine": "make cnn-augmented-cosine (the same, 150 epochs "
                                              "on a cosine learning rate: hours here)",
             "improved-cnn-augmented-self-taught": "make cnn-augmented-self-taught (the same, "
                                                   "taught by the plain one: up to an hour here)"}
# ...and where the finished ones are tabulated, beside this table (a folder without them
# still points there: `make reproduce` makes one)
LONG_RUN_TABLE = "; finished runs: make table3-cnn (results/paper/table3-cnn.*)"
LABELS = {"improved-cnn": "Improved CNN (early stopping)",
          "improved-cnn-500": "Improved CNN (paper recipe, 500 epochs)",
          # the recipe of record for the row, named before its run had finished: a
          # fixed schedule asks no choice of epoch of a 228-image validation part
          "improved-cnn-augmented-fixed": "Improved CNN + augmentation",
          "improved-cnn-augmented": "Improved CNN + augmentation, best validation epoch",
          "improved-cnn-augmented-turned": "Improved CNN + augmentation, clean half turned",
          "improved-cnn-augmented-ema": "Improved CNN + augmentation, weights averaged",
          "improved-cnn-augmented-smoothed": "Improved CNN + augmentation, labels smoothed",
          "improved-cnn-augmented-distilled": "Improved CNN + augmentation, distilled",
          "improved-cnn-augmented-cosine": "Improved CNN + augmentation, cosine learning rate",
          "improved-cnn-augmented-self-taught": "Improved CNN + augmentation, taught by itself"}
KERAS_WEIGHT_FILES = {name: f"{ctor.lower()}_notop.h5" for name, (ctor, _) in
                      KERAS_EFFICIENTNETS.items()}
ALL_MODELS = [*KERAS_EFFICIENTNETS, *LITE, "improved-cnn", *LONG_RUNS, "colour-baseline"]
COLUMNS = ["model", "kind", "input", "params", "weights", "accuracy", "accuracy_ci95",
           "macro_f1", "macro_f1_ci95", "paper_accuracy", "paper_params", "status"]


def run_table3(data_dir, rows, split_id, split_file, out, models=ALL_MODELS, weights_dir=None,
               random_weights=False, cnn_epochs=500, cnn_patience=30, seed=0, log=print):
    """Train every model of `models` not yet finished under `out` on this split, then write
    table3.csv, .md and .json there; returns the rows. Training errors propagate (the CLI
    turns them into one line); an interrupted run resumes, reusing finished directories."""
    from .fit import fit_baseline_model, fit_cnn_model, fit_svm_model
    from .modeldir import provenance
    Path(out).mkdir(parents=True, exist_ok=True)
    table = []
    for model in models:
        mdir = Path(out) / model_dir_name(model)
        done = existing_result(mdir, split_id)
        if done:
            log(f"{model}: reusing {mdir}")
            table.append(row(model, *done))
            continue
        if model in LONG_RUNS:
            log(f"{model}: not finished in {mdir}; {LONG_RUNS[model]}")
            done = max(map(len, read_history(mdir / "history.csv").values()))  # epochs logged
            status = (f"not finished: {done} epochs so far; " if done else "not run yet: ")
            table.append(row(model, status=status + LONG_RUNS[model] + LONG_RUN_TABLE))
            continue
        weights = "imagenet"
        if model in KERAS_EFFICIENTNETS:
            weights = b_weights(model, weights_dir, random_weights)
            if weights is None:
                log(f"{model}: not run, no ImageNet weights here")
                table.append(row(model, status="not run: needs ImageNet weights "
                                               "(--weights-dir), not downloadable here"))
                continue
        log(f"{model}: training into {mdir}")
        if model == "improved-cnn":
            fit_cnn_model(data_dir, rows, split_id, mdir, cnn_epochs, cnn_patience, seed=seed,
                          split_file=split_file)
        elif model == "colour-baseline":
            fit_baseline_model(data_dir, rows, split_id, mdir, seed=seed, split_file=split_file)
        else:
            fit_svm_model(data_dir, rows, split_id, mdir, model, weights, seed=seed,
                          split_file=split_file)
        table.append(row(model, *existing_result(mdir, split_id)))
    atomic_write_text(Path(out, "table3.csv"), to_csv(table))
    atomic_write_text(Path(out, "table3.md"), to_markdown(table))
    atomic_write_json(Path(out) / "table3.json", {"split_id": split_id, "split_file": split_file,
                                                  "provenance": provenance(), "rows": table})
    return table


def parse_models(text):
    """'a,b' -> ['a', 'b'], each a Table 3 row name; ValueError naming unknown ones."""
    wanted = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in ALL_MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(ALL_MODELS)}")
    return wanted


def model_dir_name(model):
    if model in ("improved-cnn", "colour-baseline") or model in LONG_RUNS:
        return model
    return f"{model}-svm"


def existing_result(model_dir, split_id):
    """metrics of a finished model trained on this split, else None."""
    m, i = Path(model_dir) / "metrics.json", Path(model_dir) / "model.json"
    if not (m.is_file() and i.is_file()):
        return None
    info = json.loads(i.read_text())
    return (json.loads(m.read_text()), info) if info.get("split_id") == split_id else None


def b_weights(model, weights_dir, random_weights):
    """Weights argument for a B0-B7 row, or None when it cannot run here."""
    if weights_dir:
        f = Path(weights_dir) / KERAS_WEIGHT_FILES[model]
        if f.is_file():
            return str(f)
    return "none" if random_weights else None


def row(model, metrics=None, info=None, status="ok"):
    paper_acc, paper_params = PAPER.get(model, ("", ""))
    r = {"model": model, "paper_accuracy": paper_acc, "paper_params": paper_params,
         "status": status, "kind": "", "input": "", "params": "", "weights": "",
         "accuracy": "", "accuracy_ci95": "", "macro_f1": "", "macro_f1_ci95": ""}
    if model in KERAS_EFFICIENTNETS or model in LITE:
        r["kind"], r["input"] = "extractor + SVM", default_size(model)
    elif model in LONG_RUNS:
        r["kind"] = "CNN"
    if info:
        r.update(kind={"cnn": "CNN", "svm": "extractor + SVM", "baseline": "colour + SVM"}
                 [info["kind"]], input=info["input_size"], params=info["params"],
                 weights=info.get("weights_id") or info.get("weights", ""))
    if metrics:
        r.update(accuracy=round(100 * metrics["accuracy"], 2),
                 accuracy_ci95="-".join(f"{100 * v:.2f}" for v in metrics["accuracy_ci95"]),
                 macro_f1=round(100 * metrics["macro_f1"], 2),
                 macro_f1_ci95="-".join(f"{100 * v:.2f}" for v in metrics["macro_f1_ci95"]))
        if info and info.get("weights_id") == "random":
            r["status"] = "RANDOM WEIGHTS (not comparable)"
    return r


def to_csv(rows):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def to_markdown(rows, header=""):
    cols = ["model", "kind", "input", "params", "weights", "accuracy (95% CI)",
            "macro-F1 (95% CI)", "paper accuracy", "paper params", "status"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] if header \
        else ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        acc = f"{r['accuracy']} ({r['accuracy_ci95']})" if r["accuracy"] != "" else ""
        f1 = f"{r['macro_f1']} ({r['macro_f1_ci95']})" if r["macro_f1"] != "" else ""
        params = f"{r['params']:,}" if isinstance(r["params"], int) else r["params"]
        name = f"{LABELS[r['model']]} (`{r['model']}`)" if r["model"] in LABELS else r["model"]
        vals = [name, r["kind"], r["input"], params, r["weights"], acc, f1,
                r["paper_accuracy"], r["paper_params"], r["status"]]
        lines.append("| " + " | ".join(str(v) for v in vals) + " |")
    return "\n".join(lines) + "\n"
