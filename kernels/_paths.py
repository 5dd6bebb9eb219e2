"""Where compiled kernels are cached on disk (never inside the installed package),
and how its files are read and written.

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

Every cache file is a record (:func:`write_record`): one line of fields that say
what it is (the kernel's name, the source hash, ...) and a digest of those fields
and of the body, then the body. A reader checks the digest and the fields it asked
for, and opens only a regular file, reading at most :data:`MAX_BYTES`: a file that
is damaged, truncated, another kernel's, a folder or a link (to ``/dev/zero``, say)
is a miss (:class:`Damaged`), compiled again and rewritten, never trusted. A write
goes through a temporary file beside the target and a rename, so processes sharing
the folder stay safe, and the temporary file is removed on every error path (a full
disk leaves nothing behind). Problems are told once per process
(:func:`warn_once`).

Without Numba's import: a process whose kernels load from the native cache reads
these too.
"""

import contextlib
import hashlib
import os
import pathlib
import stat
import threading
import warnings

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


# -- the cache's files -----------------------------------------------------------------
#: the most bytes read from one cache file (a kernel's are kilobytes, a few megabytes
#: at most); a larger file is damaged
MAX_BYTES = 64 << 20

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
# O_NONBLOCK: a FIFO in a file's place is refused, not waited on
_READ = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _FLAGS
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _FLAGS


class Damaged(ValueError):
    """A cache file that cannot be trusted: not a regular file (a folder, a link, a
    device), larger than :data:`MAX_BYTES`, or not a record whose digest and fields
    say it is the file asked for."""


def _digest(header, body):
    digest = hashlib.sha256(header)
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()


def write_record(path, fields, body):
    """Write ``body`` (bytes) to ``path`` as a record: ``fields`` (text without
    spaces) and the digest of them and ``body`` on the first line, then ``body``.
    Atomic: a temporary file beside ``path``, renamed over it (an empty folder in
    its place is removed first). The temporary file is removed on every error path;
    the error (``OSError``: a full disk, a vanished folder) is raised."""
    if not all(f and f.isascii() and f.isprintable() and " " not in f for f in fields):
        raise ValueError(f"record fields must be printable ASCII words: {fields!r}")
    header = " ".join(fields).encode()
    data = b"%s %s\n%s" % (header, _digest(header, body).encode(), body)
    temporary = f"{path}.{os.urandom(8).hex()}.tmp"  # (unique on a shared disk)
    fd = os.open(temporary, _WRITE, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        try:
            os.replace(temporary, path)
        except IsADirectoryError:  # an (empty) folder in the file's place
            os.rmdir(path)
            os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_record(path):
    """``(fields, body)`` of the record at ``path`` (:func:`write_record`), its digest
    checked; None where there is no file; :class:`Damaged` for anything else. Only a
    regular file is opened, never through a link, and at most :data:`MAX_BYTES`
    are read. The caller checks that the fields are those of the file it wants."""
    try:
        fd = os.open(path, _READ)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:  # ELOOP: a link; EACCES
        raise Damaged(f"{path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not _NOFOLLOW and stat.S_ISLNK(os.lstat(path).st_mode):
            mode = 0  # (no O_NOFOLLOW here: the link was followed)
        if not stat.S_ISREG(mode):
            raise Damaged(f"{path}: not a regular file")
        chunks, left = [], MAX_BYTES + 1
        while chunk := os.read(fd, min(left, 1 << 20)):
            chunks.append(chunk)
            left -= len(chunk)
            if not left:
                break
    except OSError as exc:
        raise Damaged(f"{path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_BYTES:
        raise Damaged(f"{path}: larger than {MAX_BYTES} bytes")
    header, newline, body = data.partition(b"\n")
    header, _, digest = header.rpartition(b" ")
    if not newline or not header or _digest(header, body).encode() != digest:
        raise Damaged(f"{path}: its digest does not match (truncated or changed)")
    try:
        return header.decode("ascii").split(" "), body
    except UnicodeDecodeError:
        raise Damaged(f"{path}: not a record") from None


_warned = set()
_warned_lock = threading.Lock()


def warn_once(kind, message):
    """Warn ``message`` (a ``RuntimeWarning``), unless a warning of ``kind`` was
    given in this process already."""
    with _warned_lock:
        if kind in _warned:
            return
        _warned.add(kind)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def warn_damaged(why):
    """Say once per process that a cache file could not be trusted (``why``: its
    path and what was wrong) and is compiled again."""
    warn_once(
        "damaged",
        f"fastnet's kernel cache held a file it cannot trust ({why}); such kernels "
        "compile again and their files are rewritten",
    )


def warn_unwritable(error=None):
    """Say once per process that the cache cannot be written (``error``: why, an
    exception), so that kernels compile in memory."""
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    setting = "NUMBA_CACHE_DIR" if chosen else "FASTNET_CACHE_DIR"
    why = f" ({getattr(error, 'strerror', None) or error})" if error else ""
    warn_once(
        "unwritable",
        f"fastnet cannot write its kernel cache folder {cache_dir()!r}{why}; kernels "
        f"compile in memory in this process (set {setting} to a writable folder to "
        "keep them between runs)",
    )
