"""`alledge serve` over real HTTP: a real waitress server, the real classifier and SQLite log."""
import csv
import io
import json
import socket
import sqlite3
import subprocess
import sys
import time

import pytest

from serve_helpers import plain_bundle, post_image, request, server, write_smears


@pytest.fixture(scope="module", autouse=True)
def _plain_bundle(tmp_path_factory):
    with plain_bundle(tmp_path_factory):
        yield


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("smears")
    return {"sharp": write_smears(d / "sharp", 6), "blurred": write_smears(d / "blurred", 2,
                                                                            blur=True)}


@pytest.fixture(scope="module")
def served(tmp_path_factory, images):
    """One server for the module, with the sharp smears as its live source."""
    tmp = tmp_path_factory.mktemp("serve")
    with server(tmp, "--source", images["sharp"][0].parent) as (port, db):
        yield port, db, tmp


def test_page_is_served_with_its_disclaimer(served):
    port, _, _ = served
    status, headers, body = request(port, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"research tool, not a diagnosis" in body
    for name in ("app.js", "style.css"):
        assert request(port, "GET", f"/static/{name}")[0] == 200


def test_classify_api_returns_the_cli_record(served, images, tmp_path, run_cli):
    port, db, _ = served
    image = images["sharp"][1]
    status, headers, record = post_image(port, image.name, image.read_bytes())
    assert status == 200, record
    cli = run_cli("classify", "--json", "--db", tmp_path / "c.db", image)
    want = json.loads(cli.stdout.splitlines()[0])
    want["path"] = image.name      # the API names the upload by its file name
    for key in want:
        if key != "latency_ms":
            assert record[key] == want[key], key
    assert set(record) == set(want)
    # logged once, as the CLI logs it, with a thumbnail beside it
    rid = int(headers["X-Alledge-Result"])
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT source, label FROM results WHERE id=?", (rid,)).fetchone()
    assert row == (image.name, record["label"])
    status, headers, jpeg = request(port, "GET", f"/api/thumbs/{rid}")
    assert status == 200 and jpeg[:3] == b"\xff\xd8\xff"


def test_the_json_line_is_exactly_json_dumps(served, images):
    port, _, _ = served
    image = images["sharp"][2]
    body_status, _, raw = request(port, "POST", "/api/classify",
                                  *_form(image.name, image.read_bytes()))
    record = json.loads(raw)
    assert raw.decode() == json.dumps(record) + "\n"


def _form(name, data):
    from serve_helpers import multipart
    body, ctype = multipart("image", name, data)
    return body, {"Content-Type": ctype}


@pytest.mark.parametrize("name,data,code,words", [
    ("notes.jpg", b"not an image\n", 422, "not a JPEG or PNG"),
    ("empty.png", b"", 422, "zero-byte"),
    ("cut.jpg", None, 422, "truncated"),
])
def test_bad_uploads_get_4xx_with_the_reason(served, images, name, data, code, words):
    port, _, _ = served
    if data is None:
        data = images["sharp"][0].read_bytes()[:2000]
    status, _, record = post_image(port, name, data)
    assert status == code and words in record["error"], record


def test_requests_without_an_image_are_refused_in_words(served):
    port, _, _ = served
    status, _, reply = post_image(port, "a.jpg", b"x", field="picture")
    assert status == 400 and "image" in reply["error"]
    status, _, body = request(port, "POST", "/api/classify", b"image=1",
                              {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and "multipart" in json.loads(body)["error"]


def test_upload_names_are_labels_never_paths(served, images):
    port, _, _ = served
    data = images["sharp"][3].read_bytes()
    status, _, record = post_image(port, "../../etc/pass wd;<b>.jpg", data)
    assert status == 200 and record["path"] == "pass wd__b_.jpg"
    for path in ("/static/../../pyproject.toml", "/static/..%2f..%2fpyproject.toml",
                 "/static/index.html/..", "/static/serve.py", "/etc/passwd"):
        assert request(port, "GET", path)[0] == 404, path


def test_a_large_content_length_is_refused_before_the_body(tmp_path, images):
    with server(tmp_path, "--max-upload-mb", "0.5") as (port, _):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: multipart/form-data; boundary=x\r\n"
                      b"Content-Length: 100000000\r\n\r\n")
            start = time.monotonic()
            reply = s.recv(4096)   # answered without waiting for the 100 MB
        assert reply.startswith(b"HTTP/1.1 413") and time.monotonic() - start < 5
        # just under the limit still gets through to the image check
        status, _, record = post_image(port, "big.jpg", b"\xff\xd8\xff" + b"0" * (500 << 10))
        assert status == 422 and "JPEG" in record["error"]


def test_off_loopback_hosts_and_cross_site_posts_are_refused(served, images):
    port, _, _ = served
    status, _, body = request(port, "GET", "/", headers={"Host": "attacker.example:80"})
    assert status == 403 and b"loopback" in body
    data = images["sharp"][0].read_bytes()
    status, _, _ = post_image(port, "a.jpg", data, headers={"Origin": "http://evil.example"})
    assert status == 403


def test_token_is_required_on_every_request_when_set(tmp_path, images):
    token = "a-lab-token-of-some-length"
    (tmp_path / "token").write_text(token + "\n")
    with server(tmp_path, "--token-file", tmp_path / "token") as (port, _):
        assert request(port, "GET", "/")[0] == 401
        assert request(port, "GET", "/api/history")[0] == 401
        assert request(port, "GET", "/", headers={"Authorization": "Bearer wrong"})[0] == 401
        data = images["sharp"][0].read_bytes()
        assert post_image(port, "a.jpg", data)[0] == 401
        auth = {"Authorization": f"Bearer {token}"}
        assert post_image(port, "a.jpg", data, headers=auth)[0] == 200
        status, headers, _ = request(port, "GET", f"/?token={token}")
        assert status == 303 and headers["Location"] == "/"
        cookie = headers["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in headers["Set-Cookie"]
        assert request(port, "GET", "/api/history", headers={"Cookie": cookie})[0] == 200


def test_a_bad_token_file_is_one_line(tmp_path, run_cli):
    (tmp_path / "token").write_text("short\n")
    r = run_cli("serve", "--token-file", tmp_path / "token", "--db", tmp_path / "s.db")
    assert r.exit_code == 2 and "at least 16" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("serve", "--token-file", tmp_path / "none", "--db", tmp_path / "s.db")
    assert r.exit_code == 2 and "cannot read the token file" in r.stderr


def test_off_loopback_without_a_token_file_prints_a_new_token():
    from alledge.device.serve import _is_loopback
    assert _is_loopback("127.0.0.1") and _is_loopback("localhost") and _is_loopback("::1")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.20")
    assert not _is_loopback("pi.local")


def test_live_view_capture_and_the_quality_gate(tmp_path, images):
    with server(tmp_path, "--source", images["blurred"][0].parent) as (port, db):
        status, _, body = request(port, "GET", "/api/live")
        live = json.loads(body)
        assert status == 200 and live["source"].endswith("blurred")
        status, headers, jpeg = request(port, "GET", "/api/live.jpg")
        assert status == 200 and jpeg[:3] == b"\xff\xd8\xff"
        live = json.loads(request(port, "GET", "/api/live")[2])
        assert live["verdict"]["ok"] is False and live["verdict"]["reason"] == "out of focus"
        assert live["quality"]["sharpness"] < 30
        status, _, body = request(port, "POST", "/api/capture")
        record = json.loads(body)
        assert status == 200 and record["status"] == "rejected"
        assert record["reason"].startswith("out of focus: sharpness")
    with server(tmp_path, "--source", images["sharp"][0].parent) as (port, db):
        status, headers, body = request(port, "POST", "/api/capture")
        record = json.loads(body)
        assert status == 200 and record["label"] and "X-Alledge-Result" in headers
        with sqlite3.connect(db) as conn:
            frame, quality = conn.execute("SELECT frame, quality FROM results").fetchone()
        assert frame >= 1 and json.loads(quality)["sharpness"] >= 30


def test_a_video_file_feeds_the_live_view_in_a_loop(tmp_path, images):
    import cv2
    video = tmp_path / "recording.avi"
    out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (224, 224))
    for p in images["sharp"][:3]:
        out.write(cv2.imread(str(p)))
    out.release()
    with server(tmp_path, "--source", video) as (port, _):
        deadline = time.monotonic() + 20
        frame = 0
        while frame <= 4 and time.monotonic() < deadline:  # past the 3 frames: it looped
            frame = json.loads(request(port, "GET", "/api/live")[2])["frame"] or 0
            time.sleep(0.3)
        assert frame > 4
        status, _, body = request(port, "POST", "/api/capture")
        assert status == 200 and json.loads(body)["path"].startswith(str(video) + " #")


def test_without_a_camera_capture_says_how_to_get_one(tmp_path):
    with server(tmp_path) as (port, _):
        assert json.loads(request(port, "GET", "/api/live")[2])["source"] is None
        status, _, body = request(port, "POST", "/api/capture")
        assert status == 409 and "--source" in json.loads(body)["error"]


def test_a_slide_session_history_and_csv(served, images):
    port, _, _ = served
    status, _, body = request(port, "POST", "/api/sessions", b"name=slide+7&fields=3",
                              {"Content-Type": "application/x-www-form-urlencoded"})
    session = json.loads(body)
    assert status == 200 and session["name"] == "slide 7" and session["planned"] == 3
    sid = session["id"]
    for image in images["sharp"][:3]:
        status, _, _ = post_image(port, image.name, image.read_bytes(),
                                  path=f"/api/classify?session={sid}")
        assert status == 200
    post_image(port, "junk.jpg", b"junk", path=f"/api/classify?session={sid}")  # not a field
    got = json.loads(request(port, "GET", f"/api/sessions/{sid}")[2])
    assert len(got["fields"]) == 3
    summary = got["summary"]
    assert summary["answered"] == 3 and summary["call"] == "inconclusive"
    assert "only 3 answered" in summary["why"] and "5" in summary["rule"]
    history = json.loads(request(port, "GET", f"/api/history?session={sid}")[2])["results"]
    assert [r["source"] for r in history] == [p.name for p in images["sharp"][:3]][::-1]
    assert all(r["session_id"] == sid and r["thumbnail"] for r in history)
    status, headers, raw = request(port, "GET", f"/api/history.csv?session={sid}")
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    assert len(rows) == 3 and {"p_Benign", "p_Pro", "status", "session"} <= set(rows[0])
    assert request(port, "GET", "/api/history?session=x")[0] == 400
    assert post_image(port, "a.jpg", images["sharp"][0].read_bytes(),
                      path="/api/classify?session=999999")[0] == 404


def test_a_log_that_refuses_writes_is_one_line_not_a_traceback(tmp_path, images):
    with server(tmp_path) as (port, db):
        with sqlite3.connect(db) as conn:  # the log starts refusing inserts, as a full disk would
            conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON results "
                         "BEGIN SELECT RAISE(ABORT, 'no space left (test)'); END")
        status, _, reply = post_image(port, "a.jpg", images["sharp"][0].read_bytes())
        assert status == 500 and "cannot write the results log" in reply["error"]
        assert "no space left (test)" in reply["error"]
    console = next(tmp_path.glob("serve-*.log")).read_text()
    assert "error:" in console and "Traceback" not in console


def test_a_bad_db_or_camera_stops_serve_in_one_line(tmp_path, run_cli):
    (tmp_path / "file").write_text("x")
    r = run_cli("serve", "--db", tmp_path / "file" / "s.db", "--port", "1")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "error:" in r.stderr
    r = run_cli("serve", "--db", tmp_path / "s.db", "--source", tmp_path / "nothing.avi")
    assert r.exit_code == 4 and "no such file" in r.stderr and "Traceback" not in r.stderr


def test_a_missing_serve_extra_is_one_line_exit_2():
    code = ("import sys; sys.modules['bottle'] = None\n"
            "from alledge.device.cli import main; main(['serve'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "pip install 'alledge[serve]'" in r.stderr
