"""The user cache directory for what training can rebuild but should not have to: converted
Lite weights and extracted features. $ALLEDGE_CACHE, else $XDG_CACHE_HOME/alledge, else
~/.cache/alledge; read at each call so tests can point it elsewhere."""
import os
from pathlib import Path


def cache_dir(*parts):
    """The cache directory, or a path under it (not created)."""
    base = os.environ.get("ALLEDGE_CACHE")
    if not base:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "alledge"
    return Path(base, *parts)
