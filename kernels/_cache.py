"""Numba's on-disk cache for every kernel, in fastnet's folder (``kernels/_paths.py``).

Below the folder of this version's kernels, each source folder gets a subfolder
named by a hash of its path (Numba's rule), so a regular and an editable install
never read each other's files. If the folder cannot be written (a read-only home,
a sandbox), kernels compile in memory and a warning says so once.

fastnet owns these files, so it reads and writes them itself (:class:`_Entries`),
in Numba's layout: per kernel, an index ``<base>.nbi`` of its signatures' data files
``<base>.<n>.nbc``. Each file is a record of ``_paths`` (it names itself and carries
its digest; a data file also holds the key it was compiled for), so a damaged,
truncated or swapped file, a folder or a link in its place, is a miss: the kernel
compiles again and the file is rewritten, with one warning per process. Any failure
to load is a miss, and saving never raises: a full disk or a vanished folder gives
one warning and the kernel stays in memory. (Numba's own reader lets such files
fail every later process until they are deleted: numba#10434.)

Numba's classes are reached through ``kernels/_numba_internals.py``.
"""

import itertools
import os
import pickle

from . import _numba_internals, _paths
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


class _Entries:
    """One kernel's files: what Numba 0.68.1's ``IndexDataCacheFile`` does (the same
    names; the index maps each key to a data file, the lowest free number for a new
    key), with every file a record (``_paths.write_record``) whose fields name it.
    The index holds the source's stamp (a stale one is an empty index, as in
    Numba); a data file also holds its key, checked on load."""

    def __init__(self, folder, base, stamp):
        self.folder = folder
        self.index_name = base + ".nbi"
        self._base = base
        self._stamp = stamp

    def load(self, key):
        """The data saved for ``key``; None where there is none; an exception where
        a file is damaged (:class:`~._paths.Damaged`) or does not unpickle."""
        name = self._index().get(key)
        body = None if name is None else self._read(name, "numba-data")
        if body is None:
            return None
        saved, data = pickle.loads(body)
        if saved != key:
            path = os.path.join(self.folder, name)
            raise _paths.Damaged(f"{path}: another signature's code")
        return data

    def save(self, key, data):
        """Write ``data`` for ``key`` (and the index, for a new key); an
        ``OSError`` where a file cannot be written."""
        try:
            overloads = self._index()
        except Exception:  # damaged (as load found): written again from scratch
            overloads = {}
        name = overloads.get(key)
        if name is None:
            taken = set(overloads.values())
            numbered = (f"{self._base}.{i}.nbc" for i in itertools.count(1))
            name = overloads[key] = next(n for n in numbered if n not in taken)
            self._write(self.index_name, "numba-index", (self._stamp, overloads))
        self._write(name, "numba-data", (key, data))

    def flush(self):
        self._write(self.index_name, "numba-index", (self._stamp, {}))

    def _index(self):
        body = self._read(self.index_name, "numba-index")
        if body is None:
            return {}
        stamp, overloads = pickle.loads(body)
        return overloads if stamp == self._stamp else {}

    def _read(self, name, kind):
        path = os.path.join(self.folder, name)
        found = _paths.read_record(path)
        if found is None:
            return None
        if found[0] != [kind, SOURCE_HASH, name]:
            raise _paths.Damaged(f"{path}: another file's record")
        return found[1]

    def _write(self, name, kind, value):
        path = os.path.join(self.folder, name)
        _paths.write_record(path, [kind, SOURCE_HASH, name], _numba.dumps(value))


class KernelCache(_numba.FunctionCache):
    """Numba's function cache, located by :class:`_Locator` only, its files read and
    written by :class:`_Entries`: any failure to load is a miss, and saving never
    raises (Numba 0.68.1's ``Cache.load_overload`` and ``save_overload``, with
    their errors caught)."""

    _impl_class = _CacheImpl

    def __init__(self, py_func):
        super().__init__(py_func)
        self._entries = _Entries(
            self.cache_path,
            self._impl.filename_base,
            self._impl.locator.get_source_stamp(),
        )

    def load_overload(self, sig, target_context):
        target_context.refresh()
        try:
            data = self._entries.load(self._index_key(sig, target_context.codegen()))
            return None if data is None else self._impl.rebuild(target_context, data)
        except Exception as exc:  # whatever the file held: compiled again
            if not isinstance(exc, _paths.Damaged):
                exc = f"{self._entries.index_name}: {type(exc).__name__}: {exc}"
            _paths.warn_damaged(exc)
            return None

    def save_overload(self, sig, data):
        try:
            if self._impl.check_cachable(data):
                self._impl.locator.ensure_cache_path()
                key = self._index_key(sig, data.codegen)
                self._entries.save(key, self._impl.reduce(data))
        except Exception as exc:  # a full disk, a vanished folder: kept in memory
            _paths.warn_unwritable(exc)

    def flush(self):
        try:
            self._entries.flush()
        except OSError as exc:
            _paths.warn_unwritable(exc)


def attach(dispatcher):
    """Give ``dispatcher`` (an ``njit`` dispatcher compiled with ``cache=False``, or
    a ``cfunc`` before it compiles) fastnet's on-disk cache; leave it uncached, with
    one warning per process, where the folder is not writable."""
    py_func = _numba_internals.python_function(dispatcher)
    try:
        _numba_internals.set_cache(dispatcher, KernelCache(py_func))
    except RuntimeError:  # Numba's "no locator available": not writable
        _paths.warn_unwritable()
    return dispatcher
