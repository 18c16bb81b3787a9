"""`alledge evaluate`: a bundle measured on a labelled split through classify's code path."""
import json

from alledge.device import exitcodes
from alledge.device.evaluate import is_answered, summarize


def test_answered_means_status_ok_or_a_label_without_status():
    assert is_answered({"status": "ok", "label": "Pro"})
    assert not is_answered({"status": "out_of_domain", "label": None})
    assert not is_answered({"status": "rejected", "label": "Pro"})  # the status decides
    assert is_answered({"label": "Pro"})                              # records before statuses
    assert not is_answered({"path": "x", "error": "empty"})


def test_summary_counts_an_unanswered_image_as_wrong():
    records = [{"status": "ok", "label": "Pro"}, {"status": "ok", "label": "Pre"},
               {"status": "out_of_domain", "label": None}, {"status": "ok", "label": "Benign"}]
    s = summarize(records, ["Pro", "Pro", "Pro", "Benign"], ("Benign", "Early", "Pre", "Pro"))
    assert (s["n"], s["answered"], s["correct"]) == (4, 3, 2)
    assert s["accuracy"] == 0.5 and s["accuracy_answered"] == 2 / 3
    assert s["answered_fraction"] == 0.75
    assert s["per_class"]["Pro"]["recall"] == 1 / 3 and s["per_class"]["Benign"]["recall"] == 1.0
    assert s["per_class"]["Early"]["recall"] is None  # no support
    assert s["confusion"][3] == [0, 0, 1, 1, 1]        # Pro row: Pre, Pro, unanswered
    assert s["statuses"] == {"ok": 3, "out_of_domain": 1}  # why the unanswered were


def _split(tmp_path, rows):
    path = tmp_path / "split.csv"
    path.write_text("path,label,label_id,subset,sha256\n"
                    + "".join(f"{p},{label},0,test,x\n" for p, label in rows))
    return path


def test_an_unreadable_image_is_unanswered_and_exit_1(run_cli, synth_data, tmp_path):
    data = tmp_path / "data"
    (data / "Pro").mkdir(parents=True)
    good = sorted((synth_data / "Pro").iterdir())[0]
    (data / "Pro" / "a.jpg").write_bytes(good.read_bytes())
    (data / "Pro" / "b.jpg").write_bytes(b"not an image")
    out = tmp_path / "out.json"
    r = run_cli("evaluate", "--data", data, "--split",
                _split(tmp_path, [("Pro/a.jpg", "Pro"), ("Pro/b.jpg", "Pro")]), "--out", out)
    assert r.exit_code == exitcodes.SOME_FAILED
    assert r.stderr.strip() == "error: 1 images could not be read or classified"
    d = json.loads(out.read_text())
    assert d["n"] == 2 and d["errors"] == 1 and d["answered"] <= 1


def test_a_split_whose_images_are_elsewhere_is_one_line_and_exit_2(run_cli, synth_data,
                                                                  tmp_path):
    r = run_cli("evaluate", "--data", tmp_path, "--split",
                _split(tmp_path, [("Pro/none.jpg", "Pro")]))
    assert r.exit_code == exitcodes.USAGE
    assert r.stderr.count("\n") == 1 and "is not there" in r.stderr
    r = run_cli("evaluate", "--data", synth_data, "--split", _split(tmp_path, []))
    assert r.exit_code == exitcodes.USAGE and "no rows in subset 'test'" in r.stderr
