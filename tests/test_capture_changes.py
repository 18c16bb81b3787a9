"""Capture changes: one seeded definition for augmentation and for the robustness suite."""
import cv2
import numpy as np
import pytest

from alledge.train import capture_changes as cc


@pytest.fixture(scope="module")
def smear():
    rng = np.random.default_rng(0)
    im = np.full((224, 224, 3), (235, 225, 230), np.uint8)
    for _ in range(25):  # pink red cells and one purple white cell
        cv2.circle(im, tuple(int(v) for v in rng.integers(10, 214, 2)), 10, (205, 150, 170), -1)
    cv2.circle(im, (112, 112), 18, (110, 60, 150), -1)
    return im


@pytest.mark.parametrize("name,severity", cc.suite(("mild", "moderate", "strong")))
def test_every_change_keeps_the_image_shape_and_dtype_and_is_seeded(smear, name, severity):
    a = cc.apply(smear, name, severity, seed=3)
    b = cc.apply(smear, name, severity, seed=3)
    assert a.shape == smear.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)


# (JPEG is left out: on flat synthetic colours its error is not monotonic in quality)
@pytest.mark.parametrize("name", ["exposure_up", "blur", "stain", "noise", "vignette"])
def test_stronger_means_further_from_the_original(smear, name):
    diff = {s: np.abs(cc.apply(smear, name, s).astype(int) - smear).mean()
            for s in ("mild", "moderate", "strong")}
    assert 0 < diff["mild"] < diff["moderate"] < diff["strong"]


def test_the_named_moderate_changes_are_what_the_issue_measured(smear):
    assert cc.CHANGES["jpeg"][1]["moderate"] == 60
    assert cc.CHANGES["exposure_down"][1]["moderate"] == 0.85
    assert cc.CHANGES["exposure_up"][1]["moderate"] == 1.15
    assert cc.CHANGES["blur"][1]["moderate"] == 1.0
    assert cc.CHANGES["zoom_in"][1]["moderate"] == 1.25
    assert cc.CHANGES["hue"][1]["moderate"] == 5
    assert np.array_equal(cc.apply(smear, "rotate90", "moderate"), np.rot90(smear))


def test_stain_jitter_keeps_white_background_white_and_moves_the_stain(smear):
    outs = [cc.apply(smear, "stain", "strong", seed=s) for s in range(5)]
    assert max(np.abs(o[0, 0].astype(int) - smear[0, 0]).max() for o in outs) <= 12
    assert max(np.abs(o[112, 112].astype(int) - smear[112, 112]).max() for o in outs) > 10


def test_unknown_severity_is_refused(smear):
    with pytest.raises(ValueError, match="rotate90 has no severity 'mild'"):
        cc.apply(smear, "rotate90", "mild")


def test_augment_draws_different_captures_from_one_generator(smear):
    rng = np.random.default_rng(0)
    a, b = cc.augment(smear, rng), cc.augment(smear, rng)
    assert a.shape == smear.shape and not np.array_equal(a, b)


def test_augment_brightens_up_to_the_gain_it_is_given(smear, monkeypatch):
    gains = []
    real = cc.exposure
    monkeypatch.setattr(cc, "exposure", lambda rgb, rng, g: gains.append(g) or real(rgb, rng, g))
    rng = np.random.default_rng(0)
    for _ in range(200):
        cc.augment(smear, rng)
    assert 0.75 <= min(gains) and max(gains) <= 1.3            # the shipped recipe's range
    gains.clear()
    for _ in range(200):
        cc.augment(smear, rng, max_gain=1.8)
    assert 0.75 <= min(gains) and 1.6 < max(gains) <= 1.8
    # log-uniform: as likely to darken by a factor as to brighten by it, about x1.16 midway
    assert abs(np.median(gains) - np.sqrt(0.75 * 1.8)) < 0.1
