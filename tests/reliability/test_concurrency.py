"""Concurrent inference gives exactly the serial results.

Every thread predicts on its own input (different rows, the same shape as every
other thread's, so any buffer shared by shape would mix them up), all threads start
together at a barrier, and every round's result is checked, not only the last.
BLAS is pinned to one thread for the serial reference and the threaded calls alike:
with another thread count it may block a product differently and round the last
bit differently, which is BLAS's business, not a race.
"""

import threading

import numpy as np
import pytest
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

import fastnet as fn
from fastnet._runtime.threads import FitGuard

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    # R² of one row is NaN with a warning, in every thread as in the serial call
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning"),
]

THREADS = 8
ROUNDS = 25
METHODS = ("predict", "predict_proba", "predict_log_proba", "score")


class _EpochHook(fn.callbacks.Callback):
    """Calls ``hook(estimator)`` after every epoch of a fit."""

    def __init__(self, hook):
        self.hook = hook

    def on_epoch_end(self, owner, state):
        self.hook(owner)


def _in_threads(work, n=THREADS):
    """Run ``work(i)`` in ``n`` threads started at one barrier; re-raise errors."""
    barrier = threading.Barrier(n)
    errors = []

    def run(i):
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module", params=["float64", "float32"])
def fitted(request, digits):
    X, y = digits
    X = X.astype(request.param)
    clf = fn.MLPClassifier((32, 16), max_iter=8, random_state=0).fit(X, y)
    reg = fn.MLPRegressor(hidden_layer_sizes=(24,), max_iter=8, random_state=0).fit(
        X, y / 9.0
    )
    return X, y, clf, reg


def _inputs(X, rows, rng):
    """One input of ``rows`` rows per thread, each drawn from other rows of X (and
    jittered, so no two threads ever hold the same values)."""
    out = []
    for i in range(THREADS):
        idx = rng.integers(0, X.shape[0], rows)
        out.append(np.ascontiguousarray(X[idx] + X.dtype.type(0.01 * i)))
    return out


@pytest.mark.parametrize("rows", [1, 225, 10_000])
@pytest.mark.parametrize("method", METHODS)
def test_threads_predicting_at_once_get_the_serial_results(fitted, rows, method):
    X, _, clf, reg = fitted
    rng = np.random.default_rng(rows)
    inputs = _inputs(X, rows, rng)
    labels = [rng.integers(0, 10, rows) for _ in range(THREADS)]
    rounds = ROUNDS if rows < 10_000 else 5
    for est in (clf, reg) if method in ("predict", "score") else (clf,):
        targets = labels if est is clf else [t / 9.0 for t in labels]

        def call(i, est=est, targets=targets):
            if method == "score":
                return est.score(inputs[i], targets[i])
            return getattr(est, method)(inputs[i])

        with threadpool_limits(1):
            serial = [call(i) for i in range(THREADS)]
            got = [[None] * rounds for _ in range(THREADS)]

            def work(i, call=call, got=got):
                for r in range(rounds):
                    got[i][r] = call(i)

            _in_threads(work)
        for i in range(THREADS):
            for r in range(rounds):
                np.testing.assert_array_equal(
                    got[i][r], serial[i], err_msg=f"thread {i}, round {r}"
                )


def test_threads_with_different_batch_sizes_at_once(fitted):
    X, _, clf, _ = fitted
    rng = np.random.default_rng(7)
    inputs = [
        np.ascontiguousarray(X[rng.integers(0, 1797, 1 + 37 * i)]) for i in range(8)
    ]
    with threadpool_limits(1):
        serial = [clf.predict_proba(x) for x in inputs]
        got = [[] for _ in inputs]
        _in_threads(
            lambda i: got[i].extend(clf.predict_proba(inputs[i]) for _ in range(20))
        )
    for want, results in zip(serial, got, strict=True):
        for g in results:
            np.testing.assert_array_equal(g, want)


def test_sequential_inference_from_threads(digits):
    X, _ = digits
    X = X.astype(np.float32)
    model = fn.Sequential(
        fn.Linear(64, 32, random_state=0),
        fn.GELU(),
        fn.Linear(32, 16, random_state=1),
        fn.Tanh(),
        fn.Linear(16, 10, random_state=2),
        fn.Softmax(),
    )
    rng = np.random.default_rng(3)
    inputs = _inputs(X, 300, rng)
    with threadpool_limits(1):
        serial = [model.forward(x, train=False).copy() for x in inputs]
        got = [[None] * ROUNDS for _ in inputs]

        def work(i):
            for r in range(ROUNDS):
                got[i][r] = model.forward(inputs[i], train=False)

        _in_threads(work)
    for i, want in enumerate(serial):
        for r in range(ROUNDS):
            np.testing.assert_array_equal(got[i][r], want, err_msg=f"thread {i}")


