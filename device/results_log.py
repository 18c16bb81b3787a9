"""The results log: every classification, in a local SQLite database.

Location: $ALLEDGE_DB if set, else $ALLEDGE_HOME/results.db, else
~/.local/share/alledge/results.db; commands take --db PATH to override.

Durability: WAL journal, synchronous=FULL, one transaction per result, committed before the
result is printed — so a result the user saw survives a crash or a pulled plug, and a
killed process leaves a database that opens cleanly.

Safety: a file that is not an SQLite database, or one that fails `PRAGMA quick_check`, or
whose `results` table is not ours, is refused, never written into: the log is a record.

Schema versions (PRAGMA user_version): 0, the first (label and probabilities NOT NULL, no
status); 2, with `status` and a nullable label. A version-0 log is migrated in place, in one
transaction: the rows are copied into the new table with status 'ok' (SQLite cannot drop a
NOT NULL constraint with ALTER TABLE, so the table is rebuilt rather than altered).
"""
import datetime
import json
import os
import sqlite3
import stat
from pathlib import Path

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    id           INTEGER PRIMARY KEY,
    time         TEXT NOT NULL,     -- UTC, ISO 8601
    source       TEXT,              -- input file path, or the capture source
    frame        INTEGER,           -- frame number for capture, NULL for files
    input_sha256 TEXT,              -- of the file bytes, or of the RGB frame's pixels
    bundle       TEXT,              -- bundle id: name@integrity-prefix
    label        TEXT,              -- NULL unless status is 'ok'
    probabilities TEXT,             -- JSON {{class: p}}, NULL when none were computed
    latency_ms   REAL,
    quality      TEXT,              -- JSON of the quality gate's measures
    status       TEXT NOT NULL DEFAULT 'ok'  -- ok | out_of_domain | rejected | error
)
"""
COLUMNS = ("id", "time", "source", "frame", "input_sha256", "bundle", "label",
           "probabilities", "latency_ms", "quality", "status")
OLD_COLUMNS = COLUMNS[:-1]  # schema version 0
STATUSES = ("ok", "out_of_domain", "rejected", "error")
SQLITE_MAGIC = b"SQLite format 3\x00"


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
        _check_file(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode; each record() is one explicit transaction
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            check = self.conn.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise LogError(f"{self.path}: the results log is damaged (quick_check: "
                               f"{check[0][0]}); refusing to write into it — move it aside "
                               "to start a new one")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except (sqlite3.Error, OSError) as e:
            raise LogError(f"{self.path}: cannot open the results log ({e})") from None

    def _migrate(self):
        """Create the table, or bring a version-0 one to this schema, in one transaction."""
        if self._columns() == COLUMNS:
            return  # the usual case: no write lock taken
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")  # one migrating process at a time
            columns = self._columns()  # again, under the lock: another may have migrated
            if not columns:
                self.conn.execute(SCHEMA.format(table="results"))
            elif columns == OLD_COLUMNS:
                self.conn.execute(SCHEMA.format(table="results_v2"))
                cols = ", ".join(OLD_COLUMNS)
                self.conn.execute(f"INSERT INTO results_v2 ({cols}, status) "
                                  f"SELECT {cols}, 'ok' FROM results")
                self.conn.execute("DROP TABLE results")
                self.conn.execute("ALTER TABLE results_v2 RENAME TO results")
            elif columns != COLUMNS:
                raise LogError(f"{self.path}: holds a 'results' table that is not an alledge "
                               "results log; refusing to write into it")
            self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _columns(self):
        return tuple(r[1] for r in self.conn.execute("PRAGMA table_info(results)"))

    def record(self, result, *, source=None, frame=None, input_sha256=None, bundle=None,
               quality=None):
        """Write one result and commit it.

        `result` is a Classifier result or a classify record: `status` (default 'ok' when it
        has a label, else 'error'), `label` and `probabilities` may be None.
        """
        label, probs = result.get("label"), result.get("probabilities")
        status = result.get("status") or ("ok" if label is not None else "error")
        if status not in STATUSES:
            raise LogError(f"{self.path}: unknown result status {status!r}")
        row = (_now(), source, frame, input_sha256, bundle, label,
               json.dumps(probs) if probs is not None else None, result.get("latency_ms"),
               json.dumps(quality) if quality is not None else None, status)
        try:
            with self.conn:  # BEGIN ... COMMIT, or ROLLBACK on error
                self.conn.execute("BEGIN")
                self.conn.execute(
                    "INSERT INTO results (time, source, frame, input_sha256, bundle, label, "
                    "probabilities, latency_ms, quality, status) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    row)
        except sqlite3.Error as e:
            raise LogError(f"{self.path}: cannot write the results log ({e})") from None

    def count(self):
        try:
            return self.conn.execute("SELECT count(*) FROM results").fetchone()[0]
        except sqlite3.Error as e:
            raise LogError(f"{self.path}: cannot read the results log ({e})") from None

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
            d["probabilities"] = _json_or_none(d["probabilities"])
            d["quality"] = _json_or_none(d["quality"])
            out.append(d)
        return out

    def close(self):
        self.conn.close()


def _check_file(path):
    """Refuse, before SQLite touches it, a path that is not an SQLite file or a new one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise LogError(f"{path}: cannot open the results log ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise LogError(f"{path}: not a regular file; the results log must be one")
    if st.st_size == 0:
        return  # an empty file: SQLite makes it a database
    try:
        with open(path, "rb") as f:
            magic = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        raise LogError(f"{path}: cannot open the results log ({e.strerror})") from None
    if magic != SQLITE_MAGIC:
        raise LogError(f"{path}: not an SQLite database; refusing to write into it (is --db "
                       "the right file?)")


def _json_or_none(text):
    """A stored JSON value, or None where the row holds something else (a foreign writer,
    a damaged value): history must show the other rows, not stop."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return None


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
