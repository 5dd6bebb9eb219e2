"""Benchmarks: fastnet beside its peers, in one process, on the same data and threads.

Run with ``pytest bench/`` (``--benchmark-group-by=group`` is the default here).
Every library gets the same thread count (``FASTNET_BENCH_THREADS``, default 2):
Numba and BLAS through fastnet's own setting, ``torch.set_num_threads`` for torch.
"""

import os

import numba
import pytest
from threadpoolctl import threadpool_limits

THREADS = int(os.environ.get("FASTNET_BENCH_THREADS", "2"))


@pytest.fixture(scope="session", autouse=True)
def same_threads_for_everyone():
    numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))
    try:
        import torch

        torch.set_num_threads(THREADS)
    except ImportError:
        pass
    with threadpool_limits(limits=THREADS):
        yield


@pytest.fixture
def torch():
    return pytest.importorskip("torch")
