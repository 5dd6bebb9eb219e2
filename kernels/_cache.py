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
files (activations, losses, optimizers), which an upgrade may change. Below that,
each source folder gets a subfolder named by a hash of its path (Numba's rule), so a
regular and an editable install never read each other's files. Folders of older
versions stay until removed by hand (each holds about 10 MB). Numba writes cache
files through a temporary file and a rename, so processes compiling into one folder
at once are safe. If the folder cannot be written (a read-only home, a sandbox), kernels
compile in memory and a warning says so once.
"""

import os
import warnings

from numba.core import config
from numba.core.caching import (
    CompileResultCacheImpl,
    FunctionCache,
    _CacheLocator,
    _SourceFileBackedLocatorMixin,
)

from .._runtime import native as _native

#: a short hash of every kernel source file's bytes and of Numba's version
source_hash = _native._source_hash
SOURCE_HASH = _native.SOURCE_HASH
#: the folder fastnet's kernels are cached in (see the module's docstring); the
#: native cache (``fastnet._runtime.native``) is a folder inside it
cache_dir = _native.cache_dir


class _Locator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """Numba's per-source-folder layout, under :func:`cache_dir`."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(
            cache_dir(), SOURCE_HASH, self.get_suitable_cache_subpath(py_file)
        )

    def get_cache_path(self):
        return self._cache_path


class _CacheImpl(CompileResultCacheImpl):
    _locator_classes = (_Locator,)


class KernelCache(FunctionCache):
    """Numba's function cache, located by :class:`_Locator` only."""

    _impl_class = _CacheImpl


_warned = []


def attach(dispatcher):
    """Give ``dispatcher`` (an ``njit`` dispatcher compiled with ``cache=False``, or
    a ``cfunc`` before it compiles) fastnet's on-disk cache; leave it uncached, with
    one warning per process, where the folder is not writable."""
    py_func = getattr(dispatcher, "py_func", None) or dispatcher._pyfunc
    try:
        dispatcher._cache = KernelCache(py_func)
    except RuntimeError:  # Numba's "no locator available": not writable
        if not _warned:
            _warned.append(True)
            setting = "NUMBA_CACHE_DIR" if config.CACHE_DIR else "FASTNET_CACHE_DIR"
            warnings.warn(
                f"fastnet cannot write its kernel cache folder {cache_dir()!r}; "
                f"kernels compile in memory in this process (set {setting} to a "
                "writable folder to keep them between runs)",
                RuntimeWarning,
                stacklevel=2,
            )
    return dispatcher
