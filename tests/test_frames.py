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


def drawn_fields(tmp_path, shrink=1.0):
    """The four drawn smears of `alledge data synth --per-class 1 --seed 7` as 224 px JPEG
    files; shrink < 1 makes their cells smaller (the field shrunk and repeated to 224 px)."""
    import numpy as np
    from alledge.train.synth import write_synth
    write_synth(tmp_path / "s", per_class=1, seed=7)
    paths = []
    for p in sorted((tmp_path / "s").glob("*/*.jpg")):
        img = cv2.imread(str(p))
        if shrink != 1.0:
            small = cv2.resize(img, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
            reps = -(-224 // small.shape[0])
            img = np.ascontiguousarray(np.tile(small, (reps, reps, 1))[:224, :224])
        paths.append(tmp_path / f"{p.stem}-{shrink}.jpg")
        cv2.imwrite(str(paths[-1]), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return paths


def test_a_single_field_out_of_domain_by_its_score_is_tried_at_nearby_zooms(run_cli, tmp_path):
    # Drawn smears lie outside the shipped model's domain: nearly all are flagged by their
    # out-of-domain score when read at their own scale (results/stress/). Shrunk by half,
    # their cells read within twice the training size (RESCUE_RATIO): a nearby zoom might
    # mend such a field, so it is tried.
    from alledge.device.frames import FIELD_ZOOMS, RESCUE_RATIO
    paths = drawn_fields(tmp_path, shrink=0.5)
    lines = run_cli("classify", "--no-log", "--json", "--tiles", *paths).output.splitlines()
    refined = [json.loads(line) for line in lines if '"refined"' in line]
    assert refined
    for record in refined:
        scale = record["scale"]
        assert scale["rbc_diameter_px"] <= RESCUE_RATIO * scale["training_px"]
        zooms = record["tiles"]["zooms"]
        tried = [z["zoom"] for z in zooms]
        assert tried == [1.0, *FIELD_ZOOMS][:len(tried)] and len(tried) > 1
        assert zooms[0]["status"] == "out_of_domain"  # read at its own scale first
        best = min((z for z in zooms if z["ood_score"] is not None),
                   key=lambda z: z["ood_score"])  # a zoom the quality gate refuses has none
        assert record["scale"]["refined"] == best["zoom"]
        assert record["ood_score"] == best["ood_score"]
        assert record["status"] == ("ok" if best["status"] == "ok" else "out_of_domain")


def test_a_field_out_of_domain_with_cells_far_off_the_training_size_is_not_read_again(
        run_cli, tmp_path):
    # At their own size the drawn cells read over twice the training ones: no nearby zoom
    # mends that, and each try would be one more chance to score under the threshold
    # (the retry let 19 of 200 drawn smears through before RESCUE_RATIO)
    from alledge.device.frames import RESCUE_RATIO
    lines = run_cli("classify", "--no-log", "--json", "--tiles",
                    *drawn_fields(tmp_path)).output.splitlines()
    records = [json.loads(line) for line in lines]
    far = [r for r in records
           if r["scale"]["rbc_diameter_px"] > RESCUE_RATIO * r["scale"]["training_px"]]
    assert len(far) >= 2
    for record in far:
        assert record["status"] == "out_of_domain" and record["ood_score"] is not None
        assert "refined" not in record["scale"] and "zooms" not in record["tiles"]


def test_which_single_fields_are_read_again_and_at_which_zooms():
    from alledge.device.bundle import DEFAULT_BUNDLE, load_bundle
    from alledge.device.classify import Classifier
    from alledge.device.frames import (CELLS_LARGER, FIELD_ZOOMS, LARGER_ZOOMS, RESCUE_RATIO,
                                       STOP_FRACTION, _field_zooms)
    c = Classifier(load_bundle(DEFAULT_BUNDLE))
    t = c.ood_threshold
    seen = lambda d, source="estimated": {"rbc_diameter_px": d, "training_px": 19.3,
                                          "source": source}
    ok = lambda score: {"status": "ok", "ood_score": score}
    foreign = {"status": "out_of_domain", "ood_score": 1.5 * t}
    big, usual = 19.3 * CELLS_LARGER + 0.5, 19.3
    assert _field_zooms(c, foreign, seen(usual)) == FIELD_ZOOMS     # out of domain by score
    for near in (19.3 / RESCUE_RATIO, 19.3 * RESCUE_RATIO):          # cells up to twice or
        assert _field_zooms(c, foreign, seen(near)) == FIELD_ZOOMS   # half the size
    for far in (19.3 / RESCUE_RATIO - 0.1, 19.3 * RESCUE_RATIO + 0.1):   # further off: no
        assert _field_zooms(c, foreign, seen(far)) == ()             # nearby zoom mends it
    assert _field_zooms(c, ok(0.9 * t), seen(big)) == LARGER_ZOOMS   # larger cells, unsure
    assert _field_zooms(c, ok(0.9 * t), seen(usual)) == ()           # its own scale reads
    assert _field_zooms(c, ok(0.9 * STOP_FRACTION * t), seen(big)) == ()  # clearly in domain
    assert _field_zooms(c, foreign, seen(usual, "given")) == ()      # a given scale stands
    by_colour = {"status": "out_of_domain", "ood_score": None}       # another stain: no zoom
    assert _field_zooms(c, by_colour, seen(big)) == ()               # makes it one
    assert all(z < 1 for z in LARGER_ZOOMS)                          # they shrink the cells


def test_a_drawn_field_with_large_cells_is_tried_at_zooms_in_order(run_cli, tmp_path):
    path = tmp_path / "field.jpg"
    cv2.imwrite(str(path), smear(0))  # its cells read about 30 px, the training ones 19.3
    record = json.loads(run_cli("classify", "--no-log", "--json", "--tiles", path).output)
    tried = [z["zoom"] for z in record["tiles"]["zooms"]]
    assert tried[0] == 1.0 and len(tried) > 1
    assert record["scale"]["rbc_diameter_px"] > 19.3 * 1.1
    best = min((z for z in record["tiles"]["zooms"] if z["ood_score"] is not None),
               key=lambda z: z["ood_score"])
    assert record["scale"]["refined"] == best["zoom"]


def test_a_whole_field_is_measured_once_and_a_padded_one_as_padded(monkeypatch):
    from alledge.device import quality
    from alledge.device.bundle import DEFAULT_BUNDLE, load_bundle
    from alledge.device.classify import Classifier
    from alledge.device.images import decode_rgb
    c = Classifier(load_bundle(DEFAULT_BUNDLE))
    c.ood = None  # no second reading at other zooms (they are measured too): one reading
    whole = cv2.imencode(".jpg", smear(1, 224))[1].tobytes()
    narrow = cv2.imencode(".jpg", smear(1, 224)[:, :200])[1].tobytes()
    measured = []
    real = quality.measure
    monkeypatch.setattr(quality, "measure", lambda rgb: measured.append(rgb.shape) or real(rgb))
    r = c.classify_bytes(whole)
    assert measured == [(224, 224, 3)]           # the pre-gate's figures serve the field too
    assert r["quality"] == real(decode_rgb(whole))
    measured.clear()
    c.classify_bytes(narrow)
    assert measured == [(224, 200, 3), (224, 224, 3)]  # the padded field is measured again
