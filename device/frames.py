"""A capture at any scale -> one result: decode (reduced), scale, tiles, aggregate.

For a bundle that records its training scale (manifest `scale`, alledge.device.scale):

    1. a JPEG is decoded smaller in the DCT domain when it will be shrunk 2x or more (with a
       known scale straight to its reduction; else at a probe reduction, and again smaller
       only if the cells came out under the training size there);
    2. the quality gate, but for sharpness, on a copy shrunk by a whole factor (WORK_SIDE);
    3. the frame's red-cell diameter: given (--rbc-diameter-px, --um-per-px), calibrated
       (`alledge calibrate`, for frames of the calibrated size) or estimated on that copy;
       no cells found, or a ratio out of range: rejected with the reason;
    4. tiles laid on the frame at the training scale (alledge.device.tiles), each cut from
       the decoded frame and resized alone (INTER_AREA, aspect kept): the frame itself is
       never resized whole; each tile is judged by Classifier.classify_rgb, sharpness
       included, at the training scale;
    5. an estimated scale is refined by the out-of-domain score (ZOOMS); a known one gives
       up to MAX_TILES tiles, aggregated.

A frame that is one tile or less at the training scale (every dataset image) is classified
whole by Classifier.classify_rgb, with a `scale` added; when that reading is out of domain by
its score, or unsure with cells larger than the training ones, it is read again at a few
zooms (FIELD_ZOOMS, LARGER_ZOOMS) and the reading most like the training fields is kept.
A bundle without `scale` classifies the whole frame as before (no scaling, no tiles).
"""
import time
from dataclasses import replace

import cv2
import numpy as np

from . import quality, scale as fscale, tiles
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


# The frame is examined (quality pre-gate, scale, stain) on a copy shrunk by a whole factor
# so its longer side is at most this: cheap on a 12 MP frame, and enough for cells of 9 px.
WORK_SIDE = 512


