"""Inference in row blocks on fastnet's own threads (``_runtime.mlp.CompiledForward``
on ``_runtime.pool``): the same bits for every thread count, block boundaries
anywhere in the input, several callers at once, BLAS left as it was."""

import multiprocessing
import threading
import warnings

import numpy as np
import pytest
import scipy.linalg.cython_blas  # noqa: F401  (the kernels' BLAS, loaded before any test)
from threadpoolctl import threadpool_info, threadpool_limits

import fastnet as fn
from fastnet._runtime import pool as pool_module
from fastnet._runtime.mlp import BLOCK_MAX, BLOCK_MIN, block_rows, call_block
from fastnet._runtime.threads import BlasLimit, thread_limit


def fitted(kind, dtype, sizes=(12, 16, 8, 5), out=None, **params):
    rng = np.random.default_rng(sizes[0])
    X = rng.standard_normal((300, sizes[0])).astype(dtype)
    if kind == "classifier":
        est = fn.MLPClassifier(sizes[1:-1], max_iter=3, random_state=0, **params)
        y = rng.integers(0, sizes[-1], 300)
    else:
        est = fn.MLPRegressor(
            hidden_layer_sizes=sizes[1:-1], max_iter=3, random_state=0, **params
        )
        y = np.abs(rng.standard_normal((300, sizes[-1])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return est


def rows(n, width, dtype, seed=1):
    return np.random.default_rng(seed).standard_normal((n, width)).astype(dtype)


CASES = [
    ("classifier", np.float32, {}),
    ("classifier", np.float64, {"activation": "tanh"}),
    ("regressor", np.float32, {"activation": "gelu"}),
    ("regressor", np.float64, {"loss": "poisson"}),
]


@pytest.fixture(params=["cores", 4])
def pool_size(request, monkeypatch):
    """The process's pool (a thread per core), or one of 4 threads on any machine."""
    if request.param != "cores":
        monkeypatch.setitem(pool_module._pool, "pool", pool_module.Pool(request.param))
    return pool_module.pool().size


@pytest.mark.parametrize("kind,dtype,params", CASES)
def test_every_thread_count_gives_the_same_bits(kind, dtype, params, pool_size):
    est = fitted(kind, dtype, **params)
    fwd = est._network().compiled_forward()
    b = fwd.least
    # inputs shorter than a block, exactly one, one row more, whole blocks, a
    # remainder, more blocks than threads
    for n in (1, 5, b - 1, b, b + 1, 2 * b, 3 * b - 1, 4 * b + 3, 9 * b + 7):
        X = rows(n, est.n_features_in_, dtype, seed=n)
        one = fwd(X, threads=1)
        for threads in (2, 3, 4, None):
            np.testing.assert_array_equal(fwd(X, threads=threads), one, str(n))
        est.n_threads = 1
        single = est.predict_proba(X) if kind == "classifier" else est.predict(X)
        for threads in (2, 4, None):
            est.n_threads = threads
            got = est.predict_proba(X) if kind == "classifier" else est.predict(X)
            np.testing.assert_array_equal(got, single)


#: how far (in eps of the row's largest output, at least 1) a row's outputs may move
#: with its place among a block's rows: probabilities 2 ulp; a regression output
#: carries each layer's rounding difference unbounded by a softmax (8.4 measured
#: through 784-256-128-10, README, "Same answers")
ULPS = {"classifier": 2, "regressor": 12}


@pytest.mark.parametrize("kind,dtype,params", CASES)
@pytest.mark.parametrize("sizes", [(12, 16, 8, 5), (64, 128, 64, 10)])
def test_a_row_anywhere_in_a_block_is_within_ulps_of_it_alone(
    kind, dtype, params, sizes
):
    # BLAS's product kernels round a row by where it falls among a block's rows
    # (their row tiles), and a row alone goes through ?gemv
    est = fitted(kind, dtype, sizes=sizes, **params)
    fwd = est._network().compiled_forward()
    b = fwd.least
    X = rows(3 * b + 5, est.n_features_in_, dtype)
    whole = fwd(X)
    eps = np.finfo(dtype).eps
    for got, expected in [
        (np.concatenate([fwd(X[i : i + 1]) for i in range(40)]), whole[:40]),
        (fwd(X[b - 3 :]), whole[b - 3 :]),  # blocks start 3 rows earlier
        (fwd(X[7:]), whole[7:]),
        (np.concatenate([fwd(X[i : i + 13]) for i in range(0, 13 * 40, 13)]),
         whole[: 13 * 40]),
    ]:  # fmt: skip
        scale = np.maximum(np.abs(expected).max(axis=1, keepdims=True), 1.0)
        assert (np.abs(got - expected) <= ULPS[kind] * eps * scale).all()


def test_callers_in_several_threads_get_their_own_results():
    est = fitted("classifier", np.float32, sizes=(20, 32, 16, 4))
    b = est._network().compiled_forward().least
    inputs = [rows(3 * b + i, 20, np.float32, seed=i) for i in range(8)]
    inputs += [rows(1, 20, np.float32, seed=100 + i) for i in range(4)]
    expected = [est.predict_proba(X) for X in inputs]
    start = threading.Barrier(len(inputs))
    got = [None] * len(inputs)

    def work(i):
        start.wait()
        for _ in range(20):
            got[i] = est.predict_proba(inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


def _blas_threads():
    return sorted(
        (i["filepath"], i["num_threads"])
        for i in threadpool_info()
        if i["user_api"] == "blas"
    )


def test_blas_is_as_it_was_after_calls_and_limits_in_any_order():
    est = fitted("classifier", np.float64, sizes=(20, 32, 16, 4))
    X = rows(2000, 20, np.float64)
    with threadpool_limits(2, user_api="blas"):
        before = _blas_threads()
        est.predict_proba(X)
        assert _blas_threads() == before
        # a thread limit and inference calls overlapping from threads, ending in
        # every order: BLAS ends as it began
        go = threading.Barrier(4)
        errors = []

        def predict():
            go.wait()
            for _ in range(10):
                est.predict_proba(X)

        def limit():
            go.wait()
            for _ in range(10):
                with thread_limit(1):
                    est.predict_proba(X[:10])

        def catching(f):
            try:
                f()
            except BaseException as exc:  # a thread's error fails the test
                errors.append(exc)

        threads = [
            threading.Thread(target=catching, args=(f,))
            for f in (predict, predict, limit, limit)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert _blas_threads() == before


def test_the_ledger_gives_each_library_the_smallest_count_in_force():
    with threadpool_limits(2, user_api="blas"):
        before = dict(_blas_threads())
        a, b = BlasLimit(1, kernels_only=True), BlasLimit(2)
        a.__enter__()
        b.__enter__()
        inside = dict(_blas_threads())
        a.__exit__(None, None, None)  # the first to begin ends first
        after_a = dict(_blas_threads())
        b.__exit__(None, None, None)
        assert dict(_blas_threads()) == before
    from fastnet._runtime.threads import _blas

    kernels = {lib.filepath for lib in _blas["kernels"]}
    assert kernels and all(inside[p] == 1 for p in kernels)
    assert all(inside[p] == 2 for p in inside if p not in kernels)
    assert set(after_a.values()) == {2}


def test_a_limit_that_fails_part_way_gives_back_what_it_set(monkeypatch):
    from fastnet._runtime import threads

    class Library:  # a BLAS library whose count can be read, and set unless broken
        def __init__(self, count, broken=False):
            self.count, self.broken = count, broken

        def get(self):
            return self.count

        def set_num_threads(self, count):
            if self.broken:
                raise OSError("cannot set the thread count")
            self.count = count

    good, broken = Library(4), Library(4, broken=True)
    monkeypatch.setitem(threads._blas, "libraries", [good, broken])
    monkeypatch.setitem(threads._blas, "kernels", [good])
    monkeypatch.setattr(threads, "_blas_libraries", lambda: [good, broken])
    with pytest.raises(OSError, match="cannot set"):
        with BlasLimit(1):
            pass  # pragma: no cover - never entered
    assert good.count == 4  # lowered to 1, then given back when the next failed
    assert not threads._blas["requests"] and not threads._blas["saved"]
    with BlasLimit(2, kernels_only=True):  # the broken one is not the kernels'
        assert (good.count, broken.count) == (2, 4)
    assert good.count == 4


def test_block_rows_keep_a_blocks_activations_in_cache():
    assert block_rows(np.array([784, 256, 128, 10]), 4) % 16 == 0
    assert BLOCK_MIN <= block_rows(np.array([10, 100_000, 10]), 8) == BLOCK_MIN
    assert block_rows(np.array([3, 2, 1]), 4) == BLOCK_MAX


def test_a_call_cuts_its_rows_into_blocks_by_rows_and_cores_only():
    # equal blocks of about the least rows or more, at most 4 a core and
    # BLOCK_MAX rows each, a multiple of 16
    assert call_block(1, 160, 2) == 16
    assert call_block(200, 160, 2) == 112  # 112 + 88, not 160 + 40
    assert call_block(3000, 160, 2) == 384
    assert call_block(10_000, 160, 2) == 1008
    assert call_block(10_000, 160, 16) == 160
    assert call_block(100_000, 160, 2) == BLOCK_MAX  # 98 blocks
    # a call's blocks tile its rows whatever its threads: the cut is made before
    # the pool is asked for threads (test_every_thread_count_gives_the_same_bits)
    for cores in (1, 2, 16):
        for n in range(1, 40_000, 997):
            b = call_block(n, 96, cores)
            blocks = -(-n // b)
            assert b % 16 == 0 and b <= BLOCK_MAX
            assert blocks <= max(4 * cores, -(-n // BLOCK_MAX))
            assert n - (blocks - 1) * b <= b  # the last block is the shortest


def test_the_pool_shares_its_cores_between_calls():
    pool = pool_module.Pool(3)
    with pool.share(2) as first:
        with pool.share(5) as second:  # what is left
            assert (first, second) == (2, 1)
    # the second caller waited for a token: it got one only after the first
    # gave its own back
    order = []
    with pool.share(3) as k:
        assert k == 3
        t = threading.Thread(
            target=lambda: [order.append("waited"), pool.share(1).__enter__()]
        )
        t.start()
        t.join(0.2)
        assert t.is_alive()
        order.append("released")
    t.join(5)
    assert not t.is_alive() and order == ["waited", "released"]
    assert pool.run([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]


def _predict_in_child(queue, est, X):
    queue.put(est.predict_proba(X))


def test_a_forked_child_predicts_on_a_pool_of_its_own():
    est = fitted("classifier", np.float32, sizes=(20, 32, 16, 4))
    X = rows(5 * est._network().compiled_forward().least, 20, np.float32)
    expected = est.predict_proba(X)  # the parent's pool has started its workers
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_predict_in_child, args=(queue, est, X))
    child.start()
    got = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("where", [0, -1])
def test_a_non_finite_row_in_any_threads_share_is_scikit_learns_error(where):
    est = fitted("classifier", np.float64, sizes=(20, 32, 16, 4))
    X = rows(6 * est._network().compiled_forward().least, 20, np.float64)
    X[where, 3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.predict_proba(X)
