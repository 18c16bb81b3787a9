"""The quality measures are what their definitions say (mean, share >= 250, std, Laplacian var)."""
import cv2
import numpy as np
import pytest

from alledge.device.quality import measure


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_measures_equal_their_numpy_definitions(seed):
    rng = np.random.default_rng(seed)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8), (0, 0), seed + 0.5)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    m = measure(rgb)
    assert m["brightness"] == pytest.approx(grey.mean(), abs=1e-3)
    assert m["clipped"] == pytest.approx(np.mean(grey >= 250), abs=1e-4)
    assert m["contrast"] == pytest.approx(grey.std(), abs=1e-3)
    assert m["sharpness"] == pytest.approx(cv2.Laplacian(grey, cv2.CV_64F).var(), rel=1e-5, abs=1e-3)
    assert (m["width"], m["height"]) == (300, 200)


def test_a_bundle_s_thresholds_replace_the_defaults_key_by_key():
    from alledge.device.quality import Thresholds, thresholds_of
    assert thresholds_of({}) == Thresholds()
    t = thresholds_of({"quality": {"min_sharpness": 7.0, "fitted_on": "text is ignored"}})
    assert t.min_sharpness == 7.0 and t.max_clipped == Thresholds().max_clipped
    for bad in ({"quality": {"min_sharpness": -1}}, {"quality": {"max_clipped": "0.8"}},
                {"quality": []}):
        with pytest.raises(ValueError, match="quality"):
            thresholds_of(bad)
