"""One thread setting for Numba and BLAS together."""

import contextlib

import numba
from threadpoolctl import threadpool_limits

from ._checks import check_positive_int


@contextlib.contextmanager
def thread_limit(n_threads):
    """Run the block with ``n_threads`` Numba threads and ``n_threads`` BLAS threads,
    restoring both afterwards. ``None`` leaves both as they are (all cores)."""
    if n_threads is None:
        yield
        return
    n = min(check_positive_int(n_threads, "n_threads"), numba.config.NUMBA_NUM_THREADS)
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        numba.set_num_threads(before)
