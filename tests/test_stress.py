"""`alledge stress`'s arithmetic: unanswered counts as wrong, statuses add up, risk-coverage."""
from alledge.convert.stress import figures, risk_coverage


def ok(label, p=0.9, pred_set=None):
    return {"status": "ok", "label": label, "probabilities": {"A": p, "B": 1 - p},
            "prediction_set": pred_set or [label]}


def test_unanswered_counts_as_wrong_and_statuses_add_up():
    results = [ok("A"), ok("B"), {"status": "out_of_domain", "label": None},
               {"status": "rejected", "label": None}]
    f = figures(results, ["A", "A", "A", "B"])
    assert f["answered"] == 0.5 and f["out_of_domain"] == 0.25 and f["rejected"] == 0.25
    assert f["accuracy_of_answered"] == 0.5
    assert f["correct_of_all"] == 0.25
    assert f["set_coverage"] == 0.5 and f["mean_set_size"] == 1.0


def test_other_smears_count_benign_or_unanswered():
    f = figures([ok("A"), ok("Benign"), {"status": "rejected", "label": None}])
    assert f["benign_or_unanswered"] == round(2 / 3, 4) and "correct_of_all" not in f


def test_risk_coverage_answers_the_most_confident_first():
    results = [ok("A", 0.99), ok("B", 0.6), ok("A", 0.8), {"status": "rejected", "label": None}]
    curve = risk_coverage(results, ["A", "A", "A", "A"])
    assert curve == [(0.25, 0.0), (0.5, 0.0), (0.75, round(1 / 3, 4))]


def test_the_colour_baseline_goes_through_the_same_changes(trained, cli_ok, run_cli, tmp_path):
    import json
    from alledge.train import capture_changes
    base = trained["models"] / "colour-baseline"
    cli_ok("stress", "--baseline", base, "--data", trained["data"], "--split", trained["split"],
           "--severity", "moderate", "--out", tmp_path / "out")
    report = json.loads((tmp_path / "out" / "stress.json").read_text())
    assert report["bundles"] == {}          # a baseline alone: no default bundle added
    e = report["baselines"]["colour-histogram-svm"]
    assert list(e["changes"]) == [f"{n}/{s}" for n, s in capture_changes.suite(["moderate"])]
    for f in e["changes"].values():         # no gates: every image answered
        assert f["answered"] == 1.0 and f["n"] == e["clean"]["n"]
        assert f["drop"] == round(e["clean"]["correct_of_all"] - f["correct_of_all"], 4)
    assert "### colour-histogram-svm (desktop, no gates" in (tmp_path / "out" / "stress.md").read_text()
    assert (tmp_path / "out" / "robustness-matrix.png").stat().st_size > 1000
    # a model directory of another kind is refused with one line, not measured as one
    r = run_cli("stress", "--baseline", trained["models"] / "improved-cnn", "--data",
                trained["data"], "--split", trained["split"], "--out", tmp_path / "x")
    assert r.exit_code == 2 and "not a colour baseline" in r.stderr


def test_runs_over_the_same_changes_combine_into_one_matrix_and_others_are_refused(
        trained, cli_ok, run_cli, tmp_path):
    import json
    cli_ok("stress", "--baseline", trained["models"] / "colour-baseline", "--data",
           trained["data"], "--split", trained["split"], "--severity", "moderate",
           "--out", tmp_path / "a")
    run = json.loads((tmp_path / "a" / "stress.json").read_text())
    # a second run's result, as a bundle's: its figures one point lower on every change
    entry = json.loads(json.dumps(run["baselines"]["colour-histogram-svm"]))
    for f in entry["changes"].values():
        f["correct_of_all"] = round(f["correct_of_all"] - 0.01, 4)
    other = {**run, "baselines": {}, "bundles": {"some-bundle@123": entry}}
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "stress.json").write_text(json.dumps(other))
    r = cli_ok("matrix", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "m")
    report = json.loads((tmp_path / "m" / "stress.json").read_text())
    assert list(report["bundles"]) == ["some-bundle@123"]
    assert list(report["baselines"]) == ["colour-histogram-svm"]
    assert [s["dir"] for s in report["sources"]] == [str(tmp_path / "a"), str(tmp_path / "b")]
    table = (tmp_path / "m" / "matrix.md").read_text()
    assert "| change | some-bundle | colour-histogram-svm (no gates) |" in table
    first = next(iter(entry["changes"]))
    got = {row.split("|")[1].strip(): row for row in table.splitlines() if row.startswith("| ")}
    want = 100 * entry["changes"][first]["correct_of_all"]
    assert f"| {want:.2f} | {want + 1:.2f} |" in got[first]
    assert (tmp_path / "m" / "robustness-matrix.png").stat().st_size > 1000
    assert table in r
    # runs over other changes, or the same model twice, are refused in one line
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "stress.json").write_text(json.dumps({**other, "severities": ["strong"]}))
    for dirs, says in (((tmp_path / "a", tmp_path / "c"), "its severities"),
                       ((tmp_path / "a", tmp_path / "a"), "more than one of the runs"),
                       ((tmp_path / "a", tmp_path / "nothing"), "not an alledge stress result")):
        r = run_cli("matrix", *dirs, "--out", tmp_path / "x")
        assert r.exit_code == 2 and says in r.stderr and "Traceback" not in r.stderr
