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

import contextlib
import functools
import gc
import hashlib
import os
import threading
import types

import numba
from numba import njit

from . import _numba_internals
from ._cache import attach

# Parallel kernels may be called from several Python threads at once (a server's
# predict calls); the "workqueue" layer aborts on that. "threadsafe" takes TBB if
# installed, else OpenMP. An explicit NUMBA_THREADING_LAYER still wins.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "threadsafe"

FASTMATH = frozenset({"nsz", "contract"})

#: Elementwise kernels switch to their ``parallel=True`` twin at this many elements
#: (``FASTNET_PARALLEL_MIN_SIZE`` overrides it); below it, waking the sleeping thread
#: pool costs more than the work saves.
PARALLEL_MIN_SIZE = int(os.environ.get("FASTNET_PARALLEL_MIN_SIZE", 1 << 18))


def pick(twins, size):
    """The serial kernel of ``twins`` below :data:`PARALLEL_MIN_SIZE` elements, else
    the parallel one."""
    return twins[size >= PARALLEL_MIN_SIZE]


#: Options of every kernel. ``error_model="numpy"``: float division by zero gives
#: inf/NaN as in NumPy instead of a Python-style check, whose branch kept loops such
#: as Adam's update from vectorising. ``nogil``: a kernel
#: releases the GIL while it runs, so Python threads calling kernels (a server's
#: predictions) run at once instead of in line.
OPTIONS = {
    "cache": True,
    "fastmath": set(FASTMATH),
    "error_model": "numpy",
    "nogil": True,
}

# Numba's cache key ignores compile options, so they go into every kernel's cache
# file name: changing them can never load stale machine code. Sets are sorted first:
# their order follows the per-process string hash, and an unsorted tag named the
# cache files differently in about half of all processes (measured: a Dask worker
# or a second run of a script compiled everything again, at random).
_TAG = hashlib.sha1(
    repr(
        sorted(
            (key, sorted(value) if isinstance(value, (set, frozenset)) else value)
            for key, value in OPTIONS.items()
        )
    ).encode()
).hexdigest()[:8]


@contextlib.contextmanager
def collector_paused():
    """Python's garbage collector off for the block, where it was on.

    Numba's compiler makes some 100,000 short-lived objects per kernel, many in
    reference cycles; while it runs, the collector walked the whole heap (scikit-
    learn's, Numba's and the caller's objects) again and again, in full
    collections. Paused, the compiler's garbage stays young and the first young
    collection after the block frees it without a walk of the old objects.
    Another thread's objects are collected as usual after the block (a
    compilation takes at most a few seconds)."""
    if not gc.isenabled():  # off already (by the caller, or another compile)
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _paused(compile_method):
    """A dispatcher's ``compile`` (which also loads from the cache) with the
    collector paused (:func:`collector_paused`)."""

    @functools.wraps(compile_method)
    def compile(sig):
        with collector_paused():
            return compile_method(sig)

    return compile


def _compile(func, name, parallel=False, inline="never", **consts):
    """Compile a copy of ``func`` named ``name`` with ``consts`` bound as globals.

    Numba freezes globals at compile time, so one loop written once becomes a kernel
    per activation (or loss, or optimizer) without closures: closures over compiled
    functions get a new cache key in every process and are never loaded from the
    cache. The name (with the options' tag) names the cache file, since the cache
    key includes neither ``parallel`` nor the bound globals.
    """
    clone = _clone(func, name, consts)
    # cache=False here: the on-disk cache is attached by _cache.attach, which keeps
    # it out of the installed package (OPTIONS' "cache" still names the files)
    options = {**OPTIONS, "fastmath": set(FASTMATH), "cache": False}
    kernel = attach(njit(parallel=parallel, inline=inline, **options)(clone))
    kernel.compile = _paused(kernel.compile)
    return kernel


def _clone(func, name, consts):
    # Without constants the copy shares its module's live globals (names defined
    # further down resolve at compile time); with them it gets a snapshot, taken
    # where the kernels are made, at the end of their module.
    namespace = {**func.__globals__, **consts} if consts else func.__globals__
    clone = types.FunctionType(func.__code__, namespace, name, func.__defaults__)
    clone.__qualname__ = f"{name}__{_TAG}"
    clone.__module__ = func.__module__
    clone.__doc__ = func.__doc__
    return clone


_fresh = threading.local()


@contextlib.contextmanager
def fresh_compilation():
    """:func:`cfunc` calls in this thread during the block compile afresh, without
    Numba's cache (which would load the kernel without its object code)."""
    _fresh.on = True
    try:
        yield
    finally:
        _fresh.on = False


def cfunc(func, name, signature, **consts):
    """A C-callable copy of ``func`` (Numba ``cfunc``) named ``name``, with
    ``consts`` bound as globals, compiled now (or loaded from the kernel cache,
    except inside :func:`fresh_compilation`). Its ``address`` is what :mod:`.ffi`
    calls."""
    options = {k: v for k, v in OPTIONS.items() if k != "cache"}
    options["fastmath"] = set(FASTMATH)
    clone = _clone(func, name, consts)
    compiled = _numba_internals.make_cfunc(clone, signature, options)
    if not getattr(_fresh, "on", False):
        attach(compiled)
    with collector_paused():
        compiled.compile()
    return compiled


@functools.cache
def inlined(kernel):
    """An uncached copy of the compiled ``kernel`` (a dispatcher of this package)
    that Numba inlines into its compiled callers, as are the kernels it calls in
    turn: a C-callable kernel (:func:`cfunc`) that wraps it then compiles as one
    function, not one per kernel, and is one file in the cache (a cold
    default fit is faster; each cache file also costs a warm process its load).
    """
    py_func = kernel.py_func
    calls = {}  # the kernels it calls, as inlined copies in turn
    for name in py_func.__code__.co_names:
        value = py_func.__globals__.get(name)
        if (
            isinstance(value, _numba_internals.numba_side().Dispatcher)
            and value.targetoptions.get("inline", "never") == "never"
            and value.py_func.__module__.startswith(__package__)
        ):
            calls[name] = inlined(value)
    clone = _clone(py_func, py_func.__name__, calls)
    options = {**OPTIONS, "fastmath": set(FASTMATH), "cache": False}
    return njit(inline="always", **options)(clone)


def jit(func):
    """Compile ``func`` serially with the shared options and the on-disk cache."""
    return _compile(func, func.__name__)


def jit_inline(func):
    """:func:`jit`, and inlined into compiled callers (``inline="always"``): a small
    helper then costs its callers no compilation of its own (a separately
    compiled helper costs a cold first fit its own compilation)."""
    return _compile(func, f"{func.__name__}_inline", inline="always")


def jit_twins(func, name=None, **consts):
    """Compile ``func`` twice: a serial kernel and a ``parallel=True`` twin.

    ``func`` loops with ``numba.prange`` over independent rows or elements; the
    serial compilation treats ``prange`` as ``range``. ``consts`` bind global names
    of this copy (see :func:`_compile`).
    """
    name = name or func.__name__
    return tuple(
        _compile(func, f"{name}_{suffix}", parallel, **consts)
        for suffix, parallel in (("serial", False), ("parallel", True))
    )


def jit_bound(func, name, **consts):
    """One serial copy of ``func`` named ``name`` with ``consts`` bound as globals."""
    return _compile(func, name, **consts)
