"""Reading the ``.npz`` files fastnet writes (:mod:`.atomic`), bounded: model files
and checkpoints alike.

A read opens only the members its caller names, and checks each before it reads:
the zip directory's entry before the member is opened (:data:`ENTRY_CHECKS`), the
``.npy`` header before its data is decompressed or an array allocated
(:data:`HEADER_CHECKS`). So a file cannot make a read decompress more than its own
bytes honestly expand to, nor allocate more than the header of an array it was
asked for declares; a member nobody names (a 2 GiB one of zeros) is never opened.
Every problem is a ``ValueError`` naming the file and the member.
"""

import contextlib
import json
import math
import os
import re
import zipfile
import zlib

import numpy as np

from .atomic import is_npz
from .checks import FLOAT_DTYPES

#: the longest ``__meta__`` member, and the deepest nesting of its JSON, a read
#: accepts (JSON's parser recurses; a user's metadata holds column names)
META_BYTES = 16 * 2**20
META_DEPTH = 64
#: deflate's largest ratio of output to input (a 258-byte run in about two bits)
DEFLATE_RATIO = 1032


# -- the checks of a member: (archive, key, entry[, header]), each a ValueError ------
def _check_entry(archive, key, entry):
    """Stored or deflated (what ``np.savez`` and ``np.savez_compressed`` write), not
    encrypted, and no larger than its compressed bytes can honestly expand to: the
    directory's size, which a read is held to, is then bounded by the file's own."""
    if entry.flag_bits & 1:
        raise archive.bad(f"array {key!r} is encrypted")
    if entry.compress_type == zipfile.ZIP_STORED:
        honest = entry.file_size == entry.compress_size
    elif entry.compress_type == zipfile.ZIP_DEFLATED:
        honest = entry.file_size <= DEFLATE_RATIO * entry.compress_size
    else:
        raise archive.bad(f"array {key!r} has zip compression {entry.compress_type}")
    if not honest:
        raise archive.bad(
            f"array {key!r} declares {entry.file_size} bytes in "
            f"{entry.compress_size} compressed ones"
        )


def _check_meta_size(archive, key, entry):
    """``__meta__`` no longer than :data:`META_BYTES`, before it is opened."""
    if key == "__meta__" and entry.file_size > META_BYTES:
        raise archive.bad(
            f"__meta__ is {entry.file_size} bytes, more than the {META_BYTES} a "
            f"{archive.what}'s document may have"
        )


def _check_dtype(archive, key, entry, header):
    """Numbers, booleans or text in this machine's byte order, floats in float32 or
    float64 (the kernels' types), each element at least one byte: never objects,
    which only pickle could read."""
    dtype = header[1]
    if dtype.hasobject:
        raise archive.bad(
            f"array {key!r} holds Python objects, which cannot be read safely "
            "(that needs pickle)"
        )
    if (
        dtype.kind not in "biufU"
        or not dtype.isnative
        or (dtype.kind == "f" and dtype not in FLOAT_DTYPES)
        or dtype.itemsize == 0  # any count of elements in no bytes at all
    ):
        raise archive.bad(
            f"array {key!r} has dtype {dtype.str} ({dtype}); a {archive.what} holds "
            "float32 or float64, integers, booleans or text, in native byte order"
        )


def _check_size(archive, key, entry, header):
    """The member's size in the directory is exactly its header plus its shape times
    its itemsize: reading it then allocates what the file's bytes hold, no more."""
    shape, dtype, start = header
    if (
        min(shape, default=0) < 0
        or entry.file_size != start + math.prod(shape) * dtype.itemsize
    ):
        raise archive.bad(
            f"array {key!r} declares shape {shape} of {dtype}, but its member holds "
            f"{entry.file_size - start} bytes of data"
        )


#: the checks of every member a read names, in order: ENTRY_CHECKS (its zip entry)
#: before it is opened, HEADER_CHECKS (its .npy header) before its data is read
ENTRY_CHECKS = (_check_entry, _check_meta_size)
HEADER_CHECKS = (_check_dtype, _check_size)


