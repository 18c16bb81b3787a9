"""How long a long make target took, step by step, into a result file.

    python -m alledge.convert.walltime STEPS_FILE OUT.json [NOTE]

STEPS_FILE holds one line per step as the target ran, "<name> <unix seconds>", the first
line its start (written by `make reproduce`); OUT.json gets each step's minutes, the total,
the note (what the run started from: a cold feature cache, say) and the provenance.
"""
import sys
from pathlib import Path

from alledge.device.fileio import atomic_write_json


def read_steps(path):
    """[(name, seconds)] in the order written; a malformed line is an error, not a skip."""
    steps = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValueError(f"{path}:{n}: expected '<name> <unix seconds>', got {line!r}")
        steps.append((parts[0], int(parts[1])))
    if len(steps) < 2:
        raise ValueError(f"{path}: a start and at least one step are needed")
    return steps


def summary(steps, note=""):
    minutes = [{"step": name, "minutes": round((t - before) / 60, 1)}
               for (_, before), (name, t) in zip(steps, steps[1:])]
    return {"total_minutes": round((steps[-1][1] - steps[0][1]) / 60, 1), "steps": minutes,
            "note": note}


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    from alledge.train.modeldir import provenance
    out = summary(read_steps(argv[0]), argv[2] if len(argv) == 3 else "")
    atomic_write_json(Path(argv[1]), {**out, "provenance": provenance()})
    print(f"{out['total_minutes']} minutes: " +
          ", ".join(f"{s['step']} {s['minutes']}" for s in out["steps"]))


if __name__ == "__main__":
    main(sys.argv[1:])
