"""Copy the committable results of a Table 3 folder and a report folder into results/.

    python -m alledge.convert.publish MODELS_DIR REPORT_DIR|"" RESULTS_DIR

Takes the small files only (tables, metrics, model.json, training histories, report, plots,
provenance), never models, bundles or images.
"""
import shutil
import sys
from pathlib import Path

MODEL_FILES = ("metrics.json", "model.json", "history.csv")
TABLE_FILES = ("table3.md", "table3.csv", "table3.json")
REPORT_FILES = ("report.md", "report.csv", "report.json", "accuracy-vs-size.png",
                "accuracy-vs-latency.png")


def publish(models, report, dest):
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in TABLE_FILES:
        if (Path(models) / name).is_file():
            copied.append(shutil.copy2(Path(models) / name, dest / name))
    for info in sorted(Path(models).glob("*/model.json")):
        sub = dest / "models" / info.parent.name
        sub.mkdir(parents=True, exist_ok=True)
        for name in MODEL_FILES:
            if (info.parent / name).is_file():
                copied.append(shutil.copy2(info.parent / name, sub / name))
    if report:
        for name in REPORT_FILES:
            if (Path(report) / name).is_file():
                copied.append(shutil.copy2(Path(report) / name, dest / name))
    return copied


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    for p in publish(*sys.argv[1:]):
        print(p)
