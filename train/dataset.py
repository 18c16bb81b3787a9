"""Finding the dataset on disk: the class folders and the image files in them.

Accepts the folder holding the class folders (Benign/ Early/ Pre/ Pro/, any case) or its
parent holding Original/ (the Kaggle layout). Never copies anything.
"""
import os
from dataclasses import dataclass, field
from pathlib import Path

from alledge.device import CLASSES

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


class DatasetError(ValueError):
    """The path cannot be used as a dataset at all (exit 2)."""


@dataclass
class Layout:
    root: Path                                        # folder holding the class folders
    class_dirs: dict = field(default_factory=dict)    # class name -> Path
    unknown_dirs: list = field(default_factory=list)  # folders that are not a known class
    stray_files: list = field(default_factory=list)   # files directly in root


def resolve_root(data):
    """Return the folder that holds the class folders."""
    data = Path(data)
    if not data.is_dir():
        raise DatasetError(f"{data} is not a folder")
    names = {p.name.lower(): p for p in data.iterdir() if p.is_dir()}
    if any(c.lower() in names for c in CLASSES):
        return data
    if "original" in names:
        return names["original"]
    raise DatasetError(f"{data} holds no class folders ({', '.join(CLASSES)}) and no Original/")


def find_layout(data):
    root = resolve_root(data)
    layout = Layout(root=root)
    known = {c.lower(): c for c in CLASSES}
    for p in sorted(root.iterdir()):
        if p.is_dir():
            if p.name.lower() in known:
                layout.class_dirs[known[p.name.lower()]] = p
            elif not p.name.startswith("."):
                layout.unknown_dirs.append(p)
        elif not p.name.startswith("."):
            layout.stray_files.append(p)
    return layout


def list_files(class_dir):
    """Every non-hidden file under a class folder, sorted (subfolders included)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return out


def list_images(data):
    """[(relative path, class name)] of every file in the class folders, sorted by path."""
    layout = find_layout(data)
    items = []
    for name in CLASSES:
        if name in layout.class_dirs:
            for f in list_files(layout.class_dirs[name]):
                items.append((f.relative_to(layout.root).as_posix(), name))
    return layout.root, sorted(items)