# -- reading ---------------------------------------------------------------------------
class Archive:
    """The members of an open ``.npz`` file (``what``: the words naming it in
    errors, "model file" or "checkpoint"), each read only when asked for, and
    checked first (:data:`ENTRY_CHECKS`, :data:`HEADER_CHECKS`). Members nobody asks
    for are never opened."""

    def __init__(self, path, zf, what):
        self.path, self.what = path, what
        self._zip = zf
        self._entries = {e.filename: e for e in zf.infolist()}
        self._headers = {}

    def bad(self, detail):
        """The ValueError saying this file is invalid, and why."""
        return ValueError(f"{self.what} {self.path!r} is invalid: {detail}")

    def __contains__(self, key):
        return f"{key}.npy" in self._entries

    def header(self, key):
        """``(shape, dtype)`` of array ``key`` from its checked header; its data
        unread."""
        if key not in self._headers:
            entry = self._entries.get(f"{key}.npy")
            if entry is None:
                raise self.bad(f"array {key!r} is missing")
            for check in ENTRY_CHECKS:
                check(self, key, entry)
            with self._reading(key) as f:
                header = _npy_header(f)
            for check in HEADER_CHECKS:
                check(self, key, entry, header)
            self._headers[key] = header[:2]
        return self._headers[key]

    def array(self, key):
        """Array ``key``, read once its header has passed the checks."""
        self.header(key)
        with self._reading(key) as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    def document(self):
        """The JSON document of ``__meta__``: a text ``.npy`` of at most
        :data:`META_BYTES`, nested at most :data:`META_DEPTH` deep (counted before
        parsing, which recurses)."""
        if "__meta__" not in self:
            raise ValueError(
                f"{self.what} {self.path!r} is not a fastnet file (no metadata)"
            )
        shape, dtype = self.header("__meta__")
        if dtype.kind != "U" or shape != ():
            raise self.bad(f"__meta__ holds {dtype} of shape {shape}, not JSON text")
        text = str(self.array("__meta__"))
        if _nesting(text, META_DEPTH) > META_DEPTH:
            raise self.bad(f"__meta__ nests deeper than {META_DEPTH} levels")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise self.bad(f"__meta__ is not JSON: {exc}") from exc

    @contextlib.contextmanager
    def _reading(self, key):
        """The member's stream; a read that fails is a ValueError naming it."""
        try:
            with self._zip.open(self._entries[f"{key}.npy"]) as f:
                yield f
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise self.bad(f"array {key!r} is truncated or corrupt: {exc}") from exc
        except ValueError as exc:  # not .npy, or its data cut short
            raise self.bad(f"array {key!r} is not a readable .npy: {exc}") from exc


#: the .npy format versions ``np.save`` writes -> their header's reader
_NPY_HEADERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _npy_header(f):
    """``(shape, dtype, offset of the data)`` from an ``.npy`` stream's header."""
    version = np.lib.format.read_magic(f)
    if version not in _NPY_HEADERS:
        raise ValueError(f".npy format version {version}")
    shape, _, dtype = _NPY_HEADERS[version](f)
    return shape, dtype, f.tell()


@contextlib.contextmanager
def open_archive(path, what="model file"):
    """The ``.npz`` file at ``path`` as an :class:`Archive`: its zip directory
    read, none of its members."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{what} {path!r} does not exist")
    if not is_npz(path):
        raise ValueError(
            f"{what} {path!r} is not an .npz file: truncated, corrupt or of "
            "another format"
        )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{what} {path!r} is truncated or corrupt: {exc}") from exc
    with zf:
        yield Archive(path, zf, what)


#: what the nesting of JSON text turns on: an escape pair, a quote, a bracket
_JSON_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


def _nesting(text, most):
    """How deep the brackets of JSON ``text`` nest outside its strings, counted
    without recursion and up to ``most + 1`` (a hostile depth stops the count)."""
    depth = deepest = 0
    in_string = False
    for token in _JSON_TOKENS.finditer(text):
        c = token.group()
        if c == '"':
            in_string = not in_string
        elif in_string or len(c) == 2:
            continue
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > most:
                break
        else:
            depth -= 1
    return deepest
