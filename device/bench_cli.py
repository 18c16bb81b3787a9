"""`alledge bench [--bundle DIR] [--threads N] [--runs N] [--image PATH]`: latency per stage.

Stages: decode (JPEG/PNG bytes -> RGB), quality (the gate's measures and verdict), for a
bundle with a training scale also scale (the red-cell estimate) and tiling (factor, white-cell
test, the first tile cut at the training scale: alledge.device.frames), preprocess (resize, dtype), invoke (set input, run, read output), ood (the out-of-domain
score, bundles with a gate), svm (svm bundles only: probabilities and the prediction set)
and end to end. Every stage runs on every run, whatever the gate would have said, so the
figures are those of an image that is answered. Median and p90 over --runs after a few
warm-up runs. Without --image a synthetic 640x480 JPEG frame is used.
"""
import datetime
import json
import os
import platform
import time

import click
import cv2
import numpy as np

from . import exitcodes, quality
from .cli import fail
from .images import ImageError, decode_rgb, read_file
from .options import bundle_option, delegate_option, open_classifier, threads_option
from .provenance import provenance

WARMUP = 3


@click.command("bench")
@bundle_option
@threads_option
@delegate_option
@click.option("--runs", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--image", type=click.Path(dir_okay=False), default=None,
              help="Image to time (default: a synthetic 640x480 JPEG).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench(bundle_dir, threads, delegate, runs, image, as_json):
    """Time each stage of classification on this machine."""
    classifier = open_classifier(bundle_dir, threads, delegate)
    try:
        data = read_file(image) if image else synthetic_jpeg()
        decode_rgb(data)
    except ImageError as e:
        fail(f"{image}: {e}", exitcodes.USAGE)
    stages = ("decode", "quality", "preprocess", "invoke", "ood", "svm", "end_to_end")
    if classifier.training_diameter is not None:  # the scaled path: alledge.device.frames
        stages = ("decode", "quality", "scale", "tiling") + stages[2:]
    times = {k: [] for k in stages}
    for i in range(WARMUP + runs):
        t = time_once(classifier, data)
        if i >= WARMUP:
            for k, v in t.items():
                times[k].append(v)
    if classifier.svm is None:
        del times["svm"]
    if classifier.ood is None:
        del times["ood"]
    summary = {k: {"median_ms": round(float(np.median(v)), 3),
                   "p90_ms": round(float(np.percentile(v, 90)), 3)} for k, v in times.items()}
    if as_json:
        click.echo(json.dumps({"bundle": classifier.bundle.id, "runs": runs,
                               "threads": threads, "delegate": delegate, "image": image,
                               "stages": summary, "machine": _machine(),
                               "date": datetime.datetime.now(datetime.timezone.utc)
                               .isoformat(timespec="seconds"), "provenance": provenance()}))
        return
    click.echo(f"bundle {classifier.bundle.id}  runs {runs}  threads {threads or 'default'}"
               f"  delegate {delegate or 'none'}")
    click.echo(f"{'stage':<12}{'median ms':>10}{'p90 ms':>10}")
    for k, s in summary.items():
        click.echo(f"{k:<12}{s['median_ms']:>10.2f}{s['p90_ms']:>10.2f}")


def _machine():
    """Where the figures were measured: they mean nothing without it."""
    from .runtime import runtime
    name, version, _, _ = runtime()
    return {"system": platform.platform(), "processor": platform.machine(),
            "cores": os.cpu_count(), "python": platform.python_version(),
            "runtime": f"{name} {version}"}


def time_once(classifier, data):
    """Milliseconds of each stage for one image."""
    if classifier.training_diameter is not None:
        return time_scaled(classifier, data)
    t0 = time.perf_counter()
    rgb = decode_rgb(data)
    t1 = time.perf_counter()
    quality.judge(quality.measure(rgb), classifier.thresholds)
    tq = time.perf_counter()
    model = time_model(classifier, rgb)
    t4 = time.perf_counter()
    return {"decode": _ms(t0, t1), "quality": _ms(t1, tq), **model, "end_to_end": _ms(t0, t4)}


def time_model(classifier, rgb):
    """Milliseconds of one model run on an image: preprocess, invoke, ood, svm (the SVM or
    the CNN's probabilities, and the prediction set)."""
    t0 = time.perf_counter()
    x = classifier.prepare(rgb)
    t1 = time.perf_counter()
    out = classifier.infer(x)
    t2 = time.perf_counter()
    if classifier.ood is not None:
        classifier.ood.score(classifier.features(out))
    t3 = time.perf_counter()
    classifier.prediction_set(classifier.to_probabilities(out))
    t4 = time.perf_counter()
    return {"preprocess": _ms(t0, t1), "invoke": _ms(t1, t2), "ood": _ms(t2, t3),
            "svm": _ms(t3, t4)}


def _ms(a, b):
    return (b - a) * 1000.0


def time_scaled(classifier, data):
    """Stages of the scaled path, one pass each: decode (DCT-reduced for a large JPEG),
    quality (the pre-gate on the shrunk work copy), scale (the estimate), tiling (the factor,
    the stain map, the grid and the first tile cut and resized), then one model run on that
    tile. end_to_end is the real path (Classifier.classify_bytes) timed whole: it may run the
    model more than once (tiles, or zooms refining an estimated scale)."""
    from . import frames, scale as fscale, tiles
    from .images import check_header
    size = classifier.size
    t0 = time.perf_counter()
    fmt, width, height = check_header(data)[:3]
    reduce = fscale.probe_reduction(width, height) if fmt == "jpeg" else 1
    rgb = decode_rgb(data, reduce)
    t1 = time.perf_counter()
    h, w = rgb.shape[:2]
    k = -(-max(h, w) // frames.WORK_SIDE)
    work = rgb if k == 1 else cv2.resize(rgb, None, fx=1 / k, fy=1 / k,
                                         interpolation=cv2.INTER_AREA)
    quality.judge(quality.measure(work), classifier.thresholds)
    tq = time.perf_counter()
    try:
        diameter = fscale.estimate_diameter(work, max(h, w) * reduce > size) * k * reduce
    except fscale.ScaleError:
        diameter = classifier.training_diameter * reduce
    ts = time.perf_counter()
    one_field = max(h, w) * reduce <= size
    try:
        factor = fscale.factor_for(diameter, classifier.training_diameter, one_field)
    except fscale.ScaleError:
        factor = 1.0 / reduce
    resize = factor * reduce
    fh, fw = max(size, round(h * resize)), max(size, round(w * resize))
    positions = tiles.grid(fh, fw, size)
    mask, _ = tiles.stained_map(work, shrink=1)
    shares = tiles.shares_from_map(mask, positions, size, 1.0 / (resize * k))
    tiles.choose(positions, shares, size, classifier.max_tiles)
    y, x = positions[0]
    tile = frames._crop(rgb, (y + size / 2) / resize, (x + size / 2) / resize,
                        size / resize, size)
    tt = time.perf_counter()
    model = time_model(classifier, tile)
    t4 = time.perf_counter()
    classifier.classify_bytes(data)
    t5 = time.perf_counter()
    return {"decode": _ms(t0, t1), "quality": _ms(t1, tq), "scale": _ms(tq, ts),
            "tiling": _ms(ts, tt), **model, "end_to_end": _ms(t4, t5)}


def synthetic_jpeg(width=640, height=480, seed=0):
    """A smooth random colour frame, JPEG-encoded: something of a camera frame's size."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    frame = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes()
