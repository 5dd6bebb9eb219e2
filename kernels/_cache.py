"""Numba's on-disk cache for every kernel, in fastnet's folder (``kernels/_paths.py``).

Below the folder of this version's kernels, each source folder gets a subfolder
named by a hash of its path (Numba's rule), so a regular and an editable install
never read each other's files. Numba writes cache files through a temporary file
and a rename, so processes compiling into one folder at once are safe. If the
folder cannot be written (a read-only home, a sandbox), kernels compile in memory
and a warning says so once.

Numba's classes are reached through ``kernels/_numba_internals.py``.
"""

import os
import warnings

from numba.core import config

from . import _numba_internals
from ._paths import SOURCE_HASH, cache_dir, source_hash

__all__ = ["SOURCE_HASH", "KernelCache", "attach", "cache_dir", "source_hash"]

_numba = _numba_internals.numba_side()


class _Locator(_numba.SourceFileBackedLocatorMixin, _numba.CacheLocator):
    """Numba's per-source-folder layout, under :func:`cache_dir`."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(
            cache_dir(), SOURCE_HASH, self.get_suitable_cache_subpath(py_file)
        )

    def get_cache_path(self):
        return self._cache_path


class _CacheImpl(_numba.CompileResultCacheImpl):
    _locator_classes = (_Locator,)


class KernelCache(_numba.FunctionCache):
    """Numba's function cache, located by :class:`_Locator` only."""

    _impl_class = _CacheImpl


_warned = []


def attach(dispatcher):
    """Give ``dispatcher`` (an ``njit`` dispatcher compiled with ``cache=False``, or
    a ``cfunc`` before it compiles) fastnet's on-disk cache; leave it uncached, with
    one warning per process, where the folder is not writable."""
    py_func = _numba_internals.python_function(dispatcher)
    try:
        _numba_internals.set_cache(dispatcher, KernelCache(py_func))
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
