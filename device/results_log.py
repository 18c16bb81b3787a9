"""The results log: every classification, in a local SQLite database.

Location: $ALLEDGE_DB if set, else $ALLEDGE_HOME/results.db, else
~/.local/share/alledge/results.db; commands take --db PATH to override.

Durability: WAL journal, synchronous=FULL, one transaction per result, committed before the
result is printed — so a result the user saw survives a crash or a pulled plug, and a
killed process leaves a database that opens cleanly.
"""
import datetime
import json
import os
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id           INTEGER PRIMARY KEY,
    time         TEXT NOT NULL,     -- UTC, ISO 8601
    source       TEXT,              -- input file path, or the capture source
    frame        INTEGER,           -- frame number for capture, NULL for files
    input_sha256 TEXT,              -- of the file bytes, or of the RGB frame's pixels
    bundle       TEXT,              -- bundle id: name@manifest-sha256-prefix
    label        TEXT NOT NULL,
    probabilities TEXT NOT NULL,    -- JSON {class: p}
    latency_ms   REAL,
    quality      TEXT               -- JSON of the quality gate's measures, capture only
)
"""
COLUMNS = ("id", "time", "source", "frame", "input_sha256", "bundle", "label",
           "probabilities", "latency_ms", "quality")


class LogError(Exception):
    """The results database cannot be opened or written; one line naming it."""


def default_path(environ=None):
    environ = os.environ if environ is None else environ
    if environ.get("ALLEDGE_DB"):
        return Path(environ["ALLEDGE_DB"])
    if environ.get("ALLEDGE_HOME"):
        return Path(environ["ALLEDGE_HOME"]) / "results.db"
    return Path.home() / ".local" / "share" / "alledge" / "results.db"


class ResultsLog:
    def __init__(self, path=None):
        self.path = Path(path) if path else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode; each record() is one explicit transaction
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute(SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise LogError(f"{self.path}: cannot open the results log ({e})") from None

    def record(self, result, *, source=None, frame=None, input_sha256=None, bundle=None,
               quality=None):
        """Write one classification result (a Classifier result dict) and commit it."""
        row = (_now(), source, frame, input_sha256, bundle, result["label"],
               json.dumps(result["probabilities"]), result.get("latency_ms"),
               json.dumps(quality) if quality is not None else None)
        try:
            with self.conn:  # BEGIN ... COMMIT, or ROLLBACK on error
                self.conn.execute("BEGIN")
                self.conn.execute(
                    "INSERT INTO results (time, source, frame, input_sha256, bundle, label, "
                    "probabilities, latency_ms, quality) VALUES (?,?,?,?,?,?,?,?,?)", row)
        except sqlite3.Error as e:
            raise LogError(f"{self.path}: cannot write the results log ({e})") from None

    def recent(self, limit=None):
        """Newest first, as dicts with probabilities/quality parsed."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM results ORDER BY id DESC"
        params = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (int(limit),)
        try:
            rows = self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise LogError(f"{self.path}: cannot read the results log ({e})") from None
        out = []
        for row in rows:
            d = dict(zip(COLUMNS, row))
            d["probabilities"] = json.loads(d["probabilities"])
            d["quality"] = json.loads(d["quality"]) if d["quality"] else None
            out.append(d)
        return out

    def close(self):
        self.conn.close()


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
