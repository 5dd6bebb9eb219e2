"""Atomic ``.npz`` files: written to a temporary file beside the target, renamed."""

import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np


def save_npz(path, arrays, meta):
    """Write ``arrays`` (name -> ndarray) and JSON-able ``meta`` to ``path`` atomically.

    A crash or kill at any moment leaves either the old file or the new one, never a
    partial file: the data is written and fsynced to a temporary file in the same
    directory and then renamed over ``path`` (``os.replace`` is atomic on POSIX).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".fastnet-", suffix=".tmp")
    try:
        # mkstemp creates the file 0600; the model gets the mode a plain open()
        # would give it (an existing file's, else 0666 less the umask)
        os.chmod(tmp, _file_mode(path))
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __meta__=np.array(json.dumps(meta)), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _file_mode(path):
    """The permission bits for ``path``: the existing file's, else 0o666 less the
    process's umask (read from /proc where it can be: setting and restoring the
    umask to read it would race with other threads creating files)."""
    with contextlib.suppress(OSError):
        return os.stat(path).st_mode & 0o777
    umask = 0o022
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
    return 0o666 & ~umask


def is_npz(path):
    """Whether the file at ``path`` starts as every ``.npz`` (a zip archive) does."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load_npz(path, what="file"):
    """``(arrays, meta)`` from a file written by :func:`save_npz`; never unpickles.

    Raises ``ValueError`` naming the problem for a missing, truncated, corrupt or
    foreign file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{what} {path!r} does not exist")
    if not is_npz(path):
        raise ValueError(
            f"{what} {path!r} is not an .npz file: truncated, corrupt or of "
            "another format"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ValueError(f"{what} {path!r} is truncated or corrupt: {exc}") from exc
    except ValueError as exc:  # object arrays need pickle; np.load refuses them
        raise ValueError(f"{what} {path!r} cannot be read safely: {exc}") from exc
    meta = arrays.pop("__meta__", None)
    if meta is None or meta.dtype.kind != "U" or meta.ndim != 0:
        raise ValueError(f"{what} {path!r} is not a fastnet file (no metadata)")
    try:
        return arrays, json.loads(str(meta))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {path!r} has corrupt metadata: {exc}") from exc
