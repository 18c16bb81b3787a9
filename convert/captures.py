"""The evaluation of captures (issue 11): test images as a higher-magnification camera would
give them, and the red-cell scale estimator against references.

    python -m alledge.convert.captures --data DATA --split CSV --bccd BCCD --out results/captures

captures.json  each test image upscaled x2, x3, x4.5 and x5 (INTER_CUBIC), the field continued
               by reflection (a quarter of its height above and below, a third of its width
               left and right: the frame of shared/checks/9-captures), JPEG 90, classified by
               the device's one path (classify_data) with no scale given, and with the true
               scale given; against the same originals. Two subsets of the paper test split:
               every 10th image from the first (the check's 98; the zooms refining the scale
               were chosen on them) and every 10th from the sixth (held out).
scale.json     the estimator on every dataset image (against the training median, the
               bundle's scale), its Hough-circle cross-check, and BCCD's 364 photos against
               the median of their red-cell boxes (Pascal VOC, class RBC, boxes clear of the
               border, (width + height) / 2).
"""
import argparse
import glob
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from alledge.device.bundle import load_selected_bundle
from alledge.device.classify import Classifier, classify_data
from alledge.device.fileio import atomic_write_json
from alledge.device.frames import ScaleHint
from alledge.device.images import read_file, read_rgb
from alledge.device.provenance import provenance
from alledge.device.scale import ScaleError, estimate_diameter

ZOOMS = (2.0, 3.0, 4.5, 5.0)


def capture_bytes(path, zoom):
    im = cv2.resize(cv2.imread(str(path)), None, fx=zoom, fy=zoom,
                    interpolation=cv2.INTER_CUBIC)
    h, w = im.shape[:2]
    im = cv2.copyMakeBorder(im, h // 4, h // 4, w // 3, w // 3, cv2.BORDER_REFLECT_101)
    return cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def outcome(records, labels):
    n = len(records)
    answered = [(r, lab) for r, lab in zip(records, labels) if r.get("status") == "ok"]
    correct = sum(r["label"] == lab for r, lab in answered)
    statuses = {}
    for r in records:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    return {"n": n, "correct_of_all": round(correct / n, 4),
            "answered": round(len(answered) / n, 4),
            "accuracy_answered": round(correct / max(1, len(answered)), 4),
            "statuses": statuses}


def evaluate_captures(classifier, root, rows):
    train = classifier.training_diameter
    labels = [r["label"] for r in rows]
    paths = [Path(root) / r["path"] for r in rows]
    classifier.scale_hint = None
    out = {"originals": outcome([classify_data(classifier, read_file(p), str(p))
                                 for p in paths], labels)}
    for zoom in ZOOMS:
        data = [capture_bytes(p, zoom) for p in paths]
        classifier.scale_hint = None
        records = [classify_data(classifier, d, str(p)) for d, p in zip(data, paths)]
        err = [r["scale"]["rbc_diameter_px"] / (zoom * train) - 1 for r in records
               if r.get("scale")]
        classifier.scale_hint = ScaleHint(zoom * train, "given")
        given = [classify_data(classifier, d, str(p)) for d, p in zip(data, paths)]
        out[f"x{zoom:g}"] = {
            "estimated": outcome(records, labels),
            "scale_error": {"n": len(err), "median": round(float(np.median(err)), 4),
                            "median_abs": round(float(np.median(np.abs(err))), 4),
                            "p90_abs": round(float(np.percentile(np.abs(err), 90)), 4)},
            "given_true_scale": outcome(given, labels)}
    classifier.scale_hint = None
    return out


def hough_diameter(rgb):
    grey = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 3)
    c = cv2.HoughCircles(grey, cv2.HOUGH_GRADIENT, 1, 10, param1=60, param2=15, minRadius=5,
                         maxRadius=16)
    return None if c is None else 2 * float(np.median(c[0, :, 2]))


def scale_on_dataset(root, rows, train):
    est, hough = [], []
    for r in rows:
        rgb = read_rgb(Path(root) / r["path"])
        try:
            est.append(estimate_diameter(rgb))
        except ScaleError:
            est.append(None)
        if r["subset"] == "train":
            h = hough_diameter(rgb)
            if h:
                hough.append(h)
    ok = np.array([e for e in est if e is not None])
    rel = ok / train - 1
    return {"images": len(rows), "no_estimate": sum(e is None for e in est),
            "training_px": train, "median_px": round(float(np.median(ok)), 3),
            "error_vs_training_median": {
                "median": round(float(np.median(rel)), 4),
                "median_abs": round(float(np.median(np.abs(rel))), 4),
                "p90_abs": round(float(np.percentile(np.abs(rel), 90)), 4)},
            "ratio_percentiles": {str(p): round(float(np.percentile(ok / train, p)), 3)
                                  for p in (0, 1, 5, 50, 95, 99, 100)},
            "hough_training_median_px": round(float(np.median(hough)), 3),
            "hough_images": len(hough)}


def scale_on_bccd(bccd):
    errs, none = [], 0
    for xml in sorted(glob.glob(os.path.join(bccd, "Annotations", "*.xml"))):
        t = ET.parse(xml).getroot()
        width, height = int(t.find("size/width").text), int(t.find("size/height").text)
        sizes = []
        for o in t.findall("object"):
            if o.find("name").text.strip() != "RBC":
                continue
            b = o.find("bndbox")
            x0, y0, x1, y1 = (int(float(b.find(k).text)) for k in ("xmin", "ymin", "xmax",
                                                                    "ymax"))
            if x0 > 1 and y0 > 1 and x1 < width - 2 and y1 < height - 2:
                sizes.append((x1 - x0 + y1 - y0) / 2)
        jpg = os.path.join(bccd, "JPEGImages", Path(xml).stem + ".jpg")
        if len(sizes) < 3 or not os.path.exists(jpg):
            continue
        try:
            errs.append(estimate_diameter(read_rgb(jpg)) / float(np.median(sizes)) - 1)
        except ScaleError:
            none += 1
    e = np.array(errs)
    return {"images": len(e) + none, "no_estimate": none,
            "error_vs_boxes": {"median": round(float(np.median(e)), 4),
                               "median_abs": round(float(np.median(np.abs(e))), 4),
                               "p90_abs": round(float(np.percentile(np.abs(e), 90)), 4)}}


def main(argv=None):
    from alledge.train.dataset import resolve_root
    from alledge.train.split import read_split
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--bccd", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    root = resolve_root(a.data)
    rows, split_id = read_split(a.split)
    test = [r for r in rows if r["subset"] == "test"]
    classifier = Classifier(load_selected_bundle(None), threads=a.threads)
    prov = provenance()
    captures = {"bundle": classifier.bundle.id, "split_id": split_id,
                "frame": "upscaled INTER_CUBIC, reflect-padded h/4 and w/3 a side, JPEG 90",
                "check_subset": evaluate_captures(classifier, root, test[::10]),
                "held_out_subset": evaluate_captures(classifier, root, test[5::10]),
                "provenance": prov}
    Path(a.out).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(a.out) / "captures.json", captures)
    scale = {"bundle": classifier.bundle.id,
             "dataset": scale_on_dataset(root, rows, classifier.training_diameter),
             "bccd": scale_on_bccd(a.bccd), "provenance": prov}
    atomic_write_json(Path(a.out) / "scale.json", scale)
    print(json.dumps({k: v for k, v in scale.items() if k != "provenance"}))


if __name__ == "__main__":
    main()
