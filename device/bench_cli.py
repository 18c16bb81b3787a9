"""`alledge bench [--bundle DIR] [--threads N] [--runs N] [--image PATH]`: latency per stage.

Stages: decode (JPEG/PNG bytes -> RGB), quality (the gate's measures and verdict),
preprocess (resize, dtype), invoke (set input, run, read output), ood (the out-of-domain
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
from .conformal import prediction_set
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
    times = {k: [] for k in ("decode", "quality", "preprocess", "invoke", "ood", "svm",
                             "end_to_end")}
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
    t0 = time.perf_counter()
    rgb = decode_rgb(data)
    t1 = time.perf_counter()
    quality.judge(quality.measure(rgb), classifier.thresholds)
    tq = time.perf_counter()
    x = classifier.prepare(rgb)
    t2 = time.perf_counter()
    out = classifier.infer(x)
    t3 = time.perf_counter()
    if classifier.ood is not None:
        classifier.ood.score(classifier.features(out))
    to = time.perf_counter()
    probs = classifier.to_probabilities(out)
    prediction_set(probs, classifier.bundle.classes, classifier.set_threshold or 1.0)
    t4 = time.perf_counter()
    ms = lambda a, b: (b - a) * 1000.0  # noqa: E731
    return {"decode": ms(t0, t1), "quality": ms(t1, tq), "preprocess": ms(tq, t2),
            "invoke": ms(t2, t3), "ood": ms(t3, to), "svm": ms(to, t4), "end_to_end": ms(t0, t4)}


def synthetic_jpeg(width=640, height=480, seed=0):
    """A smooth random colour frame, JPEG-encoded: something of a camera frame's size."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    frame = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes()
