"""The red-cell scale: estimated from the frame, scale-covariant, turned into a resize factor
with stated tolerances; frames with no cells or cells out of range are refused."""
import cv2
import numpy as np
import pytest

from alledge.device import scale


def discs(diameter, side=448, seed=0):
    """A synthetic smear: grey discs of `diameter` px, scattered on a bright background."""
    rng = np.random.default_rng(seed)
    img = np.full((side, side, 3), 235, np.uint8)
    n = int(0.35 * side * side / (np.pi * diameter ** 2 / 4))
    for _ in range(n):
        x, y = rng.integers(0, side, 2)
        cv2.circle(img, (int(x), int(y)), int(diameter / 2), (190, 170, 200), -1)
    return cv2.GaussianBlur(img, (0, 0), 1.0)


def test_the_estimate_follows_the_cells_size():
    small, large = scale.estimate_diameter(discs(20)), scale.estimate_diameter(discs(40))
    assert 1.8 < large / small < 2.2


def test_the_estimate_is_scale_covariant_on_a_resized_frame():
    img = discs(18, side=300)
    base = scale.estimate_diameter(img)
    for f in (2.0, 3.0):
        big = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
        assert scale.estimate_diameter(big) / (f * base) == pytest.approx(1.0, abs=0.06)


def test_a_flat_frame_has_no_cells():
    with pytest.raises(scale.ScaleError, match="no red cells"):
        scale.estimate_diameter(np.full((300, 300, 3), 200, np.uint8))


def test_factor_rules():
    # never up: cells a bit smaller than the training ones are used as they are
    assert scale.factor_for(15.0, 19.0) == 1.0
    with pytest.raises(scale.ScaleError, match="higher magnification"):
        scale.factor_for(10.0, 19.0)
    # down, for a frame larger than a tile, beyond 15%
    assert scale.factor_for(21.0, 19.0) == 1.0
    assert scale.factor_for(57.0, 19.0) == pytest.approx(1 / 3)
    # one field is used as it is up to FIELD_TOLERANCE (the training fields' own spread)
    assert scale.factor_for(57.0, 19.0, one_field=True) == 1.0
    assert scale.factor_for(80.0, 19.0, one_field=True) == pytest.approx(19 / 80)
    with pytest.raises(scale.ScaleError, match="usual magnification"):
        scale.factor_for(400.0, 19.0)


def test_reductions_decode_no_smaller_than_the_target():
    assert scale.reduction_for(1.0) == 1
    assert scale.reduction_for(0.45) == 2
    assert scale.reduction_for(0.22) == 4
    assert scale.reduction_for(0.1) == 8
    assert scale.probe_reduction(4056, 3040) == 4
    assert scale.probe_reduction(1008, 1120) == 1
    assert scale.probe_reduction(224, 224) == 1


def test_um_per_px_uses_a_red_cell_of_7_5_um():
    assert scale.diameter_from_um_per_px(0.25) == pytest.approx(30.0)


def test_training_scale_comes_from_the_manifest():
    assert scale.training_diameter({}) is None
    assert scale.training_diameter({"scale": {"rbc_diameter_px": 19.3}}) == 19.3
    with pytest.raises(ValueError):
        scale.training_diameter({"scale": {"rbc_diameter_px": "big"}})


def test_one_field_reads_cells_down_to_half_the_training_size():
    assert scale.factor_for(12.0, 19.0, one_field=True) == 1.0
    with pytest.raises(scale.ScaleError):
        scale.factor_for(9.0, 19.0, one_field=True)


def test_the_refinement_reads_the_cells_circles():
    img = discs(20)
    first = scale.acf_diameter(img)
    refined = scale.circle_diameter(img, scale.field_diameter(img, first))
    assert refined is not None
    assert scale.estimate_diameter(img) == pytest.approx(refined)

