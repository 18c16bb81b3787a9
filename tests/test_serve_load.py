"""50 concurrent uploads to a real `alledge serve`: no error, every result in the log once
(the load script itself, run as the README says; its figures are in results/serve/)."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "serve_load.py"


def test_fifty_concurrent_uploads_each_logged_once(tmp_path):
    out = tmp_path / "load.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--n", "50", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    report = json.loads(out.read_text())
    assert r.returncode == 0, (r.stdout, r.stderr[-2000:])
    assert report["http_200"] == 50 and report["errors"] == 0
    assert report["log_rows"] == 50 and report["each_result_logged_once"]
    assert report["paths_match"]
