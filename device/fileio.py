"""Atomic file writes: the one way alledge replaces a file (train, convert and device use it).

A reader sees the old file or the whole new one, never a torn one: the data goes to a unique
temporary file beside the target, is fsynced, renamed over the target, and the directory is
fsynced so the rename itself survives a power cut (the Pi's SD card is often unplugged).
"""
import contextlib
import json
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path, data):
    """Replace `path` with `data` (bytes) atomically; returns the path."""
    with atomic_writer(path) as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path, text, encoding="utf-8"):
    """Replace `path` with `text` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path, obj, indent=1):
    """Replace `path` with `obj` as JSON (one trailing newline) atomically; returns the path."""
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


@contextlib.contextmanager
def atomic_writer(path):
    """A binary file object whose contents replace `path` when the block ends without error.

    For writers that need a file object (np.save, np.savez: given a name, savez would append
    '.npz'). On error the temporary file is removed and `path` is left as it was.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f


@contextlib.contextmanager
def atomic_path(path, suffix=".tmp"):
    """A temporary path beside `path` to write by name; it replaces `path` when the block ends
    without error. For writers that only take a file name (Keras' save_weights wants its
    '.weights.h5' suffix: pass it as `suffix`)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:  # the writer closed it; fsync needs a descriptor
            os.fchmod(f.fileno(), _mode_for(path))  # mkstemp makes it 0600
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory):
    """Make a rename or a new entry in `directory` durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (and platforms) refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def _mode_for(path):
    """The target's mode when it exists, else what open() would give under the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def _read_umask():
    mask = os.umask(0o022)  # the only way to read it; set straight back
    os.umask(mask)
    return mask


_UMASK = _read_umask()
