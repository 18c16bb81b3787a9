"""`alledge bench` times each stage; `alledge info` shows runtime, delegates and bundle."""
import json

from click.testing import CliRunner

from alledge.device.cli import main
from bundles import cnn_bundle, image_dir, svm_bundle


def test_bench_reports_median_and_p90_per_stage(tmp_path_factory):
    bundle = svm_bundle(tmp_path_factory)[0]
    r = CliRunner().invoke(main, ["bench", "--bundle", str(bundle), "--runs", "5", "--json",
                                  "--threads", "1"])
    assert r.exit_code == 0, r.output
    stages = json.loads(r.output)["stages"]
    assert list(stages) == ["decode", "quality", "preprocess", "invoke", "svm", "end_to_end"]
    for s in stages.values():
        assert 0 <= s["median_ms"] <= s["p90_ms"]
    assert stages["end_to_end"]["median_ms"] >= stages["invoke"]["median_ms"]


def test_bench_table_on_a_given_image(tmp_path_factory):
    image = sorted(image_dir(tmp_path_factory).iterdir())[0]
    r = CliRunner().invoke(main, ["bench", "--bundle", str(cnn_bundle(tmp_path_factory)),
                                  "--runs", "3", "--image", str(image)])
    assert r.exit_code == 0
    assert "svm" not in r.output and "end_to_end" in r.output and "median ms" in r.output


def test_info_shows_runtime_delegates_and_manifest(tmp_path_factory):
    bundle = cnn_bundle(tmp_path_factory, int8=True)
    r = CliRunner().invoke(main, ["info", "--bundle", str(bundle)])
    assert r.exit_code == 0
    assert "runtime: ai_edge_litert.interpreter" in r.output
    assert "delegates: edgetpu" in r.output and "verified" in r.output
    assert '"quantization": "int8"' in r.output


def test_info_reports_a_broken_bundle(tmp_path):
    r = CliRunner().invoke(main, ["info", "--json", "--bundle", str(tmp_path / "none")])
    assert r.exit_code == 3
    assert json.loads(r.output)["bundle"]["verified"] is False
