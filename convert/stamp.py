"""Add what made it to a result that older code printed without it.

    python -m alledge.convert.stamp IN.json OUT.json CODE_COMMIT COMMAND

For figures measured by an earlier commit's code (`make bench-original`: the first shipped
default, timed by its own `alledge bench`, which printed no machine, date or provenance):
OUT gets IN's figures, "code_commit" (the commit whose code measured them), and provenance:
COMMAND, this checkout's commit (the target that ran it), this machine, now.
"""
import json
import subprocess
import sys
from pathlib import Path

from alledge.device.fileio import atomic_write_json
from alledge.device.provenance import provenance


def stamp(figures, code_commit, command, cwd=None):
    full = subprocess.run(["git", "rev-parse", "--verify", f"{code_commit}^{{commit}}"],
                          capture_output=True, text=True, cwd=cwd)
    if full.returncode != 0:
        raise ValueError(f"{code_commit} is not a commit of this repository")
    made = provenance(command=command, cwd=cwd)
    return {**figures, "code_commit": full.stdout.strip(), "machine": made["machine"],
            "date": made["date"], "provenance": made}


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    figures = json.loads(Path(argv[0]).read_text())
    if not isinstance(figures, dict):
        sys.exit(f"{argv[0]}: expected a JSON object")
    try:
        out = stamp(figures, argv[2], argv[3])
    except ValueError as e:
        sys.exit(f"error: {e}")
    atomic_write_json(Path(argv[1]), out)


if __name__ == "__main__":
    main(sys.argv[1:])
