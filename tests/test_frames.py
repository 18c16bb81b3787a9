"""The scaled path end to end, on drawn frames and the shipped bundle: a known scale gives
aggregated tiles, an estimated one a refined zoom; bench times the scaled stages."""
import json

import cv2

from test_slide_cli import smear


def frame(tmp_path, zoom=3.0, name="f.jpg"):
    img = cv2.resize(smear(3, 448), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    path = tmp_path / name
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def test_a_given_scale_gives_at_most_three_aggregated_tiles(run_cli, tmp_path):
    r = run_cli("classify", "--no-log", "--json", "--tiles", "--rbc-diameter-px", "57",
                frame(tmp_path))
    record = json.loads(r.output)
    assert record["scale"]["source"] == "given"
    assert abs(record["scale"]["factor"] - 19.277 / 57) < 1e-3
    tiles = record["tiles"]
    assert tiles["size"] == 224 and tiles["stride"] == 112
    assert 1 <= len(tiles["classified"]) <= 3 <= tiles["grid"]
    side = round(1344 * 19.277 / 57)
    for t in tiles["classified"]:
        assert 0 <= t["x"] <= side - 224 and 0 <= t["y"] <= side - 224
        assert t["stained"] >= 0.005


def test_an_estimated_scale_is_refined_by_zooms(run_cli, tmp_path):
    record = json.loads(run_cli("classify", "--no-log", "--json", "--tiles",
                                frame(tmp_path)).output)
    assert record["scale"]["source"] == "estimated"
    tried = [z["zoom"] for z in record["tiles"]["zooms"]]
    assert tried == [1.1, 0.9, 1.3, 1.45, 0.75][:len(tried)]  # in order, stopping early
    assert record["scale"]["refined"] in tried
    assert "tiles" not in json.loads(run_cli("classify", "--no-log", "--json",
                                             frame(tmp_path)).output)


def test_bench_times_the_scaled_stages(run_cli, tmp_path):
    r = run_cli("bench", "--runs", "1", "--json", "--threads", "1", "--image",
                frame(tmp_path))
    stages = json.loads(r.output)["stages"]
    for key in ("decode", "quality", "scale", "tiling", "invoke", "end_to_end"):
        assert stages[key]["median_ms"] >= 0
