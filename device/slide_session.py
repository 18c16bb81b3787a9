"""A slide read from the command line: one session, its fields kept as they are read, and
its summary at the end, in the results log's SQLite file (alledge.device.sessions, the
tables `alledge serve` writes too).

Each field is written (its result row, then its field row, each committed) before it is
printed, so a field the user saw survives a kill -9 or a pulled plug; the summary is
computed from the stored fields and written when the slide ends.
"""
from .sessions import SessionStore
from .slide import RULE, record_status, summarize


class SlideSession:
    def __init__(self, log, name, planned):
        self.log = log
        self.store = SessionStore(log.path) if log is not None else None
        self.id = self.store.start_session(name, planned)["id"] if self.store else None
        self.records = []

    def keep(self, record, logged):
        """Store one field (after its result row, when `logged` wrote one)."""
        record = field_record(record)
        self.records.append(record)
        if self.store is not None:
            result_id = None
            if logged:  # one connection, one thread: its last insert is this result
                result_id = self.log.conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            self.store.add_field(record, session_id=self.id, result_id=result_id)
        return record

    def finish(self):
        records = ([f["record"] for f in self.store.fields(self.id)]
                   if self.store is not None else self.records)
        summary = {"session": self.id, **summarize(records)}
        if self.store is not None:
            self.store.put_summary(self.id, summary)
        return summary

    def close(self):
        if self.store is not None:
            self.store.close()


def field_record(record):
    """A capture line in the form of a classify record: status and reason."""
    if "status" in record:
        return record
    if "rejected" in record:
        return {**record, "status": "rejected",
                "reason": f"{record['rejected']}: {record.get('detail')}"}
    if "error" in record:
        return {**record, "status": "error"}
    return {**record, "status": record_status(record)}


def format_summary(summary):
    """The slide summary in a few lines of text."""
    probs = "  ".join(f"{c} {p:.3f}" for c, p in summary["mean_probabilities"].items())
    number = f" {summary['session']}" if summary.get("session") else ""
    lines = [f"slide{number}: {summary['call']} ({summary['why']})",
             f"  fields {summary['fields']}: answered {summary['answered']}, out of domain "
             f"{summary['out_of_domain']}, rejected {summary['rejected']}, unreadable "
             f"{summary['error']}"]
    if probs:
        lines.append(f"  mean probabilities over answered fields: {probs}")
    lines.append(f"  rule: {RULE}")
    return "\n".join(lines)
