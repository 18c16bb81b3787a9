"""Tiles: the frame covered from its centre, never squashed; only tiles with a white cell are
classified, at most MAX_TILES; small fields continued by reflection or refused."""
import numpy as np

from alledge.device import tiles


def test_one_tile_frame_is_one_tile():
    assert tiles.grid(224, 224, 224) == [(0, 0)]


def test_the_grid_starts_at_the_centre_and_covers_the_frame():
    pos = tiles.grid(336, 373, 224)
    assert pos[0] == ((336 - 224) // 2, (373 - 224) // 2)
    covered = np.zeros((336, 373), bool)
    for y, x in pos:
        assert 0 <= y <= 336 - 224 and 0 <= x <= 373 - 224
        covered[y:y + 224, x:x + 224] = True
    assert covered.all()


def test_small_fields_are_reflected_up_to_a_tile_or_refused():
    rgb = np.zeros((180, 300, 3), np.uint8)
    assert tiles.pad_to_tile(rgb, 224).shape == (224, 300, 3)
    assert tiles.pad_to_tile(np.zeros((100, 300, 3), np.uint8), 224) is None


def stained_frame():
    frame = np.full((448, 448, 3), (235, 235, 240), np.uint8)
    frame[40:90, 300:350] = (120, 60, 200)  # one violet cell, top right
    return frame


def test_only_tiles_with_a_white_cell_are_chosen():
    frame = stained_frame()
    pos = tiles.grid(448, 448, 224)
    shares = tiles.stained_shares(frame, pos, 224)
    picked = tiles.choose(pos, shares, 224)
    assert picked and all(shares[i] >= tiles.MIN_STAINED for i in picked)
    for i in picked:
        y, x = pos[i]
        assert y <= 40 and x + 224 >= 350  # each chosen tile holds the cell
    assert tiles.choose(pos, [0.0] * len(pos), 224) == []


def test_chosen_tiles_do_not_overlap_by_half_or_more():
    pos = tiles.grid(672, 672, 224)
    picked = tiles.choose(pos, [0.1] * len(pos), 224, max_tiles=9)
    for a in picked:
        for b in picked:
            if a != b:
                assert tiles._overlap(*pos[a], *pos[b], 224) < 0.5


def test_aggregate_means_the_ok_tiles():
    ok = lambda p, s=1.0: {"status": "ok", "probabilities": {"A": p, "B": 1 - p},  # noqa
                           "ood_score": s}
    agg = tiles.aggregate([ok(0.8, 3.0), ok(0.6, 5.0),
                           {"status": "out_of_domain", "reason": "far", "ood_score": 9}])
    assert agg["status"] == "ok" and np.allclose(agg["mean"], [0.7, 0.3])
    assert agg["ood_score"] == 5.0
    bad = tiles.aggregate([{"status": "rejected", "reason": "blur"},
                           {"status": "out_of_domain", "reason": "far", "ood_score": 9},
                           {"status": "out_of_domain", "reason": "far", "ood_score": 8}])
    assert bad["status"] == "out_of_domain" and "0 of 3" in bad["reason"]


def test_with_a_gate_the_tiles_clearly_in_domain_decide():
    tile = lambda p, s: {"status": "ok", "probabilities": {"A": p, "B": 1 - p},  # noqa
                         "ood_score": s}
    agg = tiles.aggregate([tile(0.9, 40.0), tile(0.7, 50.0), tile(0.1, 120.0)], 80.0)
    assert np.allclose(agg["mean"], [0.8, 0.2]) and agg["ood_score"] == 50.0
    agg = tiles.aggregate([tile(0.9, 100.0), tile(0.1, 120.0)], 80.0)  # none clear: the lowest
    assert np.allclose(agg["mean"], [0.9, 0.1])
