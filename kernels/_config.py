"""Compilation settings shared by every kernel.

All kernels take their ``fastmath`` flags from :data:`FASTMATH`, and a test rejects
any hard-coded ``fastmath=`` in this package. The set is deliberately small:

* no ``nnan`` / ``ninf``: with them LLVM may assume no value is NaN or infinite,
  which silently breaks ``np.isfinite`` checks and ``-inf`` masks;
* no ``reassoc``: it lets the serial and the parallel compilation of one loop round
  differently (measured: Adam's twins differed in 45 % of elements by 1 ulp), and
  the row sums it would vectorise are short;
* no ``arcp`` / ``afn``: approximate reciprocals and functions cost accuracy for
  loops that are bound by memory, not arithmetic.

``contract`` (fused multiply-add) and ``nsz`` (ignore the sign of zero) remain.
"""

import os
import types

from numba import njit

FASTMATH = frozenset({"nsz", "contract"})

#: Elementwise kernels switch to their ``parallel=True`` twin at this many elements
#: (``FASTNET_PARALLEL_MIN_SIZE`` overrides it); below it, waking the sleeping thread
#: pool costs more than the work saves.
PARALLEL_MIN_SIZE = int(os.environ.get("FASTNET_PARALLEL_MIN_SIZE", 1 << 18))


def jit(func):
    """Compile ``func`` serially with the shared flags and the on-disk cache."""
    return njit(cache=True, fastmath=set(FASTMATH))(func)


def jit_twins(func, name=None, **consts):
    """Compile ``func`` twice: a serial kernel and a ``parallel=True`` twin.

    ``func`` loops with ``numba.prange`` over independent rows or elements; the
    serial compilation treats ``prange`` as ``range``. ``consts`` bind global names
    of ``func`` (for example the scalar function of an activation) for this copy
    only: Numba freezes globals at compile time, so one loop written once becomes a
    kernel per activation without closures (closures over compiled functions get a
    new cache key in every process and are never loaded from the cache).

    Each copy gets its own ``__qualname__`` (``name`` + ``_serial`` / ``_parallel``),
    which names its cache file: the cache key itself includes neither ``parallel``
    nor the bound globals.
    """
    name = name or func.__name__
    namespace = {**func.__globals__, **consts}
    twins = []
    for suffix, parallel in (("serial", False), ("parallel", True)):
        clone = types.FunctionType(
            func.__code__, namespace, f"{name}_{suffix}", func.__defaults__
        )
        clone.__qualname__ = f"{name}_{suffix}"
        clone.__module__ = func.__module__
        clone.__doc__ = func.__doc__
        twins.append(njit(cache=True, fastmath=set(FASTMATH), parallel=parallel)(clone))
    return tuple(twins)
