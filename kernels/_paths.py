"""Where compiled kernels are cached on disk: never inside the installed package.

Numba's default puts a kernel's cache in ``__pycache__`` beside its source file,
which for an installed fastnet is ``site-packages/fastnet/kernels/__pycache__``.
A folder pip did not record survives ``pip uninstall`` and then shadows an editable
install of the same name (``import fastnet`` finds a namespace package without
``MLPClassifier``). So every kernel gets a cache of its own here, in this order:

1. ``NUMBA_CACHE_DIR`` when set (Numba's own setting wins, as for any Numba code);
2. ``FASTNET_CACHE_DIR`` when set;
3. the platform's per-user cache folder for fastnet (``~/.cache/fastnet`` on Linux,
   ``$XDG_CACHE_HOME/fastnet`` when that is set, ``~/Library/Caches/fastnet`` on
   macOS, ``%LOCALAPPDATA%\\fastnet\\Cache`` on Windows).

Inside it, a folder named by a hash of every kernel source file's content (and the
Numba version) holds this version's kernels: Numba's own stamp covers only the file
that defines a kernel, while the whole-network kernels compile in code from other
files (activations, losses, optimizers), which an upgrade may change. Numba's cache
(``kernels/_cache.py``) and the native cache (``fastnet._runtime``) are folders
inside it. Folders of older versions stay until removed by hand.

Without Numba's import: a process whose kernels load from the native cache reads
these too.
"""

import hashlib
import os
import pathlib

from . import _numba_internals

#: the kernels' source folder (``fastnet.kernels``, wherever it is installed)
FOLDER = pathlib.Path(__file__).parent


def source_hash(folder=None):
    """A short hash of every kernel source file's bytes (in ``folder``, by default
    this package's) and of Numba's version file."""
    folder = pathlib.Path(folder or FOLDER)
    digest = hashlib.sha1(_numba_internals.version_file())
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


#: this version's kernels' folder name inside :func:`cache_dir`
SOURCE_HASH = source_hash()


def cache_dir():
    """The folder fastnet's kernels are cached in, in this order: ``NUMBA_CACHE_DIR``
    (Numba's own setting wins, as for any Numba code), ``FASTNET_CACHE_DIR``, the
    platform's per-user cache folder for fastnet (``~/.cache/fastnet`` on Linux)."""
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if chosen:
        return chosen
    chosen = os.environ.get("FASTNET_CACHE_DIR")
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    return _numba_internals.user_cache_dir("fastnet")