def test_predicting_while_another_thread_fits_is_a_clear_error(digits):
    X, y = digits
    est = fn.MLPClassifier((16,), max_iter=3, random_state=0).fit(X, y)
    inside, release = threading.Event(), threading.Event()

    def hook(_):  # runs inside fit, after each epoch
        inside.set()
        release.wait(timeout=60)

    est.set_params(callbacks=[_EpochHook(hook)])
    fitter = threading.Thread(target=est.fit, args=(X, y))
    fitter.start()
    try:
        assert inside.wait(timeout=120)
        for method in ("predict", "predict_proba", "score"):
            args = (X[:5], y[:5]) if method == "score" else (X[:5],)
            with pytest.raises(RuntimeError, match="being fitted in another thread"):
                getattr(est, method)(*args)
        with pytest.raises(RuntimeError, match="being fitted in another thread"):
            est.partial_fit(X, y)
    finally:
        release.set()
        fitter.join()
        est.set_params(callbacks=None)
    # once fit has returned, predictions work again and see the finished weights
    again = fn.MLPClassifier((16,), max_iter=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), again.predict_proba(X))


def _reader_then_fitter(guard, reader, reading, order):
    """Start ``reader`` in a thread; once it has set ``reading``, a thread that
    fits under ``guard`` (appending "fit" to ``order``). Both threads, started."""

    def fitter():
        with guard.writing():
            order.append("fit")

    r = threading.Thread(target=reader)
    r.start()
    assert reading.wait(timeout=60)
    w = threading.Thread(target=fitter)
    w.start()
    return r, w


def test_fit_waits_for_predictions_already_running():
    guard = FitGuard()
    reading, done_reading = threading.Event(), threading.Event()
    order = []

    def reader():
        with guard.reading():
            reading.set()
            done_reading.wait(timeout=60)
            order.append("read")

    r, w = _reader_then_fitter(guard, reader, reading, order)
    w.join(timeout=0.2)
    assert w.is_alive() and order == []  # fit is waiting for the reader
    done_reading.set()
    r.join()
    w.join(timeout=60)
    assert order == ["read", "fit"]
    with guard.writing(), guard.reading(), guard.writing():  # the fitter may nest
        pass


def test_a_waiting_fit_refuses_new_predictions_so_it_cannot_starve():
    guard = FitGuard()
    reading, release, claimed = threading.Event(), threading.Event(), threading.Event()
    order = []

    def reader():
        with guard.reading():
            reading.set()
            assert claimed.wait(timeout=60)
            with guard.reading():  # a nested call of a running prediction goes on
                order.append("nested read")
            assert release.wait(timeout=60)

    r, w = _reader_then_fitter(guard, reader, reading, order)
    for _ in range(1000):  # until the fit has claimed the estimator
        if guard._writer is not None:
            break
        w.join(timeout=0.01)
    assert guard._writer is not None and order == []
    # a new prediction from any other thread is refused, not queued before the fit
    with pytest.raises(RuntimeError, match="being fitted in another thread"):
        with guard.reading():
            pass
    claimed.set()
    release.set()
    r.join(timeout=60)
    w.join(timeout=60)
    assert order == ["nested read", "fit"]


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score"])
def test_predicting_during_a_first_fit_is_the_clear_error(digits, method):
    X, y = digits
    est = fn.MLPClassifier((16,), max_iter=3, random_state=0)
    inside, release = threading.Event(), threading.Event()

    def hook(_):
        inside.set()
        release.wait(timeout=60)

    est.set_params(callbacks=[_EpochHook(hook)])
    fitter = threading.Thread(target=est.fit, args=(X, y))
    fitter.start()
    try:
        assert inside.wait(timeout=120)
        args = (X[:5], y[:5]) if method == "score" else (X[:5],)
        with pytest.raises(RuntimeError, match="being fitted in another thread"):
            getattr(est, method)(*args)
    finally:
        release.set()
        fitter.join()
        est.set_params(callbacks=None)
    assert est.predict(X[:5]).shape == (5,)
