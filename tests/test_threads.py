"""fastnet._runtime.threads.thread_limit: every BLAS library limited inside, restored
after."""

import threading

import numpy as np
import pytest
import scipy.linalg.cython_blas  # noqa: F401  (the kernels' BLAS, loaded before any test)
from threadpoolctl import threadpool_info, threadpool_limits

import fastnet as fn
from fastnet._runtime.threads import thread_limit


def _blas_threads():
    return {
        info["filepath"]: info["num_threads"]
        for info in threadpool_info()
        if info["user_api"] == "blas"
    }


def test_limit_sets_every_blas_library_and_restores_it():
    import numba

    with threadpool_limits(2, user_api="blas"):
        before = _blas_threads()
        assert len(before) >= 1 and set(before.values()) == {2}
        numba_before = numba.get_num_threads()
        for _ in range(3):  # the libraries found once are used again
            with thread_limit(1):
                inside = _blas_threads()
                assert inside.keys() == before.keys()
                assert set(inside.values()) == {1}
                assert numba.get_num_threads() == 1
            assert _blas_threads() == before
            assert numba.get_num_threads() == numba_before


def test_overlapping_limits_from_threads_restore_the_first_setting():
    with threadpool_limits(2, user_api="blas"):
        before = _blas_threads()
        inside, release = threading.Barrier(3), threading.Event()
        seen = []

        def work():
            with thread_limit(1):
                inside.wait()
                seen.append(set(_blas_threads().values()))
                release.wait(10)

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        inside.wait()
        release.set()
        for t in threads:
            t.join()
        assert seen == [{1}, {1}]
        assert _blas_threads() == before


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_n_threads_prediction_equals_the_unlimited_one():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 20))
    y = rng.integers(0, 3, 200)
    clf = fn.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
    clf.fit(X, y)
    with threadpool_limits(1, user_api="blas"):
        want = [clf.predict_proba(X[i : i + 1]) for i in range(5)]
    clf.n_threads = 1
    got = [clf.predict_proba(X[i : i + 1]) for i in range(5)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
