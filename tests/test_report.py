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
