"""fastnet on a real Dask cluster: a LocalCluster of two worker processes.

Searches under ``joblib.parallel_backend("dask")`` against the same searches run
serially here, thread counts inside the workers, estimators and models shipped to
workers and back, and ``fastnet.dask.fit_blocks`` / ``predict_blocks`` against the
same ``partial_fit`` calls made by hand.
"""

import itertools
import sys

import numba
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import cloudpickle  # noqa: E402  (a dependency of distributed)
import joblib  # noqa: E402
from scipy.stats import loguniform  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    RandomizedSearchCV,
    cross_validate,
)
from sklearn.utils import check_random_state  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import fastnet  # noqa: E402
from fastnet.dask import fit_blocks, predict_blocks  # noqa: E402

# Functions of this module run on the workers, which cannot import it: ship them by
# value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"  # short fits on purpose
)


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:540] / 16.0).astype(np.float32), y[:540]


def small_clf(**kw):
    # n_threads=1 here and in the workers: results are compared bit for bit, and
    # BLAS may round the last bit differently with another thread count (seen:
    # 2.4e-7 apart between a worker's 1 thread and 2 threads here)
    params = {
        "hidden_layer_sizes": (16,),
        "max_iter": 15,
        "learning_rate_init": 0.01,
        "random_state": 0,
        "n_threads": 1,
    }
    return fastnet.MLPClassifier(**{**params, **kw})


def _tasks_per_worker(task_stream):
    return {t["worker"] for t in task_stream}


