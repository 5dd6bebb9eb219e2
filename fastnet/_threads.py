"""One thread setting for Numba and BLAS together."""

import contextlib
import sys

import numba
from threadpoolctl import threadpool_limits

from ._checks import check_positive_int


def in_dask_worker():
    """True while running a task on a ``dask.distributed`` worker.

    A context-variable lookup, and only once ``distributed`` is imported at all, so
    single-row predictions outside Dask pay nothing for it.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def resolve_threads(n_threads):
    """The thread count ``n_threads`` means here: itself when given; ``None`` is all
    cores, except in a Dask worker's task, where it is 1 (a worker runs one task per
    thread, and every task taking every core would oversubscribe them)."""
    if n_threads is not None:
        return check_positive_int(n_threads, "n_threads")
    return 1 if in_dask_worker() else None


@contextlib.contextmanager
def thread_limit(n_threads):
    """Run the block with ``n_threads`` Numba threads and ``n_threads`` BLAS threads,
    restoring both afterwards. ``None`` leaves both as they are (all cores), except in
    a Dask worker's task, where it means one thread (:func:`resolve_threads`)."""
    n_threads = resolve_threads(n_threads)
    if n_threads is None:
        yield
        return
    n = min(n_threads, numba.config.NUMBA_NUM_THREADS)
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        numba.set_num_threads(before)
