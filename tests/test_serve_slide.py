"""The slide summary rule (alledge.device.slide): a call only from enough agreeing fields."""
from alledge.device.slide import INCONCLUSIVE, MIN_ANSWERED, record_status, summarize

P = {"Benign": 0.05, "Early": 0.05, "Pre": 0.1, "Pro": 0.8}


def ok(label, probs=None):
    return {"path": "f.jpg", "label": label, "probabilities": probs or
            {c: (0.7 if c == label else 0.1) for c in P}}


def test_status_of_old_and_new_records():
    assert record_status(ok("Pro")) == "ok"
    assert record_status({"path": "x", "error": "not a JPEG or PNG image"}) == "error"
    assert record_status({"path": "x", "status": "out_of_domain", "label": "Pro"}) == \
        "out_of_domain"
    assert record_status({"path": "x", "status": "rejected", "reason": "blank"}) == "rejected"
    assert record_status({"path": "x"}) == "error"


def test_enough_agreeing_fields_make_a_call():
    s = summarize([ok("Pro")] * 4 + [ok("Pre")])
    assert s["call"] == "Pro" and s["answered"] == 5 and s["agreement"] == 0.8
    assert abs(s["mean_probabilities"]["Pro"] - (0.7 * 4 + 0.1) / 5) < 1e-9
    assert "4 of 5" in s["why"]


def test_too_few_answered_fields_are_inconclusive_whatever_they_say():
    fields = [ok("Pro")] * (MIN_ANSWERED - 1) + [
        {"path": "b", "status": "rejected", "reason": "out of focus"},
        {"path": "c", "status": "out_of_domain", "label": "Pro", "probabilities": P},
        {"path": "d", "error": "truncated"}]
    s = summarize(fields)
    assert s["call"] == INCONCLUSIVE and s["answered"] == MIN_ANSWERED - 1
    assert (s["rejected"], s["out_of_domain"], s["error"]) == (1, 1, 1)
    assert f"only {MIN_ANSWERED - 1} answered" in s["why"]


def test_disagreeing_fields_are_inconclusive_and_say_so():
    s = summarize([ok("Pro")] * 3 + [ok("Pre")] * 3)
    assert s["call"] == INCONCLUSIVE and "disagree" in s["why"] and "Pro 3" in s["why"]


def test_an_empty_slide():
    s = summarize([])
    assert s["call"] == INCONCLUSIVE and s["mean_probabilities"] == {} and s["fields"] == 0
