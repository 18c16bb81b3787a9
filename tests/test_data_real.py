"""The data commands on the real dataset (ALLEDGE_DATA): the paper's Table 2, the committed
splits, and duplicates checked against an independent sha256 of every file."""
import csv
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from alledge.device import CLASSES

pytest.importorskip("sklearn")

SPLITS = Path(__file__).resolve().parent.parent / "results" / "splits"
TABLE2 = {"train": {"Benign": 353, "Early": 689, "Pre": 674, "Pro": 563},
          "test": {"Benign": 151, "Early": 296, "Pre": 289, "Pro": 241}}


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def check_report(real_data):
    from click.testing import CliRunner
    from alledge.device.cli import main
    r = CliRunner().invoke(main, ["data", "check", str(real_data), "--json"])
    assert r.exit_code == 1  # the real set has duplicates: "problems found"
    return json.loads(r.stdout)


@pytest.fixture(scope="session")
def file_hashes(real_data):
    """{relative path: sha256} of every file in the class folders, by hashlib alone."""
    out = {}
    for c in CLASSES:
        for f in sorted((real_data / c).iterdir()):
            out[f"{c}/{f.name}"] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def fresh_splits(real_data, tmp_path_factory):
    """{name: (CliRunner result, csv path)} of fresh plain and grouped splits."""
    from click.testing import CliRunner
    from alledge.device.cli import main
    out = tmp_path_factory.mktemp("splits")
    results = {}
    for name, flags in (("paper", []), ("grouped", ["--group-duplicates"])):
        r = CliRunner().invoke(main, ["data", "split", str(real_data),
                                      "--out", str(out / f"{name}.csv"), *flags])
        assert r.exit_code == 0, r.output
        results[name] = (r, out / f"{name}.csv")
    return results


def test_check_counts_and_nothing_unusable(check_report):
    assert check_report["counts"] == {"Benign": 504, "Early": 985, "Pre": 963, "Pro": 804}
    assert check_report["usable"] == 3256
    assert check_report["unusable"] == [] and check_report["converted"] == []
    assert check_report["unknown_folders"] == [] and check_report["empty_classes"] == []


def test_table2_counts(fresh_splits):
    r, path = fresh_splits["paper"]
    rows = read_csv(path)
    for s in ("train", "test"):
        counts = Counter(row["label"] for row in rows if row["subset"] == s)
        assert dict(counts) == TABLE2[s]
    assert "train: 353/689/674/563 = 2279" in r.stdout
    assert "test: 151/296/289/241 = 977" in r.stdout


def test_committed_splits_equal_fresh_ones(fresh_splits):
    for name in ("paper", "grouped"):
        assert (SPLITS / f"{name}.csv").read_bytes() == fresh_splits[name][1].read_bytes(), name


def test_split_sha256_column_is_the_file_hash(fresh_splits, file_hashes):
    rows = read_csv(fresh_splits["paper"][1])
    assert {row["path"]: row["sha256"] for row in rows} == file_hashes


def test_exact_duplicates_are_true_and_complete(check_report, file_hashes, real_data):
    groups = defaultdict(set)
    for path, sha in file_hashes.items():
        groups[sha].add(path)
    truth = {frozenset(g) for g in groups.values() if len(g) > 1}
    reported = {frozenset(d["paths"]) for d in check_report["exact_duplicates"]}
    assert reported == truth  # none wrong, none missed
    for d in check_report["exact_duplicates"]:  # and truly byte-identical
        first, *rest = (Path(real_data, p).read_bytes() for p in d["paths"])
        assert all(x == first for x in rest)
        assert hashlib.sha256(first).hexdigest() == d["sha256"]
        assert d["cross_class"] == (len({p.split("/")[0] for p in d["paths"]}) > 1)


def test_leak_figures_of_plain_split(fresh_splits, file_hashes):
    """The plain split leaks; the printed exact figure agrees with the CSV."""
    r, path = fresh_splits["paper"]
    rows = read_csv(path)
    train = {row["sha256"] for row in rows if row["subset"] == "train"}
    exact = sum(row["sha256"] in train for row in rows if row["subset"] == "test")
    assert exact == 11
    assert ("plain split: 11 test images have an identical copy and 39 an identical or "
            "near-identical copy in train") in r.stdout


def test_grouped_split_has_no_hash_on_both_sides(fresh_splits):
    rows = read_csv(fresh_splits["grouped"][1])
    train = {row["sha256"] for row in rows if row["subset"] == "train"}
    test = {row["sha256"] for row in rows if row["subset"] == "test"}
    assert not train & test


def test_grouped_split_keeps_near_duplicates_together(fresh_splits, check_report):
    """No group of near-duplicate pairs (as `data check` reports them) spans both subsets."""
    side = {row["path"]: row["subset"] for row in read_csv(fresh_splits["grouped"][1])}
    parent = {p: p for p in side}

    def find(p):
        while parent[p] != p:
            p = parent[p]
        return p

    pairs = [d["paths"] for d in check_report["near_duplicates"]]
    pairs += [d["paths"] for d in check_report["exact_duplicates"]]
    assert check_report["near_duplicates"]  # the real set has some
    for first, *rest in pairs:
        for p in rest:
            parent[find(p)] = find(first)
    subsets = defaultdict(set)
    for p, s in side.items():
        subsets[find(p)].add(s)
    assert all(len(s) == 1 for s in subsets.values())
    counts = Counter((p.split("/")[0], s) for p, s in side.items())
    for c in CLASSES:  # still about 70/30 per class
        n = counts[(c, "train")] + counts[(c, "test")]
        assert abs(counts[(c, "test")] - 0.3 * n) <= 0.02 * n
