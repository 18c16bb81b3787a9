"""convert.walltime: the minutes of `make reproduce`, step by step, from its steps file."""
import json

import pytest

from alledge.convert.walltime import main, read_steps, summary


def test_each_step_is_the_time_since_the_one_before(tmp_path):
    steps = tmp_path / "steps"
    steps.write_text("start 1000\ndata 1060\npaper 2860\ngrouped 4300\n")
    s = summary(read_steps(steps), "cold cache")
    assert s["total_minutes"] == 55.0 and s["note"] == "cold cache"
    assert [(x["step"], x["minutes"]) for x in s["steps"]] == \
        [("data", 1.0), ("paper", 30.0), ("grouped", 24.0)]


def test_writes_the_figures_with_their_provenance(tmp_path):
    steps = tmp_path / "steps"
    steps.write_text("start 0\ndone 600\n")
    main([str(steps), str(tmp_path / "t.json")])
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["total_minutes"] == 10.0 and "commit" in saved["provenance"]


@pytest.mark.parametrize("text", ["start 0\n", "start 0\npaper soon\n", "start 0 1\ndone 5\n"])
def test_a_malformed_steps_file_is_an_error(tmp_path, text):
    steps = tmp_path / "steps"
    steps.write_text(text)
    with pytest.raises(ValueError):
        read_steps(steps)
