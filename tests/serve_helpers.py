"""A real `alledge serve` for the tests and the load script: started as a subprocess on a free
loopback port, spoken to over real HTTP (http.client: no client library in between)."""
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from alledge.train.synth import draw_smear

CLASSES = ("Benign", "Early", "Pre", "Pro")


def write_smears(folder, n, blur=False, seed=0):
    """n synthetic smear JPEGs (distinct pixels each); blurred far past the focus gate if
    `blur`. Returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        rgb = draw_smear(CLASSES[i % 4], rng)
        if blur:
            rgb = cv2.GaussianBlur(rgb, (0, 0), 6)
        p = folder / f"field-{i:03d}.jpg"
        cv2.imwrite(str(p), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        paths.append(p)
    return paths


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served(tuple):
    """(port, db path), with the server's process id as .pid."""

    def __new__(cls, items, pid):
        self = super().__new__(cls, items)
        self.pid = pid
        return self


@contextmanager
def server(tmp, *args, env=None):
    """Run `alledge serve --port P --db tmp/serve.db ARGS`; yields (port, db path)."""
    port = free_port()
    db = Path(tmp) / "serve.db"
    log = open(Path(tmp) / f"serve-{port}.log", "w")
    cmd = [sys.executable, "-m", "alledge.device.cli", "serve", "--port", str(port),
           "--db", str(db), *map(str, args)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"alledge serve exited {proc.returncode}: "
                                   f"{(Path(tmp) / f'serve-{port}.log').read_text()}")
            try:
                if request(port, "GET", "/", headers={"Authorization": "Bearer -"})[0]:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield Served((port, db), proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def request(port, method, path, body=None, headers=None, timeout=60):
    """(status, headers dict, body bytes) of one request to 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def multipart(field, filename, data, content_type="image/jpeg"):
    """(body, content-type header) of a form with one file field."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post_image(port, filename, data, path="/api/classify", field="image", headers=None):
    """POST one file as multipart; (status, headers, parsed JSON or raw bytes)."""
    body, ctype = multipart(field, filename, data)
    status, hdrs, raw = request(port, "POST", path, body,
                                {"Content-Type": ctype, **(headers or {})})
    try:
        return status, hdrs, json.loads(raw)
    except ValueError:
        return status, hdrs, raw


@contextmanager
def plain_bundle(tmp_path_factory):
    """$ALLEDGE_BUNDLE set to a small CNN bundle without the default's out-of-domain and
    scale gates: these tests are of the web app, and drawn smears are rightly refused by
    the default bundle (tests/test_refuse_to_guess.py holds that)."""
    from bundles import cnn_bundle
    old = os.environ.get("ALLEDGE_BUNDLE")
    os.environ["ALLEDGE_BUNDLE"] = str(cnn_bundle(tmp_path_factory))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("ALLEDGE_BUNDLE", None)
        else:
            os.environ["ALLEDGE_BUNDLE"] = old
