"""The web app of `alledge serve`: the page and the API beside it, as one WSGI callable.

bottle routes the requests; alledge.device.webguard runs before it on every request: the
token, the Host and Origin checks and the upload limit (from Content-Length, before a byte of
the body is read).
Every classification goes through `classify_data`, the CLI's one bytes -> record path, and
into the CLI's results log; the page's extras (sessions, fields, thumbnails) live in
alledge.device.sessions beside it. No part of a request ever names a file: the page's files
are read from the package once, at start, and looked up by name in a dict.
"""
import csv
import hashlib
import io
import json
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import bottle
import cv2

from .classify import classify_data, sha256_bytes
from .images import ImageError, decode_rgb
from .live import shrink
from .results_log import LogError, ResultsLog
from .sessions import SessionStore
from .slide import summarize
from .webguard import guard

THUMB_SIDE = 320
THUMB_QUALITY = 80
MAX_HISTORY = 500
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}


def create_app(classifier, db_path, live=None, token=None, max_upload=20 << 20,
               loopback=True):
    """The WSGI app. `token`: required on every request when set. `loopback`: the server
    listens on loopback only, so Host must name loopback (against DNS rebinding)."""
    app = bottle.Bottle()
    # bottle spools bodies above MEMFILE_MAX to a temp file; the guard already bounds them
    bottle.BaseRequest.MEMFILE_MAX = max_upload
    pages = {name: resources.files("alledge.device").joinpath("web", name).read_bytes()
             for name in STATIC}
    infer_lock = threading.Lock()   # one interpreter: one inference at a time
    db = LogThread(db_path)

    def classify(data, path):
        with infer_lock:
            return classify_data(classifier, data, path)

    def keep(record, session_id, source, frame, sha, quality, rgb_for_thumb, log_it=True):
        """Log a record as the CLI does (all but errors), then its field and thumbnail;
        returns the id of its row in the results log, or None."""
        logged = log_it and "error" not in record
        thumb = thumbnail(rgb_for_thumb) if logged and rgb_for_thumb is not None else None

        def write(log, store):
            result_id = None
            if logged:
                log.record(record, source=source, frame=frame, input_sha256=sha,
                           bundle=classifier.bundle.id, quality=quality)
                # one connection, one thread: its last insert is this one
                result_id = log.conn.execute("SELECT last_insert_rowid()").fetchone()[0]
                if thumb is not None:
                    store.put_thumbnail(result_id, thumb)
            store.add_field(record, session_id=session_id, result_id=result_id)
            return result_id
        return db.run(write)

    def store_call(method, *args, **kwargs):
        return db.run(lambda log, store: getattr(store, method)(*args, **kwargs))

    def session_param():
        value = bottle.request.query.get("session") or bottle.request.forms.get("session")
        if not value:
            return None
        if not value.isdigit() or store_call("session", int(value)) is None:
            raise bottle.HTTPError(404, f"no session {value!r}")
        return int(value)

    @app.get("/")
    def index():
        return page("index.html")

    @app.get("/static/<name>")
    def static(name):
        if name not in STATIC or name == "index.html":
            raise bottle.HTTPError(404, "no such file")
        return page(name)

    def page(name):
        bottle.response.content_type = STATIC[name]
        bottle.response.set_header("Cache-Control", "no-cache")
        return pages[name]

    @app.post("/api/classify")
    def api_classify():
        """The record `alledge classify --json` prints for the uploaded file, byte for byte;
        the id of its row in the results log comes in the X-Alledge-Result header."""
        name, data = uploaded_image()
        session_id = session_param()
        record = classify(data, name)
        if "error" in record:
            return json_line(record, 422)
        rgb = _decode_or_none(data)
        result_id = keep(record, session_id, name, None, sha256_bytes(data), None, rgb)
        return json_line(record, 200, result_id)

    @app.post("/api/capture")
    def api_capture():
        """Classify the live view's latest frame, if the quality gate passes it."""
        if live is None:
            raise bottle.HTTPError(409, "no camera: start alledge serve with --camera or "
                                        "--source")
        session_id = session_param()
        frame = live.latest(wait_s=3.0)
        if frame is None:
            raise bottle.HTTPError(503, live.status()["error"] or "no frame from the camera yet")
        path = f"{frame['source']} #{frame['number']}"
        if frame["verdict"] is not None:
            reason, detail = frame["verdict"]
            record = {"path": path, "status": "rejected", "reason": f"{reason}: {detail}",
                      "quality": frame["quality"]}
            # as `alledge capture`: a frame the gate rejects is not logged (a field, though)
            keep(record, session_id, frame["source"], frame["number"], None, None, None,
                 log_it=False)
            return json_line(record, 200)
        rgb = frame["rgb"]
        # lossless, fast: the record must come from the same bytes -> record path as a file
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_PNG_COMPRESSION, 1])
        record = classify(png.tobytes(), path)
        if "error" in record:
            return json_line(record, 500)
        sha = hashlib.sha256(rgb.tobytes()).hexdigest()  # as `alledge capture` logs frames
        result_id = keep(record, session_id, frame["source"], frame["number"], sha,
                         frame["quality"], rgb)
        return json_line(record, 200, result_id)

    @app.get("/api/live")
    def api_live():
        if live is None:
            return {"source": None, "error": "no camera: start alledge serve with --camera "
                                             "or --source"}
        return live.status()

    @app.get("/api/live.jpg")
    def api_live_jpg():
        if live is None:
            raise bottle.HTTPError(404, "no camera")
        frame = live.latest(wait_s=2.0)
        if frame is None or frame["jpeg"] is None:
            raise bottle.HTTPError(503, "no frame from the camera yet")
        bottle.response.content_type = "image/jpeg"
        bottle.response.set_header("Cache-Control", "no-store")
        return frame["jpeg"]

    @app.post("/api/sessions")
    def api_start_session():
        form = bottle.request.forms
        name = (form.get("name") or "").strip()[:100] or "slide"
        planned = form.get("fields") or "10"
        if not planned.isdigit() or not 1 <= int(planned) <= 1000:
            raise bottle.HTTPError(400, "fields must be a whole number from 1 to 1000")
        return store_call("start_session", name, int(planned))

    @app.get("/api/sessions")
    def api_sessions():
        return {"sessions": store_call("sessions")}

    @app.get("/api/sessions/<sid:int>")
    def api_session(sid):
        s = store_call("session", sid)
        if s is None:
            raise bottle.HTTPError(404, f"no session {sid}")
        fields = store_call("fields", sid)
        return {"session": s, "fields": fields,
                "summary": summarize([f["record"] for f in fields])}

    @app.get("/api/history")
    def api_history():
        return {"results": history_rows()}

    @app.get("/api/history.csv")
    def api_history_csv():
        rows = history_rows()
        classes = list(classifier.bundle.classes)
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["id", "time", "session", "source", "frame", "status", "label"]
                   + [f"p_{c}" for c in classes]
                   + ["latency_ms", "bundle", "input_sha256", "reason"])
        for r in rows:
            w.writerow([r["id"], r["time"], r["session_id"] or "", r["source"],
                        "" if r["frame"] is None else r["frame"], r["status"], r["label"]]
                       + [r["probabilities"].get(c, "") for c in classes]
                       + [r["latency_ms"], r["bundle"], r["input_sha256"], r["reason"] or ""])
        bottle.response.content_type = "text/csv; charset=utf-8"
        bottle.response.set_header("Content-Disposition",
                                   'attachment; filename="alledge-history.csv"')
        return out.getvalue()

    def history_rows():
        q = bottle.request.query
        limit = q.get("limit") or "100"
        if not limit.isdigit():
            raise bottle.HTTPError(400, "limit must be a whole number")
        session = q.get("session") or None
        if session is not None and not session.isdigit():
            raise bottle.HTTPError(400, "session must be a session id")
        return store_call("history", session_id=session and int(session),
                          limit=min(int(limit), MAX_HISTORY))

    @app.get("/api/thumbs/<rid:int>")
    def api_thumb(rid):
        jpeg = store_call("thumbnail", rid)
        if jpeg is None:
            raise bottle.HTTPError(404, f"no thumbnail for result {rid}")
        bottle.response.content_type = "image/jpeg"
        bottle.response.set_header("Cache-Control", "max-age=86400")
        return jpeg

    def uploaded_image():
        """(sanitized file name, bytes) of the multipart field `image`, or a 4xx."""
        ctype = bottle.request.content_type or ""
        if not ctype.startswith("multipart/form-data"):
            raise bottle.HTTPError(415, "send the image as multipart/form-data, field 'image'")
        try:
            upload = bottle.request.files.get("image")
        except (bottle.MultipartError, ValueError) as e:
            raise bottle.HTTPError(400, f"malformed multipart body ({e})")
        if upload is None:
            raise bottle.HTTPError(400, "no file in the multipart field 'image'")
        data = upload.file.read(max_upload + 1)
        if len(data) > max_upload:
            raise bottle.HTTPError(413, f"upload over the {max_upload} byte limit")
        return safe_name(upload.raw_filename), data

    for code in (400, 401, 403, 404, 405, 409, 411, 413, 415, 500, 503):
        app.error(code)(error_json)
    app.add_hook("after_request", _no_sniff)
    app.install(_log_errors_in_one_line)
    return guard(app, token=token, max_upload=max_upload, loopback=loopback)


