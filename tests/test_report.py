"""convert.report.run_report on the small trained models: bundles through the device path,
outputs written, and a second run resumes from the bundles and row cache it left."""
import json

import pytest

pytestmark = pytest.mark.slow


def test_report_writes_its_outputs_and_resumes(trained, tmp_path):
    from alledge.convert.report import run_report
    out = tmp_path / "report"
    logs = []
    kwargs = dict(quants=("float32",), latency_n=3, view_n=8, log=logs.append)
    table = run_report(trained["data"], trained["split"], trained["models"], out, **kwargs)
    # random-weights extractors and the colour baseline have no place in the report
    assert [(r["model"], r["quant"]) for r in table] == [("improved-cnn", "float32")]
    assert 0.0 <= table[0]["accuracy"] <= 1.0 and table[0]["size_kb"] > 0
    saved = json.loads((out / "report.json").read_text())
    assert saved["split_id"] == trained["split_id"] and len(saved["rows"]) == 1
    assert "pred" not in saved["rows"][0]
    assert (out / "report.md").read_text().startswith("# Accuracy vs quantization")
    assert (out / "report.csv").read_text().count("\n") == 2
    assert any(m.startswith("converting improved-cnn") for m in logs)

    logs.clear()
    again = run_report(trained["data"], trained["split"], trained["models"], out, **kwargs)
    assert not any(m.startswith(("converting", "measuring")) for m in logs), logs
    assert again[0]["accuracy"] == table[0]["accuracy"]
    assert not [p for p in out.rglob("*.tmp")]  # no temporary left by the atomic writes

    # other samples are other figures: the row is measured again, not taken from the cache
    logs.clear()
    third = run_report(trained["data"], trained["split"], trained["models"], out,
                       **{**kwargs, "view_n": 6})
    assert any(m.startswith("measuring") for m in logs), logs
    assert third[0]["view_images"] == 6 and third[0]["accuracy"] == table[0]["accuracy"]


def test_report_reads_views_and_1_thread_latency_on_samples(trained, tmp_path):
    from alledge.convert.report import run_report
    table = run_report(trained["data"], trained["split"], trained["models"], tmp_path / "r",
                       quants=("float32",), latency_n=3, view_n=8, log=lambda m: None)
    row = table[0]
    assert row["view_images"] == 8 and row["latency_images_1t"] == 3
    # the views are compared with the same 8 images upright, not with the whole test set
    assert abs(8 * row["acc_upright_views"] - round(8 * row["acc_upright_views"])) < 1e-9
    assert "views on 8 of them" in (tmp_path / "r" / "report.md").read_text()
    # each view's accuracy is a fraction of the 8 sampled images
    assert all(abs(8 * row[f"acc_{t}"] - round(8 * row[f"acc_{t}"])) < 1e-9
               for t in ("rot90", "rot180", "rot270", "flip"))
    assert "upright on the same images" in (tmp_path / "r" / "report.md").read_text()


def test_samples_are_stratified_seeded_and_all_when_asked():
    import numpy as np
    from alledge.convert.report import _sample
    y = np.repeat([0, 1, 2, 3], [100, 200, 300, 400])
    a, b = _sample(y, 100), _sample(y, 100)
    assert (a == b).all() and len(a) == 100 and len(set(a)) == 100
    assert np.bincount(y[a]).tolist() == [10, 20, 30, 40]
    assert len(_sample(y, 0)) == len(y) == len(_sample(y, 5000))
