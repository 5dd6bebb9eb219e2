"""The whole-network kernels' C functions as this process gets them: from this
process or the native cache (``fastnet._runtime.addresses``), from a background
helper (``fastnet._runtime.background``), else compiled by Numba, which is imported
only then; and the epoch, the forward and ``all_finite`` as ``ctypes`` functions.

Every C kernel's name, parameters and ``ctypes`` types come from the one spec,
``fastnet.kernels.abi``; the makers that compile them from
``fastnet.kernels.mlp_cfuncs``.
"""

import ctypes

import numpy as np

from ..kernels import abi
from . import addresses, background

_state = {}


def makers_module():
    """``fastnet.kernels.mlp_cfuncs``, imported (with Numba) with the garbage
    collector paused (which also waits for another thread's import of it: a module
    listed in ``sys.modules`` may still be half-imported)."""
    from ..kernels._lazy import import_paused

    return import_paused("fastnet.kernels.mlp_cfuncs")


def made(name, make):
    """The address of the C kernel ``name``: this process's, or loaded from the
    native cache without Numba's machinery, or a background helper's, or
    ``make()``'s compilation (which loads it from Numba's cache where it is there;
    after a fresh compilation the native cache's file is written)."""
    address = addresses.lookup(name) or background.wait_for(name)
    if address is None:
        if addresses.refresh(name):  # its file is missing or damaged: write it again
            from ..kernels._config import fresh_compilation

            with fresh_compilation():
                compiled = make()
        else:
            compiled = make()
        address = addresses.save(name, compiled)
    return address


def made_all(makers):
    """:func:`made` of each ``(name, make)`` (a None name: 0), as an int64 array;
    a background helper's kernels last, so that this process compiles its own
    while the helper finishes them."""
    out = np.zeros(len(makers), dtype=np.int64)
    order = sorted(
        range(len(makers)), key=lambda i: background.in_background(makers[i][0])
    )
    for i in order:
        name, make = makers[i]
        if name is not None:
            out[i] = made(name, make)
    return out


def ensure(name):
    """The address of the C kernel ``name`` (a ``kernels.mlp_cfuncs.makers``
    name); a ``ValueError`` for an unknown name."""
    address = addresses.lookup(name) or background.wait_for(name)
    if address is None:
        make = makers_module().makers().get(name)
        if make is None:
            raise ValueError(f"no C kernel {name!r}")
        address = made(name, make)
    return address


def _addresses(names):
    found = [addresses.lookup(n) if n is not None else 0 for n in names]
    return None if None in found else np.array(found, np.int64)


def callbacks(activation, loss, optimizer, dtype):
    """The addresses (int64 array, :data:`~fastnet.kernels.abi.EPOCH_FNS`) of an
    epoch's C kernels, loaded natively where all are cached, else compiled (or
    loaded) by Numba."""
    found = _addresses(abi.epoch_names(activation, loss, optimizer, dtype))
    if found is None:
        makers = makers_module().epoch_makers(activation, loss, optimizer, dtype)
        found = made_all(makers)
    return found


def forward_callbacks(activation, out_kind, dtype):
    """:func:`callbacks` for a forward pass
    (:data:`~fastnet.kernels.abi.FORWARD_FNS`)."""
    found = _addresses(abi.forward_names(activation, out_kind, dtype))
    if found is None:
        found = made_all(makers_module().forward_makers(activation, out_kind, dtype))
    return found


def function(spec, name=None):
    """The C kernel of ``spec`` (:class:`~fastnet.kernels.abi.CKernel`), named
    ``name`` (by default the spec's), as a ``ctypes`` function with the spec's
    argument types; it releases the GIL while it runs, as Numba's ``nogil``
    kernels do. One per name and process."""
    name = name or spec.name
    fn = _state.get(name)
    if fn is None:
        prototype = ctypes.CFUNCTYPE(spec.restype(), *spec.argtypes())
        fn = _state[name] = prototype(ensure(name))
    return fn


def epoch_kernel():
    """``kernels.mlp``'s epoch as a C function (:data:`~fastnet.kernels.abi.EPOCH`;
    call it with the spec's ``pack``)."""
    return function(abi.EPOCH)


def forward_kernel():
    """``kernels.mlp``'s forward as a C function
    (:data:`~fastnet.kernels.abi.FORWARD`)."""
    return function(abi.FORWARD)


def all_finite(x):
    """True when no element of the C-contiguous float32 or float64 array ``x`` is
    NaN or infinite (``kernels.util.all_finite``, as a C kernel)."""
    fn = function(abi.ALL_FINITE, abi.all_finite_name(x.dtype))
    return x.size == 0 or bool(fn(abi.address(x), x.size))