class LogThread:
    """The results log and the session tables, opened once and used from one thread.

    SQLite's file locks belong to the process: opening another connection to the log (the
    log checks the file's header with open and close) could drop the locks that this
    process's other connections hold. So the app keeps one connection of each, on one
    thread; SQLite serializes writes anyway, and these are small.
    """

    def __init__(self, db_path):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alledge-log")
        self.log, self.store = self.pool.submit(
            lambda: (ResultsLog(db_path), SessionStore(db_path))).result()

    def run(self, fn):
        """fn(log, store) on the log's thread; its result or its exception."""
        return self.pool.submit(fn, self.log, self.store).result()


def json_line(record, status, result_id=None):
    """The record as `classify --json` prints it: json.dumps and a newline."""
    bottle.response.status = status
    bottle.response.content_type = "application/json"
    if result_id is not None:
        bottle.response.set_header("X-Alledge-Result", str(result_id))
    return json.dumps(record) + "\n"


def error_json(err):
    bottle.response.content_type = "application/json"
    if err.status_code == 500 and err.exception is not None:  # a bug: bottle logged it
        message = "internal error (see the server's console)"
    else:
        message = err.body if isinstance(err.body, str) else str(err.body)
    return json.dumps({"error": message}) + "\n"


def _log_errors_in_one_line(callback):
    """A results log that cannot be written is the operator's problem to fix, not a bug:
    one line on the server's console and in the answer, no traceback."""
    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except LogError as e:
            print(f"alledge serve: error: {e}", file=sys.stderr)
            raise bottle.HTTPError(500, str(e)) from None
    return wrapper


def _no_sniff():
    bottle.response.set_header("X-Content-Type-Options", "nosniff")
    bottle.response.set_header("X-Frame-Options", "DENY")


def safe_name(raw):
    """An uploaded file's name as shown and logged: its last component, printable, short.
    Only ever a label: it never becomes a path."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ()+]", "_", name).strip(" .")
    return name[:120] or "upload"


def thumbnail(rgb):
    small = shrink(rgb, THUMB_SIDE)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
    return jpeg.tobytes()


def _decode_or_none(data):
    try:
        return decode_rgb(data)
    except ImageError:
        return None
