"""A frame at the training scale -> 224x224 tiles -> one result per capture.

Geometry (never squash): tiles of the model's input size laid from the frame's centre (the
optical axis: best focus and light) outwards with a stride of STRIDE_FRACTION of a tile
(112 px: 50% overlap, so every white cell lies well inside some tile); the outermost row and
column are moved in to end at the frame's edges, so the whole frame is covered, none pads.
A frame smaller than a tile on a side is continued by reflection up to the tile size when
that side is at least MIN_FIELD_FRACTION of a tile (168 px: most of a field); a smaller
field is rejected.

White-cell test: a tile is classified only if at least MIN_STAINED of its pixels are strongly
stained, where a pixel is stained when it is purple or magenta (min(R, B) - G >= 25: red and
blue both well above green, as in stained nuclei and blast cytoplasm) or a dark violet
(B - G >= 30 and G below 0.7 x the frame's 90th-percentile green, the background). Red cells
(grey-blue or pink, G close to R or B) and background are not. Every one of the dataset's
3256 fields has at least 0.86% such pixels; the threshold is 0.5%.

Cost: at most MAX_TILES tiles are classified (each is one model run): the centre tile when
it passes the test, then the most stained, a tile overlapping a chosen one by half or more
skipped (its cells are already seen).

Aggregation: the capture is ok when at least one classified tile is ok (tiles whose view
differs from any training field go out of domain: a refusal of that view, not evidence
against the others). Its probabilities are the mean over the ok tiles that are clearly in
domain (out-of-domain score under CLEAR_FRACTION of the gate's threshold), or, when none is,
those of the ok tile scoring lowest: a view less like the training fields is judged worse
(measured: the true scale given, the mean of all ok tiles answers 90.8% of held-out x3
captures right, this rule 96.9%, results/captures/); its label is their argmax, its
prediction set the conformal set of that mean, its ood_score the highest of the tiles used.
Without a gate, the mean of all ok tiles. Otherwise the capture takes the most frequent of
the tiles' statuses (out_of_domain before rejected on a tie), with a reason naming the
counts.
"""
import cv2
import numpy as np

STRIDE_FRACTION = 0.5
MIN_FIELD_FRACTION = 0.75
MIN_STAINED = 0.005
MAX_TILES = 3
CLEAR_FRACTION = 0.6
STAIN_SHRINK = 4  # the stain map is computed on a 4x smaller copy: shares, not outlines


def pad_to_tile(rgb, size):
    """Reflect-pad a frame smaller than `size` on a side; None if a side is below
    MIN_FIELD_FRACTION of it."""
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_FIELD_FRACTION * size:
        return None
    dy, dx = max(0, size - h), max(0, size - w)
    if not dy and not dx:
        return rgb
    return cv2.copyMakeBorder(rgb, dy // 2, dy - dy // 2, dx // 2, dx - dx // 2,
                              cv2.BORDER_REFLECT_101)


def grid(h, w, size, stride_fraction=STRIDE_FRACTION):
    """(y, x) of the tiles covering an h x w frame (h, w >= size), row by row; the first
    listed is the centre tile."""
    stride = max(1, int(size * stride_fraction))
    ys, xs = _starts(h, size, stride), _starts(w, size, stride)
    centre = ((h - size) // 2, (w - size) // 2)
    rest = [(y, x) for y in ys for x in xs if (y, x) != centre]
    return [centre] + rest


def _starts(n, size, stride):
    """Tile starts along one side: from the centre tile outwards by `stride`, the outermost
    moved in to end at the edges."""
    c = (n - size) // 2
    k = -(-c // stride)  # steps needed to reach the edge from the centre
    starts = {min(max(c + i * stride, 0), n - size) for i in range(-k, k + 1)}
    return sorted(starts)


def stained_map(rgb, shrink=STAIN_SHRINK):
    """Boolean map (on a `shrink`-times smaller copy) of strongly stained pixels, and the
    shrink used."""
    h, w = rgb.shape[:2]
    k = shrink if min(h, w) >= 8 * shrink else 1
    small = rgb if k == 1 else cv2.resize(rgb, None, fx=1 / k, fy=1 / k,
                                          interpolation=cv2.INTER_AREA)
    r, g, b = (small[:, :, i].astype(np.int16) for i in range(3))
    background = np.percentile(g[::2, ::2], 90)
    purple = (np.minimum(r, b) - g) >= 25
    violet = ((b - g) >= 30) & (g < 0.7 * background)
    return purple | violet, k


def stained_shares(rgb, positions, size):
    """Share of stained pixels in each tile of `rgb`."""
    mask, k = stained_map(rgb)
    return shares_from_map(mask, positions, size, 1.0 / k)


def shares_from_map(mask, positions, size, to_map):
    """Share of stained pixels in each tile, from one map and its integral image; `to_map`
    turns the tiles' coordinates into the map's."""
    integral = cv2.integral(mask.astype(np.uint8))
    mh, mw = mask.shape
    out = []
    for y, x in positions:
        y0 = min(mh - 1, max(0, int(y * to_map)))
        x0 = min(mw - 1, max(0, int(x * to_map)))
        y1 = min(mh, max(y0 + 1, int(round((y + size) * to_map))))
        x1 = min(mw, max(x0 + 1, int(round((x + size) * to_map))))
        total = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        out.append(float(total) / ((y1 - y0) * (x1 - x0)))
    return out


def choose(positions, shares, size, max_tiles=MAX_TILES):
    """Indices of the tiles to classify: the centre tile (positions[0]) when it is stained
    enough, then the others stained enough, most stained first, none overlapping a chosen
    one by half a tile or more; at most max_tiles."""
    stained = [i for i, s in enumerate(shares) if s >= MIN_STAINED]
    order = [i for i in stained if i == 0] + sorted((i for i in stained if i != 0),
                                                    key=lambda i: -shares[i])
    picked = []
    for i in order:
        if len(picked) >= max_tiles:
            break
        y, x = positions[i]
        if all(_overlap(y, x, *positions[j], size) < 0.5 for j in picked):
            picked.append(i)
    return picked


def _overlap(y0, x0, y1, x1, size):
    dy, dx = max(0, size - abs(y0 - y1)), max(0, size - abs(x0 - x1))
    return dy * dx / float(size * size)


def aggregate(results, clear_below=None):
    """Tile results (Classifier.classify_rgb) -> the capture's status and fields.
    clear_below: the out-of-domain score under which a tile is clearly in domain."""
    ok = [r for r in results if r["status"] == "ok"]
    scored = sorted((r for r in ok if r.get("ood_score") is not None),
                    key=lambda r: r["ood_score"])
    if clear_below is not None and scored:
        ok = [r for r in scored if r["ood_score"] < clear_below] or scored[:1]
    if ok:
        classes = list(ok[0]["probabilities"])
        mean = np.mean([[r["probabilities"][c] for c in classes] for r in ok], axis=0)
        scores = [r["ood_score"] for r in ok if r.get("ood_score") is not None]
        return {"status": "ok", "mean": mean, "classes": classes,
                "ood_score": max(scores) if scores else None}
    others = [r for r in results if r["status"] != "ok"]
    count = {s: sum(r["status"] == s for r in others) for s in ("out_of_domain", "rejected")}
    status = max(("out_of_domain", "rejected"), key=lambda s: count[s])
    first = next(r for r in others if r["status"] == status)
    why = (f"{len(ok)} of {len(results)} tiles answered; "
           f"{count[status]} {status.replace('_', ' ')}, e.g. {first['reason']}")
    return {"status": status, "reason": why, "ood_score": first.get("ood_score"),
            "ood_threshold": first.get("ood_threshold")}
