"""Fine-tuning EfficientNet-Lite0 on augmented captures: what is frozen, and the model it gives."""
import csv
import json

import numpy as np
import pytest

from alledge.device.bundle import load_bundle
from alledge.device.images import read_rgb
from alledge.device.preprocess import clipped_share


def test_only_the_late_blocks_and_the_head_train_and_batchnorm_stays_frozen():
    import keras
    from alledge.train.finetune import build_finetune_model
    from alledge.train.lite import lite_backbone
    model = build_finetune_model(lite_backbone("efficientnet-lite0", weights=None), 4,
                                 train_blocks=5)
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert "probabilities" in trainable and "head_conv" in trainable
    assert any(n.startswith("block15_") for n in trainable)
    assert any(n.startswith("block11_") for n in trainable)
    assert not any(n.startswith(("block10_", "block0_", "stem")) for n in trainable)
    assert all(not layer.trainable for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization))


def test_an_augmented_epoch_changes_about_half_the_images():
    from alledge.train.finetune import augmented_epoch
    x = np.random.default_rng(0).integers(0, 255, (40, 32, 32, 3), dtype=np.uint8)
    out = augmented_epoch(x, np.random.default_rng(1))
    changed = sum(not np.array_equal(a, b) for a, b in zip(x, out))
    assert 10 <= changed <= 30 and out.shape == x.shape


def _synth_split(cli, tmp_path):
    data, split = tmp_path / "data", tmp_path / "split.csv"
    cli("data", "synth", data, "--per-class", 16, "--seed", 0)  # 4+ validation images
    cli("data", "split", data, "--out", split)
    return data, split


@pytest.mark.slow
def test_finetune_gives_a_cnn_model_that_converts_to_a_gated_bundle(tmp_path, cli_ok):
    cli = cli_ok
    data, split = _synth_split(cli, tmp_path)
    cli("train", "finetune", "--data", data, "--split", split, "--out", tmp_path / "ft",
        "--epochs", 1)
    info = json.loads((tmp_path / "ft" / "model.json").read_text())
    assert info["kind"] == "cnn" and info["best_epoch"] == 1 and info["train_blocks"] == 5
    cli("convert", tmp_path / "ft", "--out", tmp_path / "bundle", "--quant", "float32",
        "--data", data, "--split", split)
    m = load_bundle(tmp_path / "bundle").manifest
    assert m["kind"] == "cnn" and m["features_output"]["size"] == 1280 and "ood" in m
    # its gate refitted with the white point for overexposed fields only: the threshold is the
    # training images' 95th percentile of clipped share
    cli("gate", tmp_path / "bundle", "--data", data, "--split", split, "--white-point-overexposed")
    wp = load_bundle(tmp_path / "bundle").manifest["preprocessing"]["white_point"]
    train = [r["path"] for r in csv.DictReader(open(split)) if r["subset"] == "train"]
    shares = [clipped_share(read_rgb(data / p)) for p in train]
    assert wp["clipped_above"] == pytest.approx(np.percentile(shares, 95), abs=1e-4)


def test_with_a_white_point_every_image_of_an_epoch_is_scaled_to_it():
    from alledge.device.preprocess import channel_percentiles
    from alledge.train.finetune import augmented_epoch, with_white_point
    x = np.random.default_rng(0).integers(60, 200, (12, 32, 32, 3), dtype=np.uint8)
    wp = {"percentile": 75, "target": [243.0, 253.0, 251.0]}
    out = augmented_epoch(x, np.random.default_rng(1), white_point=wp)
    # clean or augmented, each lands on the target within a level or two of rounding
    for im in out:
        assert np.allclose(channel_percentiles(im, 75), wp["target"], atol=3)
    # the same draws as without it, then scaled: the augmentation comes first
    plain = augmented_epoch(x, np.random.default_rng(1))
    assert np.array_equal(out, with_white_point(plain, wp))


def test_turning_the_clean_share_gives_each_of_its_images_one_of_its_eight_views():
    from alledge.train.finetune import augmented_epoch, dihedral
    x = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    out = augmented_epoch(x, np.random.default_rng(2), clean_share=1.0, turn_clean=True)
    views = [[dihedral(im, k) for k in range(8)] for im in x]
    assert all(any(np.array_equal(o, v) for v in vs) for o, vs in zip(out, views))
    assert sum(np.array_equal(o, im) for o, im in zip(out, x)) < 20   # most are turned
    assert len({dihedral(x[0], k).tobytes() for k in range(8)}) == 8  # 8 distinct views
    # without turn_clean the clean share is untouched
    assert np.array_equal(augmented_epoch(x, np.random.default_rng(2), clean_share=1.0), x)


@pytest.mark.slow
def test_a_model_that_learnt_a_white_point_brings_it_to_its_bundle(tmp_path, cli_ok):
    cli = cli_ok
    data, split = _synth_split(cli, tmp_path)
    cli("train", "finetune", "--data", data, "--split", split, "--out", tmp_path / "ft",
        "--epochs", 1, "--white-point", "--max-gain", 1.8)
    info = json.loads((tmp_path / "ft" / "model.json").read_text())
    wp = info["white_point"]
    assert wp["percentile"] == 75 and len(wp["target"]) == 3
    assert info["max_gain"] == 1.8       # its augmentation brightened up to x1.8
    # no --white-point asked: the model's own is the bundle's, not a fresh measurement
    cli("convert", tmp_path / "ft", "--out", tmp_path / "bundle", "--quant", "int8",
        "--data", data, "--split", split, "--calibration", 20)
    got = load_bundle(tmp_path / "bundle").manifest["preprocessing"]["white_point"]
    assert got["target"] == wp["target"] and got["learnt"] is True
    # refitting the gate keeps it: the model cannot read inputs without it
    cli("gate", tmp_path / "bundle", "--data", data, "--split", split)
    again = load_bundle(tmp_path / "bundle").manifest["preprocessing"]["white_point"]
    assert again["target"] == wp["target"] and again["learnt"] is True
