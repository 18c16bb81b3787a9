"""A slide from its fields: the status of one classify record, and the summary rule.

A slide is read field by field; one field is one classify record. The slide gets a call only
when enough fields were answered and they agree:

    call = the class with the highest mean probability over the answered fields, made only if
           at least MIN_ANSWERED fields were answered (status ok) and at least MIN_AGREEMENT
           of them have that class as their label; otherwise the slide is "inconclusive".

Out-of-domain, rejected and unreadable fields are counted but never vote: a slide of blurred
or foreign fields stays inconclusive instead of borrowing a call from the one good field.
The CLI and `alledge serve` both summarize with `summarize`.
"""

MIN_ANSWERED = 5
MIN_AGREEMENT = 0.8
INCONCLUSIVE = "inconclusive"
RULE = (f"a call needs at least {MIN_ANSWERED} answered fields, and at least "
        f"{MIN_AGREEMENT:.0%} of them labelled with the class of highest mean probability")


def record_status(record):
    """ok | out_of_domain | rejected | error. Records from before `status` existed are ok
    when they have a label, error when they have `error`."""
    status = record.get("status")
    if status:
        return status
    if "error" in record:
        return "error"
    return "ok" if record.get("label") else "error"


def summarize(records, min_answered=MIN_ANSWERED, min_agreement=MIN_AGREEMENT):
    """Records of one slide's fields -> dict: counts, mean probabilities, call, why."""
    counts = {"fields": len(records), "answered": 0, "out_of_domain": 0, "rejected": 0,
              "error": 0}
    answered = []
    for r in records:
        status = record_status(r)
        key = "answered" if status == "ok" else status
        counts[key] = counts.get(key, 0) + 1
        if status == "ok":
            answered.append(r)
    mean = _mean_probabilities(answered)
    summary = {**counts, "mean_probabilities": mean, "call": INCONCLUSIVE, "rule": RULE}
    if len(answered) < min_answered:
        summary["why"] = (f"only {len(answered)} answered field(s); a call needs "
                          f"{min_answered}")
        return summary
    top = max(mean, key=mean.get)
    agree = sum(1 for r in answered if r["label"] == top)
    summary["agreement"] = round(agree / len(answered), 4)
    if agree / len(answered) < min_agreement:
        votes = _votes(answered)
        summary["why"] = (f"answered fields disagree ({votes}): {agree} of {len(answered)} "
                          f"say {top}, a call needs {min_agreement:.0%}")
        return summary
    summary["call"] = top
    summary["why"] = f"{agree} of {len(answered)} answered fields say {top}"
    return summary


def _mean_probabilities(records):
    if not records:
        return {}
    classes = list(records[0]["probabilities"])
    return {c: round(sum(r["probabilities"].get(c, 0.0) for r in records) / len(records), 6)
            for c in classes}


def _votes(records):
    votes = {}
    for r in records:
        votes[r["label"]] = votes.get(r["label"], 0) + 1
    return ", ".join(f"{c} {n}" for c, n in sorted(votes.items(), key=lambda kv: -kv[1]))
