"""Atomic ``.npz`` files: written to a temporary file beside the target, renamed.
They are read through :mod:`.archive`, which reads only the members named."""

import contextlib
import json
import os
import tempfile

import numpy as np


def save_npz(path, arrays, meta):
    """Write ``arrays`` (name -> ndarray) and JSON-able ``meta`` to ``path`` atomically
    (:func:`write_atomic`)."""
    write_atomic(path, lambda f: np.savez(f, __meta__=np.array(json.dumps(meta)),
                                          **arrays))  # fmt: skip


def write_atomic(path, write):
    """Write a file at ``path`` atomically: ``write(f)`` writes it (or ``write`` is
    its bytes).

    A crash or kill at any moment leaves either the old file or the new one, never a
    partial file: the data is written and fsynced to a temporary file in the same
    directory and then renamed over ``path`` (``os.replace`` is atomic on POSIX).
    """
    if isinstance(write, bytes):
        data = write
        write = lambda f: f.write(data)  # noqa: E731
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".fastnet-", suffix=".tmp")
    try:
        # mkstemp creates the file 0600; the model gets the mode a plain open()
        # would give it (an existing file's, else 0666 less the umask)
        os.chmod(tmp, _file_mode(path))
        with os.fdopen(fd, "wb") as f:
            write(f)
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
