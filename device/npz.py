"""Reading plain-array files (.npz) from a bundle: named arrays only, never unpickled."""
import numpy as np


def read_npz(path, fields, error, kind, what, optional=()):
    """{name: array} for `fields` (all required) and whichever of `optional` the file has.

    Anything unusable raises `error` with one line naming the file: a missing field
    ("not {kind}"), object arrays or a damaged archive ("unreadable {what}").
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in fields if k not in npz.files]
            if missing:
                raise error(f"{path}: not {kind} (missing {', '.join(missing)})")
            return {k: npz[k] for k in (*fields, *optional) if k in npz.files}
    except error:
        raise
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except ValueError as e:  # object arrays (pickles) or a damaged archive
        raise error(f"{path}: unreadable {what} ({e})") from None
    except Exception as e:  # zipfile.BadZipFile, OSError, EOFError...
        raise error(f"{path}: unreadable {what} ({type(e).__name__}: {e})") from None
