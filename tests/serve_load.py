"""Bounded local load test of `alledge serve`: N concurrent uploads of N distinct images to a
real server on 127.0.0.1, then the results log is read back: every upload answered 200, and
every result in the log exactly once (by file name and sha256). Stops by itself: N requests,
one timeout each.

    .venv/bin/python tests/serve_load.py --out results/serve/load-test.json [--n 50]

Exit 0 when all held, 1 otherwise. Figures: wall time, requests/s, latency percentiles.
"""
import argparse
import hashlib
import json
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alledge.device.provenance import provenance  # noqa: E402
from serve_helpers import post_image, server, write_smears  # noqa: E402


def run(n, out):
    with tempfile.TemporaryDirectory() as tmp:
        images = write_smears(Path(tmp) / "images", n, seed=1)
        payloads = [(p.name, p.read_bytes()) for p in images]
        with server(tmp) as served:
            port, db = served
            def one(item):
                start = time.perf_counter()
                status, _, record = post_image(port, *item)
                return status, record, time.perf_counter() - start
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=n) as pool:
                replies = list(pool.map(one, payloads))
            wall = time.perf_counter() - start
            rss_mb = _rss_mb(served.pid)
            with sqlite3.connect(db) as conn:
                rows = conn.execute("SELECT source, input_sha256 FROM results").fetchall()
    want = sorted((name, hashlib.sha256(data).hexdigest()) for name, data in payloads)
    errors = [(s, r) for s, r, _ in replies if s != 200 or "error" in r]
    paths_match = all(r.get("path") == name for (name, _), (_, r, _) in zip(payloads, replies))
    lat = sorted(t for _, _, t in replies)
    report = {
        "provenance": provenance(),
        "server": "alledge serve: waitress, 4 threads, one interpreter",
        "bundle": next((r.get("bundle") for _, r, _ in replies if "bundle" in r), None),
        "images": "distinct 224x224 synthetic smear JPEGs (alledge.train.synth)",
        "uploads": n, "concurrency": n,
        "http_200": sum(1 for s, _, _ in replies if s == 200),
        "errors": len(errors), "first_error": errors[0] if errors else None,
        "paths_match": paths_match,
        "log_rows": len(rows),
        "each_result_logged_once": sorted(rows) == want,
        "server_rss_mb_after": rss_mb,
        "wall_s": round(wall, 3), "requests_per_s": round(n / wall, 2),
        "latency_s": {"p50": round(lat[len(lat) // 2], 3),
                      "p90": round(lat[int(len(lat) * 0.9)], 3), "max": round(lat[-1], 3)},
    }
    report["ok"] = (not errors and paths_match and report["each_result_logged_once"])
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=1) + "\n")
    return report


def _rss_mb(pid):
    """Resident memory of the server process (Linux), MiB; None elsewhere."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="uploads, all at once (default 50)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    if not 1 <= args.n <= 200:
        ap.error("--n must be 1..200: this is a bounded test")
    report = run(args.n, args.out)
    print(json.dumps({k: report[k] for k in ("ok", "uploads", "errors", "log_rows",
                                              "each_result_logged_once", "wall_s",
                                              "requests_per_s", "latency_s")}))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