# -- hyperparameter search -----------------------------------------------------------
def test_grid_search_on_the_cluster_equals_the_serial_one(client, digits):
    X, y = digits
    grid = {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-1]}
    serial = GridSearchCV(small_clf(), grid, cv=3, n_jobs=1).fit(X, y)
    with (
        distributed.get_task_stream(client) as stream,
        joblib.parallel_backend("dask"),
    ):
        dist = GridSearchCV(small_clf(), grid, cv=3, n_jobs=-1).fit(X, y)
    assert len(_tasks_per_worker(stream.data)) == 2  # both workers fitted
    for key in ["params", "split0_test_score", "split2_test_score", "rank_test_score"]:
        assert list(dist.cv_results_[key]) == list(serial.cv_results_[key])
    assert dist.best_params_ == serial.best_params_
    for a, b in zip(
        dist.best_estimator_.coefs_, serial.best_estimator_.coefs_, strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert (
        serial.cv_results_["mean_test_score"].max() > 0.5
    )  # they learned (chance: 0.1)


def test_randomized_search_and_cross_validate_equal_serial(client, digits):
    X, y = digits
    dists = {"alpha": loguniform(1e-5, 1e-1), "learning_rate_init": [1e-3, 3e-3]}
    kw = {"n_iter": 3, "cv": 2, "random_state": 0}
    serial = RandomizedSearchCV(small_clf(), dists, n_jobs=1, **kw).fit(X, y)
    with joblib.parallel_backend("dask"):
        dist = RandomizedSearchCV(small_clf(), dists, n_jobs=-1, **kw).fit(X, y)
    assert dist.cv_results_["params"] == serial.cv_results_["params"]
    np.testing.assert_array_equal(
        dist.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )

    reg = fastnet.MLPRegressor(
        hidden_layer_sizes=(8,), max_iter=20, random_state=1, n_threads=1
    )
    target = X[:, :2] @ [1.0, -2.0]
    serial = cross_validate(reg, X, target, cv=3, return_estimator=True)
    with joblib.parallel_backend("dask"):
        dist = cross_validate(reg, X, target, cv=3, return_estimator=True, n_jobs=-1)
    np.testing.assert_array_equal(dist["test_score"], serial["test_score"])
    for a, b in zip(dist["estimator"], serial["estimator"], strict=True):
        # fitted on a worker, pickled back: it predicts exactly as the serial one
        np.testing.assert_array_equal(a.predict(X), b.predict(X))


# -- threads -------------------------------------------------------------------------
def _fit_and_record_threads(X, y, n_threads):
    seen = []
    before = numba.get_num_threads()

    def hook(est):
        blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        seen.append((numba.get_num_threads(), blas))

    class Record(fastnet.callbacks.Callback):
        def on_epoch_end(self, owner, state):
            hook(owner)

    est = small_clf(max_iter=3, n_threads=n_threads, callbacks=[Record()])
    est.fit(X, y)
    return seen, before, numba.get_num_threads(), numba.config.NUMBA_NUM_THREADS


def test_workers_fit_with_one_thread_unless_told(client, digits):
    X, y = digits
    seen, before, after, cores = client.submit(
        _fit_and_record_threads, X, y, None, pure=False
    ).result()
    assert len(seen) == 3
    assert all(numba_threads == 1 and set(blas) <= {1} for numba_threads, blas in seen)
    assert after == before  # restored after the fit

    seen, _, _, cores = client.submit(
        _fit_and_record_threads, X, y, 2, pure=False
    ).result()
    assert {numba_threads for numba_threads, _ in seen} == {min(2, cores)}

    # outside a worker None means all cores, as before
    seen, *_ = _fit_and_record_threads(X, y, None)
    assert {numba_threads for numba_threads, _ in seen} == {numba.get_num_threads()}


# -- pickling to workers and back ------------------------------------------------------
def _fit_on_worker(X, y):
    return small_clf().fit(X, y)


def _forward(model, x):
    # one Numba and one BLAS thread, here as in a worker: compared bit for bit
    with threadpool_limits(1):
        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return model.forward(x, train=False).copy()
        finally:
            numba.set_num_threads(before)


def test_estimators_and_models_travel_to_workers_and_back(client, digits):
    X, y = digits
    local = small_clf().fit(X, y)
    remote = client.submit(_fit_on_worker, X, y).result()
    for a, b in zip(remote.coefs_, local.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    predicted = client.submit(lambda est, X: est.predict_proba(X), local, X).result()
    np.testing.assert_array_equal(predicted, local.predict_proba(X))

    model = fastnet.Sequential(
        fastnet.Linear(64, 16, random_state=0),
        fastnet.GELU(),
        fastnet.Linear(16, 10, random_state=1),
        fastnet.Softmax(),
    )
    expected = _forward(model, X)  # forward first: buffers are not part of a pickle
    np.testing.assert_array_equal(client.submit(_forward, model, X).result(), expected)


def _fit_and_list_compilations(X, y):
    import numba.core.event as ev

    with ev.install_recorder("numba:compile") as rec:
        small_clf(max_iter=3).fit(X, y).predict_proba(X)
    return [str(e.data["dispatcher"]) for _, e in rec.buffer if e.is_start]


def test_workers_load_the_kernels_from_the_cache(client, digits):
    X, y = digits
    _fit_and_list_compilations(X, y)  # here: compiles what is not cached yet
    # a worker unpickles no kernels and compiles none: Numba's cache has them all
    assert _fit_and_list_compilations(X, y) == []  # (the recorder does see compiles)
    assert client.submit(_fit_and_list_compilations, X, y, pure=False).result() == []


# -- fit_blocks ------------------------------------------------------------------------
def _block(block_id=None):
    rng = np.random.default_rng(block_id[0])
    return rng.standard_normal((150, 6)).astype(np.float32)


def _blocks_data(n_blocks=6):
    X = da.map_blocks(_block, chunks=((150,) * n_blocks, (6,)), dtype=np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    return X, y


def _by_hand(est, X, y, order, epochs=1, **kw):
    Xs = [X.blocks[i].compute() for i in range(X.numblocks[0])]
    ys = [y.blocks[i].compute() for i in range(X.numblocks[0])]
    for _ in range(epochs):
        for i in order():
            est.partial_fit(Xs[i], ys[i], **kw)
    return est


def test_fit_blocks_is_partial_fit_over_the_blocks_in_shuffled_order(client):
    X, y = _blocks_data()
    kw = {"batch_size": 32}
    est = fit_blocks(small_clf(**kw), X, y, classes=[0, 1], epochs=2, random_state=3)
    rng = check_random_state(3)
    ref = _by_hand(
        small_clf(**kw), X, y, lambda: rng.permutation(6), epochs=2, classes=[0, 1]
    )
    assert est.t_ == ref.t_ == 2 * 6 * 150  # every row of every block, twice
    for a, b in zip(est.coefs_, ref.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    Xc, yc = X.compute(), y.compute()
    assert est.score(Xc, yc) > 0.9


class _Watched(fastnet.MLPClassifier):
    """Counts the X blocks held on the cluster at each partial_fit call (used here
    only, never shipped to a worker)."""

    def partial_fit(self, X, y, classes=None):
        held = self._client.run_on_scheduler(_blocks_in_memory)
        self._held.append(held)
        return super().partial_fit(X, y, classes=classes)


def _blocks_in_memory(dask_scheduler):
    return sum(
        1
        for key, ts in dask_scheduler.tasks.items()
        if ts.state == "memory" and "_block" in str(key)
    )


@pytest.mark.parametrize("prefetch", [1, 3])
def test_fit_blocks_holds_only_the_prefetched_blocks(client, prefetch):
    X, y = _blocks_data(n_blocks=10)
    est = _Watched(hidden_layer_sizes=(4,), random_state=0)
    est._client, est._held = client, []
    fit_blocks(est, X, y, classes=[0, 1], shuffle_blocks=False, prefetch=prefetch)
    # at each call: this block here; on the cluster the next `prefetch` ones, and
    # this one until the client's release reaches the scheduler. (dask-ml's
    # Incremental: 17 of 40 blocks at once.)
    assert len(est._held) == 10 and max(est._held) <= prefetch + 1


def test_fit_blocks_regressor_weights_numpy_targets_and_odd_chunks(client):
    X, _ = _blocks_data(n_blocks=4)
    X = X.rechunk((150, 3))  # column chunks are joined
    target = np.arange(600, dtype=np.float32) % 7 / 7.0
    w = da.from_array(np.linspace(0.5, 1.5, 600), chunks=200)  # other row blocks
    reg = fastnet.MLPRegressor(hidden_layer_sizes=(8,), random_state=0)
    fit_blocks(reg, X, target, sample_weight=w, shuffle_blocks=False, client=client)

    ref = fastnet.MLPRegressor(hidden_layer_sizes=(8,), random_state=0)
    Xc, wc = X.compute(), w.compute()
    for lo in range(0, 600, 150):
        rows = slice(lo, lo + 150)
        ref.partial_fit(Xc[rows], target[rows], sample_weight=wc[rows])
    for a, b in zip(reg.coefs_, ref.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_blocks_without_a_client_uses_the_local_scheduler(monkeypatch):
    import fastnet.dask as fdask

    monkeypatch.setattr(fdask, "_client", lambda client: None)
    X, y = _blocks_data(n_blocks=3)
    with dask.config.set(scheduler="threads"):  # not the module's cluster
        est = fit_blocks(small_clf(), X, y, classes=[0, 1], shuffle_blocks=False)
    ref = _by_hand(small_clf(), X, y, lambda: range(3), classes=[0, 1])
    for a, b in zip(est.coefs_, ref.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_blocks_rejects_bad_input_before_computing_anything():
    X, y = _blocks_data(n_blocks=2)
    cases = [
        ((small_clf(), X.compute(), y), {"classes": [0, 1]}, TypeError, "dask.array"),
        ((small_clf(), X, y), {}, ValueError, "classes="),
        ((small_clf(), X, y[:-1]), {"classes": [0, 1]}, ValueError, "299 rows"),
        ((small_clf(), X[:, 0], y), {"classes": [0, 1]}, ValueError, "2-D"),
        ((small_clf(), X[X[:, 0] > 0], y), {"classes": [0, 1]}, ValueError, "unknown"),
        ((small_clf(), X, y), {"classes": [0, 1], "epochs": 0}, ValueError, "epochs"),
        (
            (small_clf(), X, y),
            {"classes": [0, 1], "prefetch": -1},
            ValueError,
            "prefetch",
        ),
        (
            (small_clf(), X, y),
            {"classes": [0, 1], "prefetch": 1.5},
            TypeError,
            "prefetch",
        ),
        (
            (fastnet.MLPRegressor(solver="lbfgs"), X, y),
            {},
            ValueError,
            "whole L-BFGS fit on each block",
        ),
        ((fastnet.MLPClassifier(solver="lbfgs"), X, y), {}, TypeError, "no partial"),
        (
            (fastnet.MLPRegressor(), X, y),
            {"sample_weight": np.ones((300, 2))},
            ValueError,
            "1-D",
        ),
    ]
    for args, kw, err, match in cases:
        with pytest.raises(err, match=match):
            fit_blocks(*args, **kw)


# -- predict_blocks --------------------------------------------------------------------
def test_predict_blocks_equals_predicting_in_memory(client):
    X, y = _blocks_data(n_blocks=4)
    Xc, yc = X.compute(), y.compute()
    est = small_clf(max_iter=30).fit(Xc, yc)
    labels = predict_blocks(est, X)
    proba = predict_blocks(est, X, "predict_proba")
    assert labels.shape == (600,) and proba.shape == (600, 2)

    def by_block(method):  # the same rows per BLAS call, one thread on both sides
        starts = np.cumsum((0, *X.chunks[0]))
        return np.concatenate([method(Xc[a:b]) for a, b in itertools.pairwise(starts)])

    np.testing.assert_array_equal(labels.compute(), by_block(est.predict))
    np.testing.assert_array_equal(proba.compute(), by_block(est.predict_proba))

    reg = fastnet.MLPRegressor(
        hidden_layer_sizes=(4,), max_iter=5, random_state=0, n_threads=1
    ).fit(Xc, yc * 1.0)
    np.testing.assert_array_equal(
        predict_blocks(reg, X).compute(), by_block(reg.predict)
    )

    with pytest.raises(NotFittedError):
        predict_blocks(small_clf(), X)
    with pytest.raises(ValueError, match="X has 5 features"):
        predict_blocks(est, X[:, :5])
    with pytest.raises(ValueError, match="no method"):
        predict_blocks(est, X, "transform_everything")
