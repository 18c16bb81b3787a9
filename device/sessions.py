"""Slide sessions and thumbnails, in the results log's own SQLite file, in tables of their own.

The `results` table (alledge.device.results_log) stays as the CLI writes it; these tables
point at its rows:

    sessions   one slide: a name and the number of fields the technician meant to read
    fields     one record shown by `alledge serve` (a result, or a field with no result:
               rejected by the quality gate, out of domain, unreadable), with its status,
               reason and, when it was logged, the id of its row in `results`
    summaries  a finished slide's summary (alledge.device.slide.summarize) and its call
    thumbnails a small JPEG per logged result, so the history shows what was classified
               without keeping the full image (the log stays small; a Pi's card is small)

A thumbnail is written in its own transaction after the result's: a crash in between leaves
a result without a thumbnail, never a thumbnail without a result.
"""
import datetime
import json
import sqlite3
from pathlib import Path

from .results_log import LogError
from .slide import record_status

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id      INTEGER PRIMARY KEY,
    time    TEXT NOT NULL,             -- UTC, ISO 8601
    name    TEXT NOT NULL,             -- the slide's name as the technician typed it
    planned INTEGER NOT NULL           -- fields the technician meant to read
);
CREATE TABLE IF NOT EXISTS fields (
    id            INTEGER PRIMARY KEY,
    time          TEXT NOT NULL,
    session_id    INTEGER REFERENCES sessions(id),  -- NULL outside a session
    result_id     INTEGER,                          -- row in results, NULL if not logged
    status        TEXT NOT NULL,                    -- ok|out_of_domain|rejected|error
    reason        TEXT,                             -- in words, when not ok
    record        TEXT NOT NULL                     -- the classify record, JSON
);
CREATE INDEX IF NOT EXISTS fields_session ON fields(session_id);
CREATE INDEX IF NOT EXISTS fields_result ON fields(result_id);
CREATE TABLE IF NOT EXISTS thumbnails (
    result_id INTEGER PRIMARY KEY,     -- row in results
    jpeg      BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS summaries (
    session_id INTEGER PRIMARY KEY REFERENCES sessions(id),
    time       TEXT NOT NULL,
    call       TEXT NOT NULL,          -- a class, or 'inconclusive'
    summary    TEXT NOT NULL           -- alledge.device.slide.summarize, JSON
);
"""


class SessionStore:
    """One connection to the log's file; use one store per thread."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise LogError(f"{self.path}: cannot open the sessions tables ({e})") from None

    def _write(self, sql, params):
        try:
            with self.conn:
                self.conn.execute("BEGIN")
                return self.conn.execute(sql, params).lastrowid
        except sqlite3.Error as e:
            raise LogError(f"{self.path}: cannot write ({e})") from None

    def _read(self, sql, params=()):
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise LogError(f"{self.path}: cannot read ({e})") from None

    def start_session(self, name, planned):
        sid = self._write("INSERT INTO sessions (time, name, planned) VALUES (?,?,?)",
                          (_now(), name, int(planned)))
        return self.session(sid)

    def session(self, sid):
        rows = self._read("SELECT id, time, name, planned FROM sessions WHERE id=?", (sid,))
        return dict(zip(("id", "time", "name", "planned"), rows[0])) if rows else None

    def sessions(self, limit=50):
        rows = self._read("SELECT id, time, name, planned FROM sessions ORDER BY id DESC "
                          "LIMIT ?", (int(limit),))
        return [dict(zip(("id", "time", "name", "planned"), r)) for r in rows]

    def add_field(self, record, session_id=None, result_id=None):
        status = record_status(record)
        reason = record.get("reason") or record.get("error")
        return self._write(
            "INSERT INTO fields (time, session_id, result_id, status, reason, record) "
            "VALUES (?,?,?,?,?,?)",
            (_now(), session_id, result_id, status, reason, json.dumps(record)))

    def fields(self, session_id):
        rows = self._read("SELECT id, time, result_id, status, reason, record FROM fields "
                          "WHERE session_id=? ORDER BY id", (session_id,))
        return [{"id": i, "time": t, "result_id": rid, "status": s, "reason": why,
                 "record": json.loads(rec)} for i, t, rid, s, why, rec in rows]

    def put_summary(self, session_id, summary):
        self._write("INSERT OR REPLACE INTO summaries (session_id, time, call, summary) "
                    "VALUES (?,?,?,?)",
                    (int(session_id), _now(), summary["call"], json.dumps(summary)))

    def slides(self, limit=20):
        """Sessions, newest first, each with its summary (None while unfinished)."""
        rows = self._read("SELECT s.id, s.time, s.name, s.planned, m.summary FROM sessions s "
                          "LEFT JOIN summaries m ON m.session_id = s.id ORDER BY s.id DESC "
                          "LIMIT ?", (int(limit),))
        return [{"id": i, "time": t, "name": n, "planned": p,
                 "summary": json.loads(m) if m else None} for i, t, n, p, m in rows]

    def put_thumbnail(self, result_id, jpeg):
        self._write("INSERT OR REPLACE INTO thumbnails (result_id, jpeg) VALUES (?,?)",
                    (result_id, sqlite3.Binary(jpeg)))

    def thumbnail(self, result_id):
        rows = self._read("SELECT jpeg FROM thumbnails WHERE result_id=?", (result_id,))
        return bytes(rows[0][0]) if rows else None

    def history(self, session_id=None, limit=100):
        """Logged results, newest first, with their session, status and thumbnail flag."""
        sql = ("SELECT r.id, r.time, r.source, r.frame, r.input_sha256, r.bundle, r.label, "
               "r.probabilities, r.latency_ms, f.session_id, r.status, f.reason, "
               "t.result_id IS NOT NULL FROM results r "
               "LEFT JOIN fields f ON f.result_id = r.id "
               "LEFT JOIN thumbnails t ON t.result_id = r.id ")
        params = []
        if session_id is not None:
            sql += "WHERE f.session_id = ? "
            params.append(int(session_id))
        sql += "ORDER BY r.id DESC LIMIT ?"
        params.append(int(limit))
        keys = ("id", "time", "source", "frame", "input_sha256", "bundle", "label",
                "probabilities", "latency_ms", "session_id", "status", "reason", "thumbnail")
        out = []
        for row in self._read(sql, params):
            d = dict(zip(keys, row))
            d["probabilities"] = json.loads(d["probabilities"]) if d["probabilities"] else {}
            d["thumbnail"] = bool(d["thumbnail"])
            out.append(d)
        return out

    def close(self):
        self.conn.close()


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
