"""Every README figure that results/ holds, re-derived from the files (`make check-claims`).

Each test names the README passage, reads the result file the project's own command wrote,
formats the figure as the README prints it and fails when the two differ. A README edit that
changes a figure, or a re-run that changes a file, without the other, fails here.
"""
import csv
import json
import re
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
README = (ROOT / "README.md").read_text()
CLASSES = ("Benign", "Early", "Pre", "Pro")


def load(rel):
    return json.loads((RESULTS / rel).read_text())


def shipped():
    """The shipped default bundle's manifest."""
    return json.loads((ROOT / "device" / "bundles" / "default" / "manifest.json").read_text())


def stages(rel):
    """A bench file's median milliseconds, by stage."""
    return {k: v["median_ms"] for k, v in load(rel)["stages"].items()}


def flat(text):
    """README text with markdown emphasis and line breaks out of the way."""
    return " ".join(text.replace("**", "").split())


FLAT = flat(README)


def claim(text):
    assert flat(text) in FLAT, f"README does not say: {text}"


NUMBER = re.compile(r"[−+-]?\d[\d,]*(?:\.\d+)?")


def numbers(text):
    """Numbers of a README line as strings: no thousands commas, '−' as '-', no '+'."""
    return [n.replace(",", "").replace("−", "-").lstrip("+")
            for n in NUMBER.findall(text.replace("**", ""))]


