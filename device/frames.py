"""A capture at any scale -> one result: decode (reduced), scale, rescale, tile, aggregate.

For a bundle that records its training scale (manifest `scale`, alledge.device.scale):

    1. the frame's red-cell diameter: given (--rbc-diameter-px, --um-per-px), calibrated
       (`alledge calibrate`, for frames of the calibrated size) or estimated;
    2. a JPEG is decoded smaller in the DCT domain when it will be shrunk 2x or more (with a
       known scale, straight to the reduction; else first at a probe reduction, and again
       only if the cells came out too small there);
    3. the quality gate on the whole frame, then the scale estimate (no cells found, or a
       ratio out of range: rejected with the reason);
    4. the frame is resized (INTER_AREA, aspect kept) so its cells are the training size;
       within the tolerance it is left as it is;
    5. tiles, the white-cell test and aggregation (alledge.device.tiles).

A frame that is exactly one tile at the training scale (every dataset image) is classified
whole by Classifier.classify_rgb, as before: the same answer, with a `scale` added.
A bundle without `scale` classifies the whole frame as before (no scaling, no tiles).
"""
import time
from dataclasses import replace

import cv2
import numpy as np

from . import quality, scale as fscale, tiles
from .conformal import prediction_set
from .images import check_header, decode_rgb


class ScaleHint:
    """A known red-cell diameter (px of the full frame) and where it came from; a calibrated
    one holds only for frames of the size it was measured on."""

    def __init__(self, diameter_px, source, frame_size=None):
        self.diameter_px = float(diameter_px)
        self.source = source
        self.frame_size = tuple(frame_size) if frame_size else None

    def applies_to(self, width, height):
        return self.frame_size is None or self.frame_size == (width, height)


def classify_encoded(classifier, data, hint=None):
    """Encoded JPEG/PNG -> result dict (the scaled path). Raises ImageError."""
    start = time.perf_counter()
    fmt, width, height = check_header(data)[:3]
    train = classifier.training_diameter
    known = hint if hint is not None and hint.applies_to(width, height) else None
    reduce = 1
    if fmt == "jpeg":
        if known is not None:
            reduce = fscale.reduction_for(train / known.diameter_px)
        else:
            reduce = fscale.probe_reduction(width, height)
    rgb = decode_rgb(data, reduce)
    return classify_frame(classifier, rgb, start, known, reduce, data=data)


def classify_frame(classifier, rgb, start=None, hint=None, reduce=1, data=None):
    """HxWx3 RGB (decoded `reduce` times smaller than the capture) -> result dict."""
    start = time.perf_counter() if start is None else start
    train = classifier.training_diameter
    # sharpness means something only at the training scale: judged after resizing
    measures = quality.measure(rgb)
    verdict = quality.judge(measures, replace(classifier.thresholds, min_sharpness=0.0))
    if verdict is not None:
        return _rejected(f"{verdict[0]}: {verdict[1]}", measures, None, start)
    try:
        if hint is not None:
            diameter, source = hint.diameter_px, hint.source
        else:
            diameter, source = fscale.estimate_diameter(rgb) * reduce, "estimated"
        h, w = rgb.shape[:2]
        one_field = max(h, w) * reduce <= classifier.size
        factor = fscale.factor_for(diameter, train, one_field)
    except fscale.ScaleError as e:
        return _rejected(str(e), measures, None, start)
    info = {"rbc_diameter_px": round(diameter, 2), "training_px": round(train, 2),
            "factor": round(factor, 4), "source": source}
    resize = factor * reduce  # from the decoded frame to the training scale
    if resize > 1.0 + 1e-6 and reduce > 1 and data is not None:
        # probed too small (cells under the training size at this reduction): decode again
        reduce = fscale.reduction_for(factor)
        rgb = decode_rgb(data, reduce)
        resize = factor * reduce
    if abs(resize - 1.0) > 1e-6:
        h, w = rgb.shape[:2]
        rgb = cv2.resize(rgb, (max(1, round(w * resize)), max(1, round(h * resize))),
                         interpolation=cv2.INTER_AREA if resize < 1 else cv2.INTER_CUBIC)
        measures = quality.measure(rgb)
        verdict = quality.judge(measures, classifier.thresholds)
        if verdict is not None:
            return _rejected(f"{verdict[0]}: {verdict[1]}", measures, info, start)
    return classify_tiles(classifier, rgb, measures, info, start)


def classify_tiles(classifier, rgb, measures, info, start):
    size = classifier.size
    field = tiles.pad_to_tile(rgb, size)
    if field is None:
        h, w = rgb.shape[:2]
        return _rejected(f"field too small: {w}x{h} px at the training scale, a field needs "
                         f"{int(tiles.MIN_FIELD_FRACTION * size)} px on each side",
                         measures, info, start)
    h, w = field.shape[:2]
    positions = tiles.grid(h, w, size)
    shares = tiles.stained_shares(field, positions, size)
    picked = tiles.choose(positions, shares, size, classifier.max_tiles)
    if not picked:
        return _rejected(f"no white cell: no tile has {tiles.MIN_STAINED:.1%} stained "
                         f"pixels (most: {max(shares):.2%})", measures, info, start)
    if len(positions) == 1:  # one tile: the frame itself, judged exactly as before
        result = classifier.classify_rgb(field, start)
        result["scale"] = info
        if classifier.keep_tiles:
            result["tiles"] = _tiles_field(positions, shares, picked, [dict(result)], size)
        return result
    results = []
    for i in picked:
        y, x = positions[i]
        results.append(classifier.classify_rgb(np.ascontiguousarray(
            field[y:y + size, x:x + size])))
    agg = tiles.aggregate(results)
    if agg["status"] == "ok":
        result = classifier.result(agg["mean"], 0.0)
        threshold = classifier.set_threshold if classifier.set_threshold is not None else 1.0
        result.update(status="ok", ood_score=agg["ood_score"], quality=measures,
                      prediction_set=prediction_set(agg["mean"], classifier.bundle.classes,
                                                    threshold))
    else:
        result = {"status": agg["status"], "label": None, "probabilities": None,
                  "reason": agg["reason"], "quality": measures, "ood_score": agg["ood_score"],
                  "ood_threshold": agg["ood_threshold"]}
    result["scale"] = info
    if classifier.keep_tiles:
        result["tiles"] = _tiles_field(positions, shares, picked, results, size)
    return classifier._done(result, start)


def _tiles_field(positions, shares, picked, results, size):
    out = []
    for i, r in zip(picked, results):
        y, x = positions[i]
        out.append({"x": x, "y": y, "stained": round(shares[i], 4), "status": r["status"],
                    "label": r.get("label"), "probabilities": r.get("probabilities"),
                    "ood_score": r.get("ood_score"), "reason": r.get("reason")})
    return {"size": size, "stride": max(1, int(size * tiles.STRIDE_FRACTION)),
            "grid": len(positions),
            "stained": sum(s >= tiles.MIN_STAINED for s in shares),
            "classified": out}


def _rejected(reason, measures, info, start):
    result = {"status": "rejected", "label": None, "probabilities": None, "reason": reason,
              "quality": measures}
    if info is not None:
        result["scale"] = info
    result["latency_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
    return result
