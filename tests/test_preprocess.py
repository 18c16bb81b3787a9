"""One preprocessing for training and the device: same arrays from every path in."""
import cv2
import numpy as np
import pytest

from alledge.device.images import ImageError, read_rgb, to_rgb8
from alledge.device.preprocess import INTERPOLATION, load_input, preprocess

# (R, G, B) of a stain-like purple; OpenCV stores it as (B, G, R)
PURPLE = (120, 40, 200)


def solid_png(path, rgb, shape=(50, 70)):
    bgr = np.zeros((*shape, 3), np.uint8)
    bgr[:] = rgb[::-1]
    cv2.imwrite(str(path), bgr)
    return path


def test_load_input_is_preprocess_of_read_rgb(synth_data):
    for p in sorted(synth_data.rglob("*.jpg"))[::15]:
        for size in (224, 128):
            a = load_input(p, size)
            assert a.shape == (size, size, 3) and a.dtype == np.uint8
            assert np.array_equal(a, preprocess(read_rgb(p), size))


def test_colour_order_is_rgb(tmp_path):
    """A PNG written by OpenCV (BGR in memory) reads back in RGB order."""
    x = load_input(solid_png(tmp_path / "p.png", PURPLE), 224)
    assert (x == PURPLE).all()


def test_colour_order_agrees_with_pillow(tmp_path):
    """Independent of OpenCV: Pillow writes RGB, and RGB is what comes out (PNG and JPEG)."""
    Image = pytest.importorskip("PIL.Image")
    Image.new("RGB", (64, 48), PURPLE).save(tmp_path / "p.png")
    Image.new("RGB", (64, 48), PURPLE).save(tmp_path / "p.jpg", quality=95)
    assert (load_input(tmp_path / "p.png", 32) == PURPLE).all()
    jpg = load_input(tmp_path / "p.jpg", 32).astype(int)
    assert np.abs(jpg - PURPLE).max() <= 4
    assert np.array_equal(read_rgb(tmp_path / "p.png"), np.asarray(Image.open(tmp_path / "p.png")))