def table_row(*cells, after=None):
    """The README table line whose first cells are `cells` (emphasis ignored), the first one
    after the text `after` when given."""
    text = README[README.index(after):] if after else README
    for line in text.splitlines():
        got = [c.strip().replace("**", "") for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and got[:len(cells)] == list(cells):
            return line
    raise AssertionError(f"README has no table row starting {' | '.join(cells)}")


def assert_row(row, want):
    """The row's numbers hold `want` (strings), in order."""
    got = numbers(row)
    it = iter(got)
    missing = [w for w in want if not any(g == w for g in it)]
    assert not missing, f"{row}\n  wants {want}\n  has   {got}"


def pct(x, nd=2):
    return f"{100 * x:.{nd}f}"


def ci(text):
    return text.replace("–", "-").split("-")


# --- the dataset -------------------------------------------------------------------------

def test_data_check_figures():
    """`alledge data check ... --json > results/data-check.json`."""
    d = load("data-check.json")
    c = d["counts"]
    claim(f"All {d['usable']} files decode: " + ", ".join(f"{k} {c[k]}" for k in CLASSES))
    exact = d["exact_duplicates"]
    sizes = {len(g["paths"]) for g in exact}
    classes = {cl for g in exact for cl in g["classes"]}
    assert sizes == {2} and classes == {"Pro"}
    claim(f"{len(exact)} groups of 2 files, so {sum(len(g['paths']) - 1 for g in exact)} "
          "redundant files, all in `Pro/`")
    near = d["near_duplicates"]
    bits = [sum(1 for p in near if p["bits"] == b) for b in (0, 2, 4, 6)]
    claim(f"{len(near)} pairs ({bits[0]} at 0 bits, {bits[1]} at 2, {bits[2]} at 4, "
          f"{bits[3]} at 6)")
    per_class = {k: sum(1 for p in near if p["classes"] == [k]) for k in CLASSES}
    claim("(" + ", ".join(f"{k} {per_class[k]}" for k in CLASSES) + "), none across classes")
    # groups: union of exact and near pairs
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x
    for g in exact + near:
        for p in g["paths"][1:]:
            parent[find(p)] = find(g["paths"][0])
    groups = {}
    for p in list(parent):
        groups.setdefault(find(p), []).append(p)
    pairs = sum(1 for g in groups.values() if len(g) == 2)
    triples = sum(1 for g in groups.values() if len(g) == 3)
    claim(f"they form {len(groups)} groups of identical or near-identical images ({pairs} "
          f"pairs, {triples} triples; {sum(map(len, groups.values()))} images)")


def _split(name):
    with open(RESULTS / "splits" / name, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", ["paper.csv", "grouped.csv"])
def test_split_counts(name):
    rows = _split(name)
    want = []
    for s in ("train", "test"):
        counts = [sum(1 for r in rows if r["subset"] == s and r["label"] == k) for k in CLASSES]
        want += [str(n) for n in counts] + [str(sum(counts))]
    assert_row(table_row(f"`{name}`"), want)


def test_the_paper_splits_exact_leak():
    rows = _split("paper.csv")
    train = {r["sha256"] for r in rows if r["subset"] == "train"}
    leak = sum(1 for r in rows if r["subset"] == "test" and r["sha256"] in train)
    claim(f"{leak} test images have a byte-identical copy in the training part")
    grouped = _split("grouped.csv")
    train = {r["sha256"] for r in grouped if r["subset"] == "train"}
    assert not any(r["sha256"] in train for r in grouped if r["subset"] == "test")


# --- measurements behind the text --------------------------------------------------------

def test_synthetic_set_learnability():
    """results/measurements/test_data_synth.json (`make measure`)."""
    v = load("measurements/test_data_synth.json")["values"]
    s = [pct(v[f"cv_accuracy_seed{i}"], 1) for i in range(3)]
    claim(f"{s[0]}% with seed 0 ({s[1]}% seed 1, {s[2]}% seed 2; chance is 25%)")


def test_lite_port_difference():
    """results/measurements/test_lite_port.json (`make measure`): the largest difference of
    the three models, rounded up to two digits, is the README's 'within' figure."""
    v = load("measurements/test_lite_port.json")["values"]
    worst = max(v[k] for k in v if k.startswith("max_abs_diff_"))
    mantissa, exponent = f"{worst:.1e}".split("e")
    if float(f"{worst:.1e}") < worst:  # 'within' rounds up
        mantissa = f"{float(mantissa) + 0.1:.1f}"
    claim(f"within {mantissa}e{int(exponent)} (`tests/test_lite_port.py`")


def test_float32_conversion_difference():
    """results/measurements/test_convert_real.json: float32 TFLite vs Keras on real images."""
    v = load("measurements/test_convert_real.json")["values"]
    assert max(v["float32_vs_keras_lite0"], v["float32_vs_keras_cnn"]) <= 1e-4
    claim("its outputs equal Keras' within 1e-4 on real images")


def test_cnn_training_speed():
    """results/paper/models/improved-cnn/train.log: every epoch's seconds and img/s."""
    log = (RESULTS / "paper" / "models" / "improved-cnn" / "train.log").read_text()
    epochs = re.findall(r"^epoch \d+: (\d+)s, ([\d.]+) img/s", log, re.M)
    assert len(epochs) >= 10
    secs = [int(s) for s, _ in epochs]
    rates = [float(r) for _, r in epochs]
    claim(f"trains it at {min(rates):.1f}–{max(rates):.1f} img/s ({min(secs)}–{max(secs)} s "
          "an epoch")


def test_cnn_parameters_and_run():
    info = load("paper/models/improved-cnn/model.json")
    m = load("paper/models/improved-cnn/metrics.json")
    claim(f"has {info['params']:,} parameters at 224×224")
    claim(f"{pct(m['accuracy'])}%, the weights of the best validation epoch "
          f"({info['best_epoch']}; early stopping after {info['patience']} epochs without "
          f"improvement, {info['epochs_run']} epochs in {info['train_seconds'] / 60:.1f} min)")


# --- Table 3 -----------------------------------------------------------------------------

TABLE3 = {"efficientnet-lite0": "EfficientNet-Lite0 + SVM", "efficientnet-lite1":
          "EfficientNet-Lite1 + SVM", "efficientnet-lite2": "EfficientNet-Lite2 + SVM",
          "improved-cnn": "Improved CNN", "colour-baseline": "colour baseline"}


def _table3(split):
    return {r["model"]: r for r in load(f"{split}/table3.json")["rows"] if r["status"] == "ok"}


def _kernel(model):
    info = load(f"paper/models/{model}-svm/model.json")
    k = info["svm"]["best_params"]["kernel"]
    return {"linear": "linear", "rbf": "RBF"}[k]


@pytest.mark.parametrize("model", list(TABLE3))
def test_table3_row(model):
    r = _table3("paper")[model]
    label = TABLE3[model]
    if model.startswith("efficientnet"):
        label += f" ({_kernel(model)})"
    elif model == "colour-baseline":
        label += " (RGB histograms + SVM)"
    row = table_row(label)
    assert_row(row, [str(r["input"]), str(r["params"]), f"{r['accuracy']:.2f}",
                     *ci(r["accuracy_ci95"]), f"{r['macro_f1']:.2f}", *ci(r["macro_f1_ci95"])])


@pytest.mark.parametrize("model", list(TABLE3))
def test_grouped_split_row(model):
    paper, grouped = _table3("paper")[model], _table3("grouped")[model]
    row = table_row(TABLE3[model], after="| model | paper split | grouped split |")
    assert_row(row, [f"{paper['accuracy']:.2f}", *ci(paper["accuracy_ci95"]),
                     f"{grouped['accuracy']:.2f}", *ci(grouped["accuracy_ci95"])])


# --- accuracy vs. quantization -------------------------------------------------------------

REPORT = {"efficientnet-lite0-svm": "Lite0 + SVM", "efficientnet-lite1-svm": "Lite1 + SVM",
          "efficientnet-lite2-svm": "Lite2 + SVM", "improved-cnn": "Improved CNN"}


def _report(split):
    return {(r["model"], r["quant"]): r for r in load(f"{split}/report.json")["rows"]}


def _report_rows():
    out = []
    for (model, quant) in _report("paper"):
        try:
            table_row(REPORT[model], quant)
        except AssertionError:
            continue  # the README shows some levels; report.md has them all
        out.append((model, quant))
    return out


@pytest.mark.parametrize("model,quant", _report_rows())
def test_quantization_row(model, quant):
    r = _report("paper")[model, quant]
    lo, hi = r["accuracy_ci95"]
    want = [f"{r['size_kb']:.0f}", pct(r["accuracy"]), pct(lo), pct(hi)]
    if quant != "float32":
        want += [f"{-100 * r['drop_vs_float32']:.2f}".replace("-0.00", "0.00"),
                 pct(r["agreement_vs_float32"])]
    want += [f"{r['latency_ms_1t']:.1f}", f"{r['latency_ms_all']:.1f}"]
    want += [pct(r[k]) for k in ("acc_upright_views", "acc_rot90", "acc_rot180", "acc_rot270",
                                 "acc_flip")]
    assert_row(table_row(REPORT[model], quant), want)


def test_quantization_summary():
    """'What it shows' under the report table: int8's speed-up, dynamic-range's slow-down,
    what a view costs, and the samples the report read them on."""
    rows = _report("paper")
    models = sorted({m for m, _ in rows})
    lite = [m for m in models if m.startswith("efficientnet-lite")]
    speed = [rows[m, "float32"]["latency_ms_1t"] / rows[m, "int8"]["latency_ms_1t"] for m in models]
    slower = [rows[m, "dynamic"]["latency_ms_1t"] / rows[m, "float32"]["latency_ms_1t"]
              for m in lite]
    claim(f"{min(speed):.1f}–{max(speed):.1f}× the speed at one thread")
    claim(f"({min(slower):.1f}–{max(slower):.1f}× slower than\nfloat32)")
    cost = lambda ms: max(100 * (r["acc_upright_views"] - r["acc_min_view"])
                          for (m, _), r in rows.items() if m in ms)
    claim(f"costs the Lite models at most {cost(lite):.0f} points and the\nCNN, which never saw "
          f"a turned image, up to {cost(['improved-cnn']):.0f};")
    n = {(r["view_images"], r["latency_images_1t"]) for r in rows.values()}
    assert n == {(200, 100)}  # the README's "sample of 200" and "sample of 100"
    minutes = _reproduce_minutes()
    claim(f"to {minutes['paper-report']:.1f} (paper) and {minutes['grouped-report']:.1f} (grouped)")


def _reproduce_minutes():
    """`make reproduce`'s minutes, by step (results/reproduce-time.json)."""
    return {s["step"]: s["minutes"] for s in load("reproduce-time.json")["steps"]}


def test_make_reproduce_minutes():
    """The reproduce paragraph: results/reproduce-time.json, written by `make reproduce`."""
    t, m = load("reproduce-time.json"), _reproduce_minutes()
    assert "cold feature and weights cache" in t["note"] and "fresh clone" in t["note"]
    assert t["provenance"]["date"].startswith("2026-11-27")
    claim(f"on 2026-11-27 it took {t['total_minutes']:.1f} minutes on this 2-core CPU")
    claim(f"Table 3 {m['paper-table3']:.1f} minutes on the paper split")
    claim(f"the report {m['paper-report']:.1f}, Table 3 on the grouped split "
          f"{m['grouped-table3']:.1f} (its features cached by then), its report "
          f"{m['grouped-report']:.1f}.")
    cnn = {s: load(f"{s}/models/improved-cnn/model.json")["train_seconds"] / 60
           for s in ("paper", "grouped")}
    features = sum(load(f"paper/models/efficientnet-lite{k}-svm/model.json")["feature_seconds"]
                   for k in (0, 1, 2)) / 60
    claim(f"(the Improved CNN about {cnn['paper']:.0f} of them, the Lite0–2 features about "
          f"{features:.0f})")
    claim(f"the two Improved CNN trainings alone take {sum(cnn.values()):.0f} minutes")
    assert t["total_minutes"] <= 60.0  # "met to the minute, not under it"


def test_report_rows_shown():
    assert len(_report_rows()) >= 10


def test_grouped_report_sentence():
    g = _report("grouped")
    lite0, cnn = g["efficientnet-lite0-svm", "int8"], g["improved-cnn", "int8"]
    claim(f"Lite0 + SVM int8 {pct(lite0['accuracy'])}%, agreeing with float32 on "
          f"{pct(lite0['agreement_vs_float32'])}%; the CNN's int8 {pct(cnn['accuracy'])}%.")


# --- the default bundle ----------------------------------------------------------------------

def test_default_bundle_figures():
    """The shipped bundle: the fine-tuned Lite0's own figures, and the previous default's."""
    m = load("finetune/model/metrics.json")
    info = load("finetune/model/model.json")
    manifest = shipped()
    claim(f"(epoch {info['best_epoch']} of {info['epochs_run']}, {info['train_seconds'] / 60:.0f} "
          f"minutes here, `results/finetune/model/`). Keras float32: {pct(m['accuracy'])}% on the "
          f"paper test split; the int8 bundle without its gate {pct(manifest['metrics']['accuracy'])}%.")
    assert manifest["source_model"]["backbone"] == "efficientnet-lite0" and manifest["kind"] == "cnn"
    # the previous default, Lite0 + SVM int8: the report's bundle
    r = _report("paper")["efficientnet-lite0-svm", "int8"]
    claim(f"({pct(r['accuracy'])}% on the test split before any gate;")


def test_default_bundle_evaluation_line():
    """The evaluate command's figures, as the README quotes them."""
    d = load("default/paper-test.json")
    recalls = ", ".join(f"{c} {pct(d['per_class'][c]['recall'], 1)}%" for c in CLASSES)
    claim(f"accuracy {pct(d['accuracy'])}% of all {d['n']} test images, "
          f"{pct(d['answered_fraction'], 1)}% answered ({pct(d['accuracy_answered'])}% of those "
          f"answered right); recall {recalls}")


# --- on the device -----------------------------------------------------------------------------

BENCH = [("Lite0 + SVM int8 (first default), 224×224 JPEG", "1", "default-1t.json"),
         ("Lite0 + SVM int8 (first default), 224×224 JPEG", "2", "default-2t.json"),
         ("Lite0 + SVM int8 (first default), 640×480 camera-size JPEG", "1",
          "default-1t-640x480.json"),
         ("Improved CNN int8, 224×224 JPEG", "1", "improved-cnn-int8-1t.json"),
         ("Improved CNN int8, 224×224 JPEG", "2", "improved-cnn-int8-2t.json"),
         ("Lite0 + SVM int8 (first default), 224×224 JPEG, tflite-runtime 2.14", "1",
          "default-1t-tflite-runtime.json"),
         ("Lite0 + SVM int8 (first default), 224×224 JPEG, tflite-runtime 2.14", "2",
          "default-2t-tflite-runtime.json")]


@pytest.mark.parametrize("label,threads,name", BENCH)
def test_bench_row(label, threads, name):
    b = load(f"bench/{name}")
    assert str(b["threads"]) == threads
    s = b["stages"]
    want = [threads, f"{s['decode']['median_ms']:.2f}", f"{s['preprocess']['median_ms']:.2f}",
            f"{s['invoke']['median_ms']:.2f}", f"{s['invoke']['p90_ms']:.2f}"]
    if "svm" in s:
        want.append(f"{s['svm']['median_ms']:.2f}")
    want += [f"{s['end_to_end']['median_ms']:.2f}", f"{s['end_to_end']['p90_ms']:.2f}"]
    assert_row(table_row(label, threads), want)


def test_tflite_runtime_slowdown():
    fast = load("bench/default-1t.json")["stages"]["invoke"]["median_ms"]
    slow = load("bench/default-1t-tflite-runtime.json")["stages"]["invoke"]["median_ms"]
    claim(f"about {int(slow / fast)}× slower on `tflite-runtime` 2.14")


# --- real captures (`python -m alledge.convert.captures`, `alledge bench`) --------------------

CAPTURE_ROWS = [("every 10th test image (the check's; the zooms were chosen on it)",
                 "check_subset", "estimated"),
                ("every 10th from the 6th (held out)", "held_out_subset", "estimated"),
                ("the check's, the true scale given (`--rbc-diameter-px`, or a calibration)",
                 "check_subset", "given_true_scale"),
                ("held out, the true scale given", "held_out_subset", "given_true_scale")]


@pytest.mark.parametrize("label,subset,how", CAPTURE_ROWS)
def test_captures_row(label, subset, how):
    d = load("captures/captures.json")[subset]
    want = [pct(d["originals"]["correct_of_all"], 1)] if how == "estimated" else []
    want += [pct(d[z][how]["correct_of_all"], 1) for z in ("x2", "x3", "x4.5", "x5")]
    assert_row(table_row(label), want)


def test_scale_estimate_and_capture_speed_sentences():
    s = load("captures/scale.json")
    ds, bc = s["dataset"]["error_vs_training_median"], s["bccd"]["error_vs_boxes"]
    claim(f"on the 3256 dataset fields {pct(ds['median_abs'], 1)}% off the training median "
          f"(median absolute; signed +{pct(ds['median'], 1)}%, 90th percentile "
          f"{pct(ds['p90_abs'], 0)}%)")
    claim(f"against BCCD's red-cell boxes {pct(bc['median_abs'], 1)}% (median absolute; signed "
          f"−{pct(-bc['median'], 1)}%, 90th percentile {pct(bc['p90_abs'], 0)}%; "
          f"{s['bccd']['no_estimate']} of {s['bccd']['images']} photos without an estimate)")
    big = stages("captures/bench-12mp.json")
    small = load("captures/bench-224.json")["stages"]["end_to_end"]["median_ms"]
    claim(f"the check's 12 MP JPEG {big['end_to_end']:.1f} ms end to end (decode at 1/4 "
          f"{big['decode']:.1f} ms, quality {big['quality']:.1f}, scale {big['scale']:.1f}, tiling "
          f"{big['tiling']:.1f}, one model run {big['invoke']:.1f}) against {small:.1f} ms for a "
          f"224x224 JPEG: {big['end_to_end'] / small:.1f}x")


# --- robustness (`alledge stress`) --------------------------------------------------------------

def _stress(name):
    return next(iter(load(f"stress/{name}/stress.json")["bundles"].values()))


def _baseline(split):
    return load(f"stress/colour-baseline/{split}/stress.json")["baselines"]["colour-histogram-svm"]


def _drop(stress, change):
    """The points a change at moderate severity costs, as the README writes them."""
    return f"{100 * stress['changes'][change + '/moderate']['drop']:.2f}"


def _moderate(stress):
    """A bundle's changes at moderate severity, by change name."""
    return {k.split("/")[0]: v for k, v in stress["changes"].items() if k.endswith("/moderate")}


def _worst_moderate(stress):
    """A bundle's worst correct-of-all over the moderate changes: the rule for the default."""
    return min(v["correct_of_all"] for v in _moderate(stress).values())


def _worst_change(stress):
    """The name of the moderate change behind _worst_moderate."""
    moderate = _moderate(stress)
    return min(moderate, key=lambda k: moderate[k]["correct_of_all"])


def test_robustness_tables_are_the_stress_files():
    b, prev, base = _stress("paper"), _stress("previous-default"), _baseline("paper")
    cnn, prev_ft = _stress("improved-cnn-augmented"), _stress("previous-finetuned-retry")
    c = b["clean"]
    assert_row(table_row("none (JPEG 95)"), [pct(prev["clean"]["correct_of_all"]),
                                              pct(prev_ft["clean"]["correct_of_all"]),
                                              pct(c["correct_of_all"]),
                                              pct(c["accuracy_of_answered"]),
                                              pct(base["clean"]["correct_of_all"]),
                                              pct(cnn["clean"]["correct_of_all"])])
    for key, v in b["changes"].items():
        if not key.endswith("/moderate"):
            continue
        name = key.split("/")[0]
        assert_row(table_row(name, after="| change (moderate) | out of domain |"),
                   [pct(v["out_of_domain"], 1), pct(v["rejected"], 1),
                    pct(v["accuracy_of_answered"]), pct(v["correct_of_all"])])
        assert_row(table_row(name, after="| change (moderate) | first default"),
                   [pct(prev["changes"][key]["correct_of_all"]),
                    pct(prev_ft["changes"][key]["correct_of_all"]), pct(v["correct_of_all"]),
                    f"{100 * v['drop']:.2f}", pct(v["accuracy_of_answered"]),
                    pct(base["changes"][key]["correct_of_all"]),
                    pct(cnn["changes"][key]["correct_of_all"])])
    moderate = _moderate(b)
    drops = sorted(v["drop"] for k, v in moderate.items() if k not in ("exposure_up", "zoom_in"))
    d = lambda k: _drop(b, k)
    claim(f"What the default answers stays right under every moderate change "
          f"({100 * min(v['accuracy_of_answered'] for v in moderate.values()):.1f}% of the "
          f"answered\nor more), and it answers "
          f"{100 * min(v['answered'] for v in moderate.values()):.1f}% or more of the fields "
          f"under each: a moderate change costs it at most {100 * drops[-1]:.2f} points but for "
          f"exposure x1.15 ({d('exposure_up')}) and a 1.25 zoom ({d('zoom_in')}, mostly wrong "
          f"answers: {pct(moderate['zoom_in']['accuracy_of_answered'])}% of the answered right).")
    for key, label in (("bccd", "BCCD (another lab and microscope, 640x480)"),
                       ("segmented", "the dataset's `Segmented/` (black background)"),
                       ("synthetic", "synthetic smears (`alledge data synth`)")):
        x = b["other"][key]
        assert_row(table_row(label), [str(x["n"]), pct(x["answered"], 1),
                                      pct(x["out_of_domain"], 1), pct(x["rejected"], 1)])
    c = b["clean"]
    g = _stress("grouped")["clean"]
    claim(f"Prediction sets: coverage {pct(c['set_coverage'])}% at nominal 95%, mean size "
          f"{c['mean_set_size']:.2f}, on the paper test split (JPEG-95 re-encoded; "
          f"`results/stress/paper/`); the first default's: {pct(g['set_coverage'])}% on the "
          "grouped test split")
    assert_row(table_row("the same, re-encoded as JPEG 95 (`alledge stress`)"),
               [str(c["n"]), pct(c["answered"]), pct(c["out_of_domain"]), pct(c["rejected"]),
                pct(c["accuracy_of_answered"])])


def test_the_candidate_default_paragraph():
    """The candidate as it was measured, before the single-field zoom retry, against the
    previous default measured the same way; it is the shipped default now."""
    from alledge.device.quality import Thresholds
    cand, b = _stress("candidate-gain18"), _stress("previous-finetuned")
    info = load("candidate-gain18/model.json")
    assert info["max_gain"] == 1.8 and "--max-gain 1.8" in info["provenance"]["command"]
    assert load("finetune/model/model.json") == info          # the shipped default's model
    # and its bundle, shipped until the white point was limited to overexposed fields
    assert cand["bundle"] == load("default/full-white-point-paper-test.json")["bundle"]
    claim(f"Keras {pct(load('candidate-gain18/metrics.json')['accuracy'])}% on the paper test split")
    ev, ev0 = load("candidate-gain18/int8-gated-test.json"), load("default/previous-paper-test.json")
    claim(f"gated int8 {pct(ev['accuracy'])}% correct of all on the test files "
          f"(`int8-gated-test.json`; the previous default {pct(ev0['accuracy'])}%).")
    q = load("candidate-gain18/bundle-gates.json")["quality"]
    assert "later gate" in q["handled_well"]
    claim(f"clipped up to {q['max_clipped']:g} (the previous default kept the generic "
          f"{Thresholds().max_clipped:g}), and "
          f"contrast {q['min_contrast']:g} and brightness {q['min_brightness']:g}, their floors then")
    d = _drop
    claim(f"Exposure x1.15 costs it {d(cand, 'exposure_up')} points (the previous default "
          f"{d(b, 'exposure_up')}), blur {d(cand, 'blur')} ({d(b, 'blur')}), zoom 0.8 "
          f"{d(cand, 'zoom_out')} ({d(b, 'zoom_out')}); but a 1.25 zoom {d(cand, 'zoom_in')} "
          f"({d(b, 'zoom_in')}), most of it out-of-domain flags "
          f"({pct(cand['changes']['zoom_in/moderate']['out_of_domain'], 1)}% of those")
    assert _worst_moderate(cand) > _worst_moderate(b)     # "it edges the default"
    claim(f"Its worst moderate case is {pct(_worst_moderate(cand))}%, against the previous default's "
          f"{pct(_worst_moderate(b))}%; clean after JPEG 95 it\n  is "
          f"{pct(cand['clean']['correct_of_all'])}% "
          f"({pct(b['clean']['correct_of_all'])}%), and it answers "
          f"{pct(cand['other']['synthetic']['answered'], 1)}% of the synthetic smears "
          f"({pct(b['other']['synthetic']['answered'], 1)}%).")


def test_the_default_against_the_previous_one_on_the_same_device_code():
    # the default as chosen then, its white point on every field (results/stress/paper/ then)
    b, pr = _stress("full-white-point"), _stress("previous-finetuned-retry")
    assert pr["bundle"].endswith("@29ded1b4f2df")     # the previous default as it was shipped
    d = _drop
    assert _worst_change(b) == "zoom_in" and _worst_change(pr) == "exposure_up"
    assert _worst_moderate(b) > _worst_moderate(pr)   # the worst-case rule's choice
    claim(f"- Clean after JPEG 95: {pct(b['clean']['correct_of_all'])}% (the previous default "
          f"{pct(pr['clean']['correct_of_all'])}%).")
    claim(f"- Worst moderate case: {pct(_worst_moderate(b))}%, a 1.25 zoom ({d(b, 'zoom_in')} "
          f"points), against the previous default's {pct(_worst_moderate(pr))}%, exposure x1.15 "
          f"({d(pr, 'exposure_up')} points).")
    claim(f"- Exposure x1.15 {d(b, 'exposure_up')} ({d(pr, 'exposure_up')}), JPEG 60 "
          f"{d(b, 'jpeg')} ({d(pr, 'jpeg')}), blur {d(b, 'blur')} ({d(pr, 'blur')}), zoom 0.8 "
          f"{d(b, 'zoom_out')} ({d(pr, 'zoom_out')}), a 1.25 zoom {d(b, 'zoom_in')} "
          f"({d(pr, 'zoom_in')}).")
    syn = lambda x: f"{100 * x['other']['synthetic']['answered']:.1f}%"
    claim(f"- Synthetic smears answered: {syn(b)} ({syn(pr)});")
    assert all(x["other"][k]["answered"] == 0 for x in (b, pr) for k in ("bccd", "segmented"))
    claim(f"with the single-field zoom retry below it is still exposure x1.15, "
          f"{pct(_worst_moderate(pr))}%")
    g = _stress("grouped-full-white-point")
    claim(f"so exposure x1.15 still costs\nit {_drop(g, 'exposure_up')} points there")


BEFORE_RESCUE_RATIO = "3795bf9"  # the last commit whose stress files were written without it


def test_the_rescue_ratio_paragraph():
    """What RESCUE_RATIO changed, each figure before it from git, after it from results/."""
    from alledge.device.frames import RESCUE_RATIO
    assert RESCUE_RATIO == 2.0                                        # "twice (or half)"
    before = lambda name: next(iter(_at(BEFORE_RESCUE_RATIO,
                                        f"stress/{name}/stress.json")["bundles"].values()))
    syn = lambda x: pct(x["other"]["synthetic"]["answered"], 1)
    # measured on the default and the grouped recipe before their white point was limited to
    # overexposed fields (their stress folders then: paper, grouped-finetuned)
    b, b0 = _stress("full-white-point"), before("paper")
    g, g0 = _stress("grouped-full-white-point"), before("grouped-finetuned")
    assert b["bundle"] == b0["bundle"] and g["bundle"] == g0["bundle"]  # the same models
    claim(f"the default of the day (its white point on every field) answered {syn(b0)}% of them (git show\n{BEFORE_RESCUE_RATIO}:"
          f"results/stress/paper/stress.md), where the previous default without the retry\n"
          f"answered {syn(_stress('previous-finetuned'))}% and with it "
          f"{syn(before('previous-finetuned-retry'))}%.")
    within = load("measurements/test_scale_real.json")["values"][
        "training_fields_within_rescue_ratio"]
    claim(f"({pct(within)}% of the 2279 training\nfields read within the ratio, "
          f"`tests/test_scale_real.py`)")
    claim(f"the default answers {syn(b)}% of the\nsynthetic smears, the grouped split's recipe "
          f"{syn(g)}% ({syn(g0)}%),")
    cost = lambda k: round(100 * (b0["changes"][f"{k}/moderate"]["correct_of_all"]
                                  - b["changes"][f"{k}/moderate"]["correct_of_all"]), 2)
    assert (cost("zoom_in"), cost("vignette")) == (0.1, 0.4)  # "0.1 point (one field)", "0.4"
    others = [cost(k.split("/")[0]) for k in b["changes"] if k.endswith("/moderate")
              and k.split("/")[0] not in ("zoom_in", "vignette")]
    assert max(others) <= 0.1 + 1e-9       # no other moderate change moved more than a field
    assert b["clean"] == b0["clean"]                                  # clean: untouched
    pr = _stress("previous-finetuned-retry")
    assert syn(pr) == syn(_stress("previous-finetuned"))
    claim(f"the previous default {syn(pr)}% (as\nwithout the retry)")


def test_the_candidate_on_the_grouped_split():
    cand, base = _stress("candidate-gain18-grouped"), _stress("grouped-previous-finetuned")
    keras = load("candidate-gain18/grouped-metrics.json")["accuracy"]
    assert load("grouped/finetune-model/metrics.json") == load("candidate-gain18/grouped-metrics.json")
    keras0 = load("grouped/previous-finetune-model/metrics.json")["accuracy"]
    ev = load("candidate-gain18/grouped-int8-gated-test.json")["accuracy"]
    ev0 = load("grouped/previous-finetuned-int8-gated-test.json")["accuracy"]
    claim(f"Keras\n  {pct(keras)}% (the previous recipe {pct(keras0)}%), gated int8 {pct(ev)}% "
          f"correct of all ({pct(ev0)}%)")
    up = lambda x: _drop(x, "exposure_up")
    clipped = load("candidate-gain18/grouped-bundle-gates.json")["quality"]["max_clipped"]
    claim(f"its\n  fitted gate keeps clipped at {clipped:g}, so exposure x1.15 still costs "
          f"{up(cand)} points ({up(base)})")
    claim(f"worst moderate case is better, {pct(_worst_moderate(cand))}% against "
          f"{pct(_worst_moderate(base))}%")
    claim(f"answers {pct(cand['other']['synthetic']['answered'], 1)}% of the synthetic smears "
          f"({pct(base['other']['synthetic']['answered'], 1)}%)")


def test_the_improved_cnn_s_column_and_the_matrix():
    cnn, b = _stress("improved-cnn-augmented"), _stress("paper")
    info = load("paper/models/improved-cnn-augmented/model.json")
    moderate = lambda x: {k: v for k, v in x["changes"].items() if k.endswith("/moderate")}
    c, up = cnn["clean"], "exposure_up/moderate"
    drops = sorted(v["drop"] for k, v in moderate(cnn).items() if k != up)
    claim(f"{pct(c['correct_of_all'])}% correct of all clean ({pct(c['answered'])}% answered, "
          f"{pct(c['accuracy_of_answered'])}% of those right)")
    claim(f"at most {100 * drops[-1]:.2f} points to any moderate change but exposure x1.15 "
          f"({100 * cnn['changes'][up]['drop']:.2f}")
    claim(f"its worst moderate case, {pct(_worst_moderate(cnn))}%, is under the default's "
          f"{pct(_worst_moderate(b))}%")
    assert _worst_moderate(cnn) < _worst_moderate(b)   # the README's reason it is not the default
    claim(f"answers {pct(cnn['other']['synthetic']['answered'], 1)}% of the synthetic smears "
          f"(the default {pct(b['other']['synthetic']['answered'], 1)}%)")
    assert info["white_point"] and cnn["bundle"].startswith("improved-cnn-augmented-int8@")
    m = load("stress/matrix/stress.json")
    assert set(m["bundles"]) == {b["bundle"], cnn["bundle"], _stress("previous-default")["bundle"],
                                 _stress("previous-finetuned-retry")["bundle"]}
    assert list(m["baselines"]) == ["colour-histogram-svm"]
    for e in (b, cnn):                    # the matrix carries the runs' own figures
        assert m["bundles"][e["bundle"]]["changes"] == e["changes"]
    g = load("stress/matrix-grouped/stress.json")
    assert list(g["bundles"]) == [_stress("grouped-finetuned")["bundle"],
                                  _stress("grouped-previous-finetuned")["bundle"]]
    assert g["baselines"]["colour-histogram-svm"]["changes"] == _baseline("grouped")["changes"]


def test_the_default_s_white_point_is_the_one_shipped():
    wp = shipped()["preprocessing"]["white_point"]
    claim("one ([" + ", ".join(f"{v:.0f}" for v in wp["target"]) + "] for the default;")


def test_the_white_point_comparison():
    b, n = _stress("previous-finetuned"), _stress("no-white-point")  # the same model, both
    up, wb = "exposure_up/moderate", "white_balance/moderate"
    claim(f"clean {pct(n['clean']['correct_of_all'])}% correct of all, exposure x1.15 "
          f"{pct(n['changes'][up]['correct_of_all'])}% ({pct(n['changes'][up]['accuracy_of_answered'])}% "
          f"of the answered right, against {pct(b['changes'][up]['accuracy_of_answered'])}% with it), "
          f"white balance {pct(n['changes'][wb]['correct_of_all'])}% "
          f"({pct(b['changes'][wb]['correct_of_all'])}% with it)")
    assert _worst_moderate(b) > _worst_moderate(n)   # the README's reason for keeping the white point


def test_the_colour_baseline_sentence():
    p, g = _baseline("paper"), _baseline("grouped")
    worst = lambda x: min(v["correct_of_all"] for v in x["changes"].values())
    claim(f"clean {pct(g['clean']['correct_of_all'])}%, worst {pct(worst(g))}%;")
    m = lambda k: _drop(p, k)
    claim(f"loses {m('exposure_down')} points to a 0.85 exposure and {m('white_balance')} to a "
          "white-balance change")
    best_clean = max(x["clean"]["correct_of_all"] for x in (_stress("paper"), _stress("previous-default")))
    assert p["clean"]["correct_of_all"] >= best_clean    # "as good clean as the best model"


def test_the_default_s_recipe_on_the_grouped_split():
    e = load("grouped/finetuned-int8-gated-test.json")
    keras = load("grouped/finetune-model/metrics.json")["accuracy"]
    claim(f"{pct(keras)}% (Keras) on its test part; its int8 bundle with the default's gates")
    claim(f"{pct(e['accuracy'])}% of all, {pct(e['answered_fraction'])}% answered and\n"
          f"{pct(e['accuracy_answered'])}% of those right")
    assert "--white-point-overexposed" in _recipe_convert_flags()    # the recipe's bundle
    n = e["n"]
    assert_row(table_row("grouped split, test images (the default's recipe retrained on its "
                         "training part: `runs/grouped`, not shipped; "
                         "`results/grouped/finetuned-int8-gated-test.json`)"),
               [str(n), pct(e["answered_fraction"]),
                pct(e["statuses"].get("out_of_domain", 0) / n),
                str(e["statuses"].get("rejected", 0)), pct(e["accuracy_answered"])])
    e0 = load("grouped/previous-finetuned-int8-gated-test.json")
    keras0 = load("grouped/previous-finetune-model/metrics.json")["accuracy"]
    claim(f"The previous\nrecipe there: {pct(keras0)}% (Keras) and {pct(e0['accuracy'])}% of all")
    ew = load("grouped/full-white-point-int8-gated-test.json")
    # who reaches 98.5%: the previous recipe in Keras, this one through the device
    assert max(keras, ew["accuracy"], e0["accuracy"]) < 0.985 <= min(keras0, e["accuracy"])
    claim(f"With the white point on every\nfield its int8 bundle reached {pct(ew['accuracy'])}%")
    g, g0, b = _stress("grouped-finetuned"), _stress("grouped-previous-finetuned"), _stress("paper")
    m = _drop
    right = lambda x, k: pct(x["changes"][f"{k}/moderate"]["accuracy_of_answered"])
    zoom = g["changes"]["zoom_in/moderate"]
    assert zoom["answered"] > 0.995                                # "nearly all wrong answers"
    claim(f"starts from {pct(g['clean']['correct_of_all'])}% and a 1.25 zoom costs it "
          f"{m(g, 'zoom_in')} points, nearly all of them wrong answers\n({pct(zoom['answered'])}% "
          f"answered, {right(g, 'zoom_in')}% of those right); exposure x1.15 costs "
          f"{m(g, 'exposure_up')}")
    claim(f"JPEG 60 {m(g, 'jpeg')}, a 0.8 zoom {m(g, 'zoom_out')}, blur {m(g, 'blur')}.")
    claim(f"Its worst moderate case is {pct(_worst_moderate(g))}% (exposure x1.15), against the "
          f"previous recipe's {pct(_worst_moderate(g0))}% (a 1.25 zoom, {m(g0, 'zoom_in')} points;")
    syn = lambda x: pct(x["other"]["synthetic"]["answered"], 1)
    claim(f"it answers\n{syn(g)}% of the synthetic smears ({syn(g0)}%; with the white point on "
          f"every field {syn(_stress('grouped-full-white-point'))}%, 50.5% before RESCUE_RATIO)")
    claim(f"judges drawn smears worse than the default's ({syn(b)}%)")
    # the bar on the paper split: every moderate change within a point but two
    over = {k for k, v in b["changes"].items() if k.endswith("/moderate") and v["drop"] > 0.01}
    assert over == {"zoom_in/moderate", "exposure_up/moderate"}
    up = b["changes"]["exposure_up/moderate"]
    claim(f"under every change but exposure x1.15 ({m(b, 'exposure_up')} points; "
          f"{pct(up['answered'])}% answered, {pct(up['accuracy_of_answered'])}%\nof those right) "
          f"and a 1.25 zoom ({m(b, 'zoom_in')}, mostly wrong answers: {right(b, 'zoom_in')}% of the "
          f"answered right);\nJPEG 60 costs {m(b, 'jpeg')}, blur {m(b, 'blur')}.")


# The default's models with the white point three ways: (column, paper stress, grouped
# stress, paper evaluate, grouped evaluate)
WHITE_POINT_WAYS = (
    ("every field", "full-white-point", "grouped-full-white-point",
     "default/full-white-point-paper-test.json", "grouped/full-white-point-int8-gated-test.json"),
    ("none", "candidate-no-white-point", "candidate-no-white-point-grouped",
     "candidate-no-white-point/paper-int8-gated-test.json",
     "candidate-no-white-point/grouped-int8-gated-test.json"),
    ("overexposed fields only (shipped)", "paper", "grouped-finetuned", "default/paper-test.json",
     "grouped/finetuned-int8-gated-test.json"),
)
CHANGE_NAMES = {"zoom_in": "a 1.25 zoom", "zoom_out": "a 0.8 zoom", "exposure_up": "exposure x1.15",
                "exposure_down": "exposure x0.85", "jpeg": "JPEG 60", "blur": "blur 1.0",
                "vignette": "vignetting", "hue": "hue +5", "gamma": "gamma 0.8"}


def white_point_table():
    """The README's table of the white point three ways, each cell from its results file."""
    ways = [(s_p, s_g, e_p, e_g) for _, s_p, s_g, e_p, e_g in WHITE_POINT_WAYS]
    st = [(_stress(a), _stress(b)) for a, b, _, _ in ways]
    ev = [(load(c), load(d)) for _, _, c, d in ways]
    name = lambda k: CHANGE_NAMES.get(k, k)
    over = lambda x: ", ".join(f"{name(k)} {100 * v['drop']:.2f}" for k, v in _moderate(x).items()
                               if v["drop"] > 0.01) or "none"
    answered = lambda x, k, nd: pct(x["other"][k]["answered"], nd) + "%"
    rows = [
        ("paper split, test images: correct of all (`alledge evaluate`)",
         [pct(p["accuracy"]) + "%" for p, _ in ev]),
        ("grouped split, test images: correct of all", [pct(g["accuracy"]) + "%" for _, g in ev]),
        ("paper, after JPEG 95 (`alledge stress`): correct of all",
         [pct(p["clean"]["correct_of_all"]) + "%" for p, _ in st]),
        ("paper: worst moderate case",
         [f"{pct(_worst_moderate(p))}% ({name(_worst_change(p))})" for p, _ in st]),
        ("grouped: worst moderate case",
         [f"{pct(_worst_moderate(g))}% ({name(_worst_change(g))})" for _, g in st]),
        ("paper: moderate changes costing over a point", [over(p) for p, _ in st]),
        ("synthetic smears answered, paper / grouped",
         [f"{answered(p, 'synthetic', 1)} / {answered(g, 'synthetic', 1)}" for p, g in st]),
        ("`Segmented/` answered, paper / grouped",
         [f"{answered(p, 'segmented', 2)} / {answered(g, 'segmented', 2)}" for p, g in st]),
    ]
    head = "| | " + " | ".join(w[0] for w in WHITE_POINT_WAYS) + " |\n|---|---|---|---|\n"
    return head + "\n".join(f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows)


def _recipe_convert_flags():
    make = (ROOT / "Makefile").read_text()
    return make[make.index("FT_WHITE_POINT :="):].splitlines()[0]


def test_the_white_point_three_ways():
    make = (ROOT / "Makefile").read_text()           # the recipe's models each time
    start = make.index("define NOWP_BUNDLE")
    recipe = make[start:make.index("endef", start)]
    assert "FT_MODEL" in recipe and "--white-point" not in recipe
    assert "FT_WHITE_POINT := --white-point-overexposed" in make
    for _, s_p, s_g, _, _ in WHITE_POINT_WAYS:
        assert _stress(s_p)["bundle"].startswith("efficientnet-lite0-finetuned-int8@")
    assert _stress("paper")["bundle"] == load("default/paper-test.json")["bundle"] == \
        f"{shipped()['name']}@{_stress('paper')['bundle'].split('@')[1]}"
    for line in white_point_table().splitlines():
        claim(line)
    full, new = (_stress("full-white-point"), _stress("grouped-full-white-point")), \
        (_stress("paper"), _stress("grouped-finetuned"))
    # "they tie on the paper split; on the grouped split it is one field lower"
    assert _worst_moderate(full[0]) == _worst_moderate(new[0])
    assert round((_worst_moderate(full[1]) - _worst_moderate(new[1])) * 977) == 1
    assert load("grouped/finetuned-int8-gated-test.json")["accuracy"] >= 0.985 > \
        load("grouped/full-white-point-int8-gated-test.json")["accuracy"]
    ng, fg = _moderate(new[1]), _moderate(full[1])
    better = sum(ng[k]["correct_of_all"] >= fg[k]["correct_of_all"] for k in ng)
    claim(f"on {better} of the grouped split's {len(ng)} moderate changes "
          "it does as well or better")
    wp = shipped()["preprocessing"]["white_point"]
    claim(f"`clipped_above`, {wp['clipped_above']:g} for the default")
    ew, en = (load(f"grouped/{w}int8-gated-test.json") for w in ("full-white-point-", "finetuned-"))
    claim(f"on the grouped split, scaling every field costs {100 * (en['accuracy'] - ew['accuracy']):.2f} "
          "points clean")
    up = "exposure_up/moderate"
    assert full[1]["changes"][up]["rejected"] == new[1]["changes"][up]["rejected"]
    claim(f"refuses {pct(new[1]['changes'][up]['rejected'], 1)}% of those fields as overexposed "
          "either way")
    claim(f"exposure x1.15 costs {_drop(new[0], 'exposure_up')} points ({_drop(full[0], 'exposure_up')} "
          f"with every field scaled: a field with {wp['clipped_above']:g} or less\nclipped is read "
          "as it is)")
    assert (_worst_change(full[0]), _worst_change(new[0])) == ("zoom_in", "exposure_up")
    claim(f"The new one's worst moderate case was\na 1.25 zoom, {pct(_worst_moderate(full[0]))}% "
          f"(`results/stress/full-white-point/`); with the white point for\noverexposed fields "
          f"only it is exposure x1.15, {pct(_worst_moderate(new[0]))}% (`results/stress/paper/`).")


def test_the_model_trained_on_the_white_point_is_not_the_default():
    b, t = _stress("previous-finetuned"), _stress("white-point-trained")  # measured beside it
    m = lambda x, k: pct(x["changes"][f"{k}/moderate"]["correct_of_all"])
    claim(f"clean {pct(t['clean']['correct_of_all'])}% correct of all, but exposure x1.15 "
          f"{m(t, 'exposure_up')}%, JPEG 60 {m(t, 'jpeg')}%, blur {m(t, 'blur')}%, a 1.25 zoom "
          f"{m(t, 'zoom_in')}%")
    claim(f"{pct(t['other']['synthetic']['answered'], 1)}% of the synthetic smears answered "
          f"({pct(b['other']['synthetic']['answered'], 1)}% by the previous\n  default)")
    assert _worst_moderate(t) < _worst_moderate(b)   # the README's reason for not shipping it


def test_the_default_s_make_bench_sentence():
    name = shipped()["name"]
    files = {k: load(f"bench/{name}-{k}.json") for k in ("1t", "2t", "1t-tflite-runtime",
                                                          "1t-640x480")}
    assert {f["bundle"].split("@")[0] for f in files.values()} == {name}
    b = {k: {s: v["median_ms"] for s, v in f["stages"].items()} for k, f in files.items()}
    one = b["1t"]
    claim(f"end to end {one['end_to_end']:.2f} ms at one thread ({b['2t']['end_to_end']:.2f} at "
          f"two), of which the model run (invoke) {one['invoke']:.2f} ms; decode "
          f"{one['decode']:.2f}, quality {one['quality']:.2f}, scale {one['scale']:.2f}, tiling "
          f"{one['tiling']:.2f}, preprocess {one['preprocess']:.2f} (with the white point), "
          f"out-of-domain {one['ood']:.2f}.")
    rt = b["1t-tflite-runtime"]
    claim(f"it takes {rt['end_to_end']:.2f} ms, the model run {rt['invoke']:.2f}.")
    claim(f"takes {b['1t-640x480']['end_to_end']:.2f} ms end to end")


def test_the_first_default_timed_again_today():
    """`make bench-original`: the first default by its own code, beside `make bench`."""
    now, then = stages("bench/original-default-1t.json"), stages("bench/default-1t.json")
    f = load("bench/original-default-1t.json")
    assert f["bundle"] == load("bench/default-1t.json")["bundle"]  # the very same bundle
    assert f["code_commit"].startswith("c164cf3")
    e2e = stages(f"bench/{shipped()['name']}-1t.json")["end_to_end"]
    claim(f"{now['end_to_end']:.2f} ms end to end, invoke {now['invoke']:.2f}, where on "
          f"2026-11-25 it took {then['end_to_end']:.2f} (invoke {then['invoke']:.2f}, the table "
          f"below)")
    claim(f"the same bundle and code {now['end_to_end'] / then['end_to_end']:.2f} times slower")
    claim(f"costs {e2e / now['end_to_end']:.2f} times the first default's time ({e2e:.2f} "
          f"against {now['end_to_end']:.2f} ms)")


def test_the_fine_tuned_default_bench_sentence():
    b = lambda f: stages(f"bench/{f}.json")
    a, two, n = b("finetuned-default-1t"), b("finetuned-default-2t"), b(
        "finetuned-default-no-white-point-1t")
    claim(f"end to end {a['end_to_end']:.2f} ms at one thread ({two['end_to_end']:.2f} at two), "
          f"invoke {a['invoke']:.2f} ms; without the white point {n['end_to_end']:.2f} ms "
          f"(invoke {n['invoke']:.2f}:")
    claim(f"costs {a['preprocess']:.2f} ms (the preprocess stage), the gates quality "
          f"{a['quality']:.2f} + out-of-domain {a['ood']:.2f} ms")


def test_the_default_s_quality_thresholds_are_the_ones_shipped():
    q = shipped()["quality"]
    claim(f"The shipped one's:\n  sharpness {q['min_sharpness']:.2f}, clipped {q['max_clipped']:g}, "
          f"contrast {q['min_contrast']:g} and brightness {q['min_brightness']:g}.")


def test_the_default_s_training_scale_is_the_one_shipped():
    sc = shipped()["scale"]
    claim(f"manifest `scale`, {sc['rbc_diameter_px']:.2f} px, the median of the device's own "
          f"estimator on the {sc['n_images']} training images")


def test_the_default_s_colour_range_is_the_one_shipped():
    lo, hi = shipped()["colour"]["red_minus_blue"]
    claim(f"widened by 10 levels ([{lo}, {hi}] for the default)")


def _cnn_row_is_its_file(row, label):
    acc = f"{float(row['accuracy']):.2f} ({row['accuracy_ci95'].replace('-', '–')})"
    f1 = f"{float(row['macro_f1']):.2f} ({row['macro_f1_ci95'].replace('-', '–')})"
    assert_row(table_row(label), numbers(f"{acc} {f1}"))


def _cnn_variant(rows, model, label):
    """A finished table3-cnn run: its row (the README's table row holds it), its model.json,
    and how the README words its result: 'A% (best validation epoch B of N, V% on the'."""
    row, info = rows[model], load(f"paper/models/{model}/model.json")
    assert row["status"] == "ok"
    _cnn_row_is_its_file(row, label)
    said = (f"{float(row['accuracy']):.2f}% (best validation epoch {info['best_epoch']} of "
            f"{info['epochs_run']}, {pct(info['best_val_accuracy'])}% on the")
    return info, said


def test_the_improved_cnn_long_runs():
    rows = {r["model"]: r for r in csv.DictReader(open(RESULTS / "paper" / "table3-cnn.csv"))}
    # the row's recipe: a fixed schedule on every training image, the last epoch kept
    fixed = rows["improved-cnn-augmented-fixed"]
    info_f = load("paper/models/improved-cnn-augmented-fixed/model.json")
    metrics_f = load("paper/models/improved-cnn-augmented-fixed/metrics.json")
    assert info_f["augmented"] is True and fixed["status"] == "ok"
    _cnn_row_is_its_file(fixed, "Improved CNN + augmentation")
    right = round(metrics_f["accuracy"] * metrics_f["n"])
    assert (right + 1) / metrics_f["n"] >= 0.975 > metrics_f["accuracy"]   # "one test image short"
    claim(f"reaches {fixed['accuracy']}%**, one test image short\n  of the 97.5% the issue asks "
          f"for ({right} of {metrics_f['n']} right; {right + 1} would read "
          f"{pct((right + 1) / metrics_f['n'])}%) and {99.18 - float(fixed['accuracy']):.2f} points")
    assert info_f["n_val"] == 0 and info_f["n_train"] == 2279
    assert info_f["kept_epoch"] == info_f["epochs_run"] == 150 and info_f["early_stopping"] is False
    assert info_f["learning_rate_schedule"] == {"cosine": 0.001, "floor": 0.01}
    assert info_f["provenance"]["command"].endswith(
        "--augment --white-point --cosine --no-validation")
    assert "Intel(R) Xeon" in info_f["provenance"]["machine"]["cpu"]
    claim(f"is kept; {info_f['train_seconds'] / 60:.0f} minutes on a 2-core Intel Xeon")
    # "named the row's before its run had finished (Makefile, commit f7dc284)"
    import subprocess
    named = subprocess.run(["git", "show", "f7dc284:train/table3.py"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout
    assert '"improved-cnn-augmented-fixed": "Improved CNN + augmentation",' in named
    subprocess.run(["git", "merge-base", "--is-ancestor", "f7dc284",
                    info_f["provenance"]["commit"]], cwd=ROOT, check=True)
    claim("recipe was named the row's before its run had finished (Makefile, commit f7dc284)")
    claim(f"The Improved CNN with augmentation reaches {fixed['accuracy']}%, one test image\n"
          "under the issue's 97.5%")
    # the first recipe: plateau halving, the best validation epoch
    aug = rows["improved-cnn-augmented"]
    info = load("paper/models/improved-cnn-augmented/model.json")
    assert info["augmented"] is True and aug["status"] == "ok"
    _cnn_row_is_its_file(aug, "Improved CNN + augmentation, best validation epoch")
    claim(f"validation epoch kept) reached {aug['accuracy']}%")
    assert "--white-point" in info["provenance"]["command"] and info["white_point"]
    claim(f"best validation epoch {info['best_epoch']} of {info['epochs_run']}, early stopping")
    claim(f"improvement, {info['train_seconds'] / 60:.0f} minutes;")
    # the same recipe before the white point: its files kept beside it
    before = load("paper/models/improved-cnn-augmented-no-white-point/metrics.json")
    info0 = load("paper/models/improved-cnn-augmented-no-white-point/model.json")
    assert "white_point" not in info0 and info0["augmented"] is True
    claim(f"Without the white point the same recipe gave {pct(before['accuracy'])}% "
          f"(best validation epoch {info0['best_epoch']} of {info0['epochs_run']};")
    info_t, said = _cnn_variant(rows, "improved-cnn-augmented-turned",
                                "Improved CNN + augmentation, clean half turned")
    assert info_t["clean_share_turned"] is True
    claim(f"reaches {said} validation")
    info_e, said = _cnn_variant(rows, "improved-cnn-augmented-ema",
                                "Improved CNN + augmentation, weights averaged")
    assert info_e["ema_momentum"] == 0.995 and "--ema" in info_e["provenance"]["command"]
    claim(f"does worse: {said}")
    info_s, said = _cnn_variant(rows, "improved-cnn-augmented-smoothed",
                                "Improved CNN + augmentation, labels smoothed")
    assert info_s["label_smoothing"] == 0.1
    assert "--label-smoothing 0.1" in info_s["provenance"]["command"]
    claim(f"reaches {said} validation part, {info_s['train_seconds'] / 60:.0f}\n  minutes;")
    info_c, said = _cnn_variant(rows, "improved-cnn-augmented-cosine",
                                "Improved CNN + augmentation, cosine learning rate")
    assert info_c["learning_rate_schedule"] == {"cosine": 0.001, "floor": 0.01}
    assert info_c["early_stopping"] is False and info_c["epochs_run"] == 150
    assert "--cosine" in info_c["provenance"]["command"]
    claim(f"reaches {said} validation part, {info_c['train_seconds'] / 60:.0f}\n  minutes;")
    hc = [float(r["val_accuracy"]) for r in csv.DictReader(
        open(RESULTS / "paper" / "models" / "improved-cnn-augmented-cosine" / "history.csv"))]
    around = hc[87:97]   # epochs 88-97, the kept one (92) among them
    assert info_c["best_epoch"] in range(88, 98)
    claim(f"spike (epochs 88–97 read {pct(min(around))}–{pct(max(around))}% on the validation")
    claim(f"last 20 epochs,\n  on the smallest steps, held {pct(min(hc[-20:]))}–{pct(max(hc[-20:]))}%")
    assert max(hc[-20:]) < info_c["best_val_accuracy"]   # "under that spike"
    info_b, said = _cnn_variant(rows, "improved-cnn-augmented-self-taught",
                                "Improved CNN + augmentation, taught by itself")
    assert info_b["teacher"]["dir"] == "runs/paper/improved-cnn-augmented"
    assert info_b["teacher"]["split_id"] == info_b["split_id"]
    claim(f"recipe's gain needs the larger teacher): {said} validation part, "
          f"{info_b['train_seconds'] / 60:.0f} minutes;")
    hb = list(csv.DictReader(open(RESULTS / "paper" / "models"
                                  / "improved-cnn-augmented-self-taught" / "history.csv")))
    hp = list(csv.DictReader(open(RESULTS / "paper" / "models" / "improved-cnn-augmented"
                                  / "history.csv")))
    # stopped on its patience (30) while still learning
    assert info_b["epochs_run"] - info_b["best_epoch"] == info_b["patience"] == 30
    claim(f"than the {pct(info_b['best_val_accuracy'])}% of epoch\n  {info_b['best_epoch']}, "
          f"while still learning ({pct(float(hb[-2]['val_accuracy']))}% on the validation part "
          f"at epoch {len(hb) - 1}; training accuracy\n  "
          f"{float(hb[-1]['accuracy']):.2f} at its last epoch")
    assert f"{float(hb[-1]['accuracy']):.2f}" == f"{float(hp[len(hb) - 1]['accuracy']):.2f}"
    # "reached by the recipe distilled from Lite0 only"
    assert float(rows["improved-cnn-augmented-self-taught"]["accuracy"]) < 97.5
    plain = [float(r["accuracy"]) for m, r in rows.items() if m.startswith("improved-cnn-augmented")
             and "teacher" not in load(f"paper/models/{m}/model.json")]
    assert len(plain) == 6 and max(plain) < 97.5
    taught = rows["improved-cnn-augmented-distilled"]
    info_d, said = _cnn_variant(rows, "improved-cnn-augmented-distilled",
                                "Improved CNN + augmentation, distilled")
    assert info_d["distilled"] == {"share": 0.5, "temperature": 2.0}
    assert info_d["teacher"]["split_id"] == info_d["split_id"]
    assert "--teacher" in info_d["provenance"]["command"]
    claim(f"refused, for it may have seen the test images): {said} validation part, "
          f"{info_d['train_seconds'] / 60:.0f} minutes, at most 120\n  epochs;")
    # only the distilled recipe reaches the 97.5%: the README says so (plain, above)
    assert float(taught["accuracy"]) >= 97.5
    assert info_d["best_epoch"] == info_d["epochs_run"] == 120   # "had not finished learning"
    claim(f"reached by the recipe distilled from Lite0 only (six recipes without a teacher: "
          f"{min(plain):.2f}–{max(plain):.2f}), and\n  its interval "
          f"({taught['accuracy_ci95'].replace('-', '–')}) overlaps the row's "
          f"({fixed['accuracy_ci95'].replace('-', '–')})")
    claim(f"and {float(taught['accuracy']):.2f}% taught by the default's model (distilled)")
    long = rows["improved-cnn-500"]
    info500 = load("paper/models/improved-cnn-500/model.json")
    assert long["status"] == "ok" and info500["epochs_run"] == 500
    assert info500["early_stopping"] is False and info500["augmented"] is False
    _cnn_row_is_its_file(long, "Improved CNN (paper recipe, 500 epochs)")
    claim(f"no early stopping, reaches {float(long['accuracy']):.2f}%")
    claim(f"best validation epoch, {info500['best_epoch']} of 500 "
          f"({pct(info500['best_val_accuracy'])}% on the validation part)")
    h = list(csv.DictReader(open(RESULTS / "paper" / "models" / "improved-cnn-500" / "history.csv")))
    late_val = [float(r["val_accuracy"]) for r in h[60:]]
    perfect = sum(float(r["accuracy"]) == 1.0 for r in h[60:])
    q = statistics.quantiles(late_val, n=20)
    claim(f"(training accuracy 1.0 in {perfect} of those {len(late_val)} epochs)")
    claim(f"{pct(q[0])}–{pct(q[-1])}% in 90% of them")
    log = (RESULTS / "paper" / "models" / "improved-cnn-500" / "train.log").read_text()
    secs = [int(x) for x in re.findall(r"^epoch \d+: (\d+)s", log, re.M)]
    assert len(secs) == 500
    claim(f"takes a median {statistics.median(secs):.0f} s here")
    claim(f"{sum(secs) / 3600:.1f} hours of epochs")


BEFORE_REPRODUCE = "5d804d6"  # the last commit before results/reproduce-time.json's run


def _at(commit, rel):
    import subprocess
    out = subprocess.run(["git", "show", f"{commit}:results/{rel}"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, f"git show {commit}:results/{rel}: {out.stderr.strip()}"
    return json.loads(out.stdout)


@pytest.mark.parametrize("split", ["paper", "grouped"])
def test_make_reproduce_wrote_the_committed_accuracies_to_the_last_bit(split):
    """'Every accuracy it wrote equals the committed one to the last bit': the report and
    Table 3 of that run against those committed before it."""
    keys = ("accuracy", "accuracy_ci95", "macro_f1", "macro_f1_ci95", "confusion")
    now = {(r["model"], r["quant"]): r for r in load(f"{split}/report.json")["rows"]}
    then = {(r["model"], r["quant"]): r
            for r in _at(BEFORE_REPRODUCE, f"{split}/report.json")["rows"]}
    assert set(now) == set(then)
    for k in now:
        assert [now[k][f] for f in keys] == [then[k][f] for f in keys], k
    ok = lambda t: {r["model"]: r for r in t["rows"] if r["status"] == "ok"}
    now3 = ok(load(f"{split}/table3.json"))
    then3 = ok(_at(BEFORE_REPRODUCE, f"{split}/table3.json"))
    assert set(now3) == set(then3)
    for m in now3:
        assert [now3[m][f] for f in keys[:4]] == [then3[m][f] for f in keys[:4]], m
