"""Every C kernel this process has, by name: from the native cache's object files
(``fastnet._runtime.objects``) or just compiled by Numba, and written for later
processes.

Where any step fails (another platform than ELF, a missing or damaged file, an
unknown symbol), the kernel compiles or loads through Numba as before
(``fastnet._runtime.c_kernels``); a file is only ever a faster way to the same
code. Thread-safe: one lock for the registry and the object folder.
"""

import sys
import threading

from ..kernels import _numba_internals
from .objects import ObjectFolder

_lock = threading.Lock()
#: name -> address of every C kernel this process has, however it got it
_ADDRESSES = {}
#: name -> the Numba ``CFunc`` compiled in this process: its address is valid
#: while it lives
_COMPILED = {}
_folder = []


def object_folder():
    """This process's :class:`~.objects.ObjectFolder`; None where there is none
    (no llvmlite binding here, an odd platform: Numba only)."""
    if not _folder:
        try:
            _folder.append(ObjectFolder())
        except Exception:
            _folder.append(None)
    return _folder[0]


def native():
    """Whether object files are written here (Linux: ELF)."""
    return sys.platform.startswith("linux")


def lookup(name):
    """The address of the C kernel ``name`` (a ``kernels.mlp_cfuncs.makers``
    name), from this process or the native cache; None where it has to be
    compiled (by Numba)."""
    address = _ADDRESSES.get(name)
    if address is None:
        with _lock:
            address = _ADDRESSES.get(name)
            if address is None:
                folder = object_folder()
                address = folder.load(name) if folder is not None else None
                if address:
                    _ADDRESSES[name] = address
    return address


def refresh(name):
    """Whether the C kernel ``name``, which :func:`lookup` did not find, should be
    compiled afresh rather than loaded from Numba's cache: its file is missing or
    damaged, and only a fresh compilation has the object code to write it again
    (Numba discards it after a load from its own cache)."""
    folder = _folder[0] if _folder else None
    return folder is not None and name in folder.refresh and native()


def save(name, compiled):
    """Keep the C kernel ``compiled`` (a Numba ``CFunc`` just compiled) under
    ``name``: its address for this process and, when Numba has its fresh object
    code (not after a load from Numba's cache), its file for later processes.
    Where two threads compile one kernel at once, the first kept is the one every
    caller gets. Returns its address."""
    with _lock:
        if name not in _ADDRESSES:
            _COMPILED.setdefault(name, compiled)
            _ADDRESSES[name] = compiled.address
        code = _numba_internals.object_code(compiled)
        folder = object_folder()
        if code is not None and folder is not None and native():
            folder.save(name, *code)
    return _ADDRESSES[name]