def test_camera_frame_equals_file(tmp_path):
    """A BGR camera frame and the same frame saved as PNG give the identical model input."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)  # what cv2 capture returns
    cv2.imwrite(str(tmp_path / "frame.png"), frame)
    from_frame = preprocess(to_rgb8(frame, bgr=True), 224)
    from_file = load_input(tmp_path / "frame.png", 224)
    assert np.array_equal(from_frame, from_file)
    expected = cv2.resize(frame[:, :, ::-1], (224, 224), interpolation=cv2.INTER_AREA)
    assert np.array_equal(from_file, expected)


def test_one_documented_interpolation_and_dtype(tmp_path):
    assert INTERPOLATION == cv2.INTER_AREA
    p = solid_png(tmp_path / "p.png", PURPLE, shape=(300, 400))
    f = load_input(p, 224, dtype=np.float32)
    assert f.dtype == np.float32 and f.shape == (224, 224, 3)
    assert np.array_equal(f, load_input(p, 224).astype(np.float32))  # 0..255, not normalised


def test_224_images_pass_unchanged(synth_data):
    p = next((synth_data / "Early").glob("*.jpg"))
    assert np.array_equal(load_input(p, 224), read_rgb(p))


def test_bad_file_raises_image_error(tmp_path):
    (tmp_path / "x.jpg").write_text("not an image")
    with pytest.raises(ImageError) as e:
        load_input(tmp_path / "x.jpg", 224)
    assert e.value.reason == "not-image"
    with pytest.raises(ImageError) as e:
        load_input(tmp_path / "missing.jpg", 224)
    assert e.value.reason == "missing"


def _train_loader():
    return pytest.importorskip("alledge.train.loader")


def _rows(data, paths):
    from alledge.device import CLASSES
    return [{"path": p.relative_to(data).as_posix(), "label_id": CLASSES.index(p.parent.name)}
            for p in paths]


def test_training_loader_gives_the_device_arrays(synth_data):
    loader = _train_loader()
    paths = sorted(synth_data.rglob("*.jpg"))[::10]
    x, y = loader.load_arrays(synth_data, _rows(synth_data, paths), 224, progress=False)
    for i, p in enumerate(paths):
        assert np.array_equal(x[i], load_input(p, 224))
    x128, _ = loader.load_arrays(synth_data, _rows(synth_data, paths[:3]), 128, progress=False)
    assert np.array_equal(x128[0], load_input(paths[0], 128))


def test_training_loader_on_real_images(real_data):
    loader = _train_loader()
    paths = [sorted((real_data / c).iterdir())[0] for c in ("Benign", "Early", "Pre", "Pro")]
    x, y = loader.load_arrays(real_data, _rows(real_data, paths), 224, progress=False)
    assert list(y) == [0, 1, 2, 3]
    for i, p in enumerate(paths):
        ref = cv2.imread(str(p))[:, :, ::-1]  # plain OpenCV, BGR -> RGB
        assert np.array_equal(x[i], ref) and np.array_equal(x[i], load_input(p, 224))


def test_white_point_undoes_an_exposure_and_white_balance_change():
    from alledge.device.preprocess import apply_white_point, channel_percentiles
    rng = np.random.default_rng(0)
    rgb = rng.integers(60, 200, (224, 224, 3), dtype=np.uint8)
    wp = {"percentile": 75, "target": channel_percentiles(rgb, 75)}
    changed = np.clip(rgb * np.array([1.1, 0.95, 0.85]), 0, 255).astype(np.uint8)
    back = apply_white_point(changed, wp)
    assert np.abs(back.astype(int) - rgb).mean() < 1.5
    assert np.array_equal(apply_white_point(rgb, wp), rgb)   # already at its white point


def _smear(clipped_rows, seed=0):
    """A 224 px field: cells at mid grey, the top `clipped_rows` rows a background at 252."""
    rgb = np.random.default_rng(seed).integers(80, 200, (224, 224, 3), dtype=np.uint8)
    rgb[:clipped_rows] = 252
    return rgb


def test_a_white_point_for_overexposed_fields_scales_only_fields_clipped_past_it():
    from alledge.device.preprocess import apply_white_point, clipped_share
    ordinary, overexposed = _smear(90), _smear(150)   # 40% and 67% of the pixels clipped
    assert clipped_share(ordinary) == pytest.approx(90 / 224)
    wp = {"percentile": 75, "target": [240.0, 240.0, 240.0]}
    gated = {**wp, "clipped_above": 0.5}
    assert np.array_equal(apply_white_point(ordinary, gated), ordinary)   # as the model learnt it
    assert not np.array_equal(apply_white_point(ordinary, wp), ordinary)  # ungated: scaled
    assert np.array_equal(apply_white_point(overexposed, gated), apply_white_point(overexposed, wp))


def test_the_stain_colour_is_judged_on_the_field_scaled_to_the_white_point_even_when_the_model_is_not():
    # the colour range is the stain's, not the lamp's: a field read by the model as it is
    # (white point for overexposed fields only) is still scaled to the white point for it
    from alledge.device.preprocess import apply_white_point, colour_input
    field = _smear(90)
    wp = {"percentile": 75, "target": [240.0, 230.0, 250.0]}
    x = apply_white_point(field, {**wp, "clipped_above": 0.5})
    assert np.array_equal(x, field)
    assert np.array_equal(colour_input(field, 224, x, {**wp, "clipped_above": 0.5}),
                          apply_white_point(field, wp))
    assert colour_input(field, 224, x, wp) is x          # a plain white point: the model's input
    assert colour_input(field, 224, x, None) is x


def test_the_overexposed_threshold_is_the_training_fields_95th_percentile_of_clipped_share():
    from alledge.device.preprocess import clipped_share, white_point_from
    fields = [_smear(rows, seed=rows) for rows in range(0, 200, 10)]
    plain = white_point_from(fields)
    gated = white_point_from(fields, overexposed=True)
    assert "clipped_above" not in plain and gated["target"] == plain["target"]
    shares = [clipped_share(f) for f in fields]
    assert gated["clipped_above"] == pytest.approx(np.percentile(shares, 95), abs=1e-4)


def test_channel_percentiles_agree_with_numpy():
    from alledge.device.preprocess import channel_percentiles
    rgb = np.random.default_rng(1).integers(0, 256, (97, 131, 3), dtype=np.uint8)
    ours = channel_percentiles(rgb, 75)
    ref = np.percentile(rgb.reshape(-1, 3), 75, axis=0, method="higher")
    assert np.allclose(ours, ref, atol=1)


@pytest.mark.parametrize("bad", [{"percentile": 0, "target": [1, 2, 3]},
                                 {"percentile": 75, "target": [1, 2]},
                                 {"percentile": 75, "target": [1, 2, 300]},
                                 {"percentile": "75", "target": [1, 2, 3]},
                                 {"percentile": 75, "target": [1, 2, 3], "clipped_above": 1.5},
                                 {"percentile": 75, "target": [1, 2, 3], "clipped_above": "0.5"},
                                 "x"])
def test_a_malformed_white_point_is_refused(bad):
    from alledge.device.preprocess import white_point_of
    with pytest.raises(ValueError, match="white_point"):
        white_point_of({"preprocessing": {"white_point": bad}})
    assert white_point_of({"preprocessing": {}}) is None
    ok = {"percentile": 75, "target": [1, 2, 3], "clipped_above": 0.49}
    assert white_point_of({"preprocessing": {"white_point": ok}})["clipped_above"] == 0.49