def classify_frame(classifier, rgb, start=None, hint=None, reduce=1, data=None):
    """HxWx3 RGB (decoded `reduce` times smaller than the capture) -> result dict."""
    start = time.perf_counter() if start is None else start
    train, size = classifier.training_diameter, classifier.size
    h, w = rgb.shape[:2]
    k = -(-max(h, w) // WORK_SIDE)
    work = rgb if k == 1 else cv2.resize(rgb, None, fx=1 / k, fy=1 / k,
                                         interpolation=cv2.INTER_AREA)
    # sharpness means something only at the training scale: each tile is judged on it later
    measures = {**quality.measure(work), "width": w * reduce, "height": h * reduce}
    verdict = quality.judge(measures, replace(classifier.thresholds, min_sharpness=0.0))
    if verdict is not None:
        return _rejected(f"{verdict[0]}: {verdict[1]}", measures, None, start)
    try:
        if hint is not None:
            diameter, source = hint.diameter_px, hint.source
        else:
            refine = max(h, w) * reduce > size  # a single field needs only a rough scale
            diameter = fscale.estimate_diameter(work, refine) * k * reduce
            source = "estimated"
            if reduce > 1 and data is not None and diameter / reduce < train:
                # probed too small: the cells need more pixels than this reduction left
                reduce = fscale.reduction_for(train / diameter)
                rgb = decode_rgb(data, reduce)
                h, w = rgb.shape[:2]
                k = -(-max(h, w) // WORK_SIDE)
                work = rgb if k == 1 else cv2.resize(rgb, None, fx=1 / k, fy=1 / k,
                                                     interpolation=cv2.INTER_AREA)
                diameter = fscale.estimate_diameter(work, refine) * k * reduce
        one_field = max(h, w) * reduce <= size
        factor = fscale.factor_for(diameter, train, one_field)
    except fscale.ScaleError as e:
        return _rejected(str(e), measures, None, start)
    info = {"rbc_diameter_px": round(diameter, 2), "training_px": round(train, 2),
            "factor": round(factor, 4), "source": source}
    resize = factor * reduce  # decoded frame -> training scale
    if one_field or (abs(resize - 1.0) < 1e-6 and max(h, w) <= size):
        return _one_field(classifier, rgb, measures, info, start)
    sh, sw = h * resize, w * resize
    if min(sh, sw) < tiles.MIN_FIELD_FRACTION * size:
        return _rejected(f"field too small: {sw:.0f}x{sh:.0f} px at the training scale, a "
                         f"field needs {int(tiles.MIN_FIELD_FRACTION * size)} px on each side",
                         measures, info, start)
    # tiles are laid on the frame at the training scale (continued by reflection up to one
    # tile where it is smaller); each is cut from the decoded frame and resized alone
    fh, fw = max(size, round(sh)), max(size, round(sw))
    pad = ((fh - round(sh)) // 2, (fw - round(sw)) // 2)
    positions = tiles.grid(fh, fw, size)
    mask, _ = tiles.stained_map(work, shrink=1)
    to_map = 1.0 / (resize * k)
    shares = tiles.shares_from_map(mask, [(y - pad[0], x - pad[1]) for y, x in positions],
                                   size, to_map)
    refine = source == "estimated" and classifier.ood is not None
    picked = tiles.choose(positions, shares, size, 1 if refine else classifier.max_tiles)
    if not picked:
        return _rejected(f"no white cell: no tile has {tiles.MIN_STAINED:.1%} stained "
                         f"pixels (most: {max(shares):.2%})", measures, info, start)
    centres = [((y + size / 2 - pad[0]) / resize, (x + size / 2 - pad[1]) / resize)
               for y, x in (positions[i] for i in picked)]
    if refine:
        return _refined(classifier, rgb, resize, centres[0], shares[picked[0]], measures,
                        info, start)
    results = [classifier.classify_rgb(_crop(rgb, cy, cx, size / resize, size))
               for cy, cx in centres]
    return _aggregated(classifier, results, positions, shares, picked, measures, info, start)


def _one_field(classifier, rgb, measures, info, start):
    """A frame of at most one tile at the training scale: classified whole, as before."""
    size = classifier.size
    field = tiles.pad_to_tile(rgb, size)
    if field is None:
        h, w = rgb.shape[:2]
        return _rejected(f"field too small: {w}x{h} px at the training scale, a field needs "
                         f"{int(tiles.MIN_FIELD_FRACTION * size)} px on each side",
                         measures, info, start)
    share = tiles.stained_shares(field, [(0, 0)], size)
    if share[0] < tiles.MIN_STAINED:
        return _rejected(f"no white cell: {share[0]:.2%} stained pixels, under "
                         f"{tiles.MIN_STAINED:.1%}", measures, info, start)
    # the field that is the decoded frame itself (at full size) was measured by the pre-gate
    whole = field is rgb and (measures["width"], measures["height"]) == rgb.shape[1::-1]
    result = classifier.classify_rgb(field, start, dict(measures) if whole else None)
    zooms = _field_zooms(classifier, result, info)
    if zooms:
        return _refined(classifier, field, 1.0, (size / 2, size / 2), share[0], measures,
                        info, start, zooms, first=result)
    result["scale"] = info
    if classifier.keep_tiles:
        result["tiles"] = _tiles_field([(0, 0)], share, [0], [dict(result)], size)
    return result


def _field_zooms(classifier, result, info):
    """The zooms a single field read at its own scale is read at again (FIELD_ZOOMS,
    LARGER_ZOOMS), or none: its scale was given, or its reading is in domain and its cells
    are not larger than the training ones, or are but it is clearly in domain, or it is out
    of domain with cells further than RESCUE_RATIO from the training size."""
    if info["source"] != "estimated" or classifier.ood is None:
        return ()
    score = result.get("ood_score")
    ratio = info["rbc_diameter_px"] / info["training_px"]
    if result["status"] == "out_of_domain" and score is not None:
        return FIELD_ZOOMS if 1.0 / RESCUE_RATIO <= ratio <= RESCUE_RATIO else ()
    clear = score is not None and score < STOP_FRACTION * classifier.ood_threshold
    larger = ratio > CELLS_LARGER
    return LARGER_ZOOMS if result["status"] == "ok" and larger and not clear else ()


def _aggregated(classifier, results, positions, shares, picked, measures, info, start):
    clear = (tiles.CLEAR_FRACTION * classifier.ood_threshold
             if classifier.ood_threshold is not None else None)
    agg = tiles.aggregate(results, clear)
    if agg["status"] == "ok":
        result = classifier.result(agg["mean"], 0.0)
        quality_seen = next(r["quality"] for r in results if r["status"] == "ok")
        result.update(status="ok", ood_score=agg["ood_score"], quality=quality_seen,
                      prediction_set=classifier.prediction_set(agg["mean"]))
    else:
        result = {"status": agg["status"], "label": None, "probabilities": None,
                  "reason": agg["reason"], "quality": measures, "ood_score": agg["ood_score"],
                  "ood_threshold": agg["ood_threshold"]}
    result["scale"] = info
    if classifier.keep_tiles:
        result["tiles"] = _tiles_field(positions, shares, picked, results, classifier.size)
    return classifier._done(result, start)


# The estimator reads a field's cells within about 10% (median; 21% at the 90th percentile),
# and the model wants its fields' own scale more closely than that (results/captures/). So
# the first chosen tile is classified at zooms of the estimated scale, in this order, and the
# one the out-of-domain score finds most like the training fields is kept; the search stops
# as soon as a tile scores under STOP_FRACTION of the gate's threshold (clearly in domain).
# Skewed up: the estimate reads 7% high on captures (median) and zooming in (a crop of the
# field) is safer than out (borders continued by reflection). One model run a zoom.
ZOOMS = (1.1, 0.9, 1.3, 1.45, 0.75)
STOP_FRACTION = tiles.CLEAR_FRACTION
# A single field is read at its own scale first (the scale estimate of so few cells is too
# rough to act on: resizing every field by it cost clean accuracy). When that reading is out
# of domain by its score, the field is tried at FIELD_ZOOMS, nearest first, the same way: a
# field taken at 1.25x the training magnification was flagged 5% of the time, and a zoom
# that brings its cells back to the training size reads it (only a field whose cells read
# within RESCUE_RATIO of the training size). When it is answered but not
# clearly in domain and its cells read over CELLS_LARGER times the training size, it is
# tried at LARGER_ZOOMS: there the rough estimate only chooses which fields get a second
# look, and the out-of-domain score which reading is kept. Measured on the default
# (2026-11-27, `alledge stress`, results/stress/paper/): a 1.25 zoom 97.34% -> 97.75% correct
# of all, clean unchanged; 1.07 model runs a clean field on average (scratch).
FIELD_ZOOMS = (0.9, 1.1, 0.8, 1.25)
# A field out of domain is tried at FIELD_ZOOMS only when its cells read within RESCUE_RATIO
# of the training size either way: nearby zooms mend a field taken at a nearby
# magnification, not one whose cells read twice the training size or more. Every try is
# another chance for something foreign to score under the threshold: drawn smears (`alledge
# data synth`) read 2.0-4.3 times the training size, and the retry let 19 of 200 through
# (2026-11-27, scratch). 99.8% of the paper split's 2279 training fields read within a
# factor 2 (tests/test_scale_real.py).
RESCUE_RATIO = 2.0
CELLS_LARGER = 1.1
LARGER_ZOOMS = (0.9, 0.8)


def _refined(classifier, decoded, resize, centre, share, measures, info, start, zooms=ZOOMS,
             first=None):
    """The tile centred at `centre` (px of `decoded`, which is `resize` times the training
    scale) at each of `zooms`, the one with the lowest out-of-domain score kept. `first`: the
    result already read at zoom 1 (it counts as tried)."""
    size = classifier.size
    cy, cx = centre
    stop = STOP_FRACTION * classifier.ood_threshold
    tried, best = ([], None) if first is None else ([(1.0, first)], (1.0, first))
    for zoom in zooms:
        r = classifier.classify_rgb(_crop(decoded, cy, cx, size / (resize * zoom), size))
        tried.append((zoom, r))
        if r.get("ood_score") is not None and (best is None or
                                               r["ood_score"] < best[1]["ood_score"]):
            best = (zoom, r)
        if best is not None and best[1]["ood_score"] < stop:
            break
    zoom, chosen = best if best is not None else tried[0]
    result = dict(chosen)
    result["scale"] = {**info, "factor": round(info["factor"] * zoom, 4), "refined": zoom}
    if classifier.keep_tiles:
        result["tiles"] = {"size": size, "centre": [round(cx * resize), round(cy * resize)],
                           "stained": round(share, 4), "zooms": [
                               {"zoom": z, "status": r["status"], "label": r.get("label"),
                                "probabilities": r.get("probabilities"),
                                "ood_score": r.get("ood_score"), "reason": r.get("reason")}
                               for z, r in tried]}
    return classifier._done(result, start)


def _crop(rgb, cy, cx, side, size):
    """The side x side square centred at (cy, cx), continued by reflection past the frame's
    edges, resized to size x size."""
    s = max(1, int(round(side)))
    y0, x0 = int(round(cy - s / 2)), int(round(cx - s / 2))
    h, w = rgb.shape[:2]
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = max(0, y0 + s - h), max(0, x0 + s - w)
    if top or left or bottom or right:
        part = rgb[max(0, y0):min(h, y0 + s), max(0, x0):min(w, x0 + s)]
        # reflection needs a border narrower than what it reflects; past that, repeat
        fits = max(top, bottom) < part.shape[0] and max(left, right) < part.shape[1]
        crop = cv2.copyMakeBorder(part, top, bottom, left, right,
                                  cv2.BORDER_REFLECT_101 if fits else cv2.BORDER_REPLICATE)
    else:
        crop = rgb[y0:y0 + s, x0:x0 + s]
    if s == size:
        return np.ascontiguousarray(crop)
    return np.ascontiguousarray(cv2.resize(
        crop, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_CUBIC))


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
