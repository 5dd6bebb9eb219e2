"""``fastnet.dask.fit_distributed`` on a real Dask cluster: a LocalCluster of two
worker processes.

L-BFGS against a local fit on the same rows (the same losses to 1e-10, the same
predictions), local SGD / Adam against a local fit of as many epochs, early
stopping, labels, regressors, DataFrames, the errors, and a worker killed mid-fit.
"""

import os
import signal
import sys

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import cloudpickle  # noqa: E402  (a dependency of distributed)
import pandas as pd  # noqa: E402

import fastnet  # noqa: E402
from fastnet.dask import fit_distributed, predict_blocks  # noqa: E402
from fastnet.sklearn import distributed as fd  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"  # short fits on purpose
)


@pytest.fixture(scope="module")
def cluster():
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
        yield cluster, client


@pytest.fixture(scope="module")
def client(cluster):
    return cluster[1]


def _data(n=2400, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6))
    score = X[:, 0] * X[:, 1] + X[:, 2] - 0.5 * X[:, 3]
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return X, y


def _blocks(a, rows=400):
    return da.from_array(a, chunks=(rows, *a.shape[1:]))


def _clf(**kw):
    params = {"hidden_layer_sizes": (8,), "random_state": 0, "n_threads": 1}
    return fastnet.MLPClassifier(**{**params, **kw})


def _reg(**kw):
    params = {"hidden_layer_sizes": (8,), "random_state": 0, "n_threads": 1}
    return fastnet.MLPRegressor(**{**params, **kw})


# -- L-BFGS: exact -------------------------------------------------------------------
@pytest.mark.parametrize("max_iter", [1, 2, 5])
def test_lbfgs_losses_equal_a_local_fit(client, max_iter):
    X, y = _data()
    kw = {"solver": "lbfgs", "max_iter": max_iter}
    dist = fit_distributed(_clf(**kw), _blocks(X), _blocks(y))
    local = _clf(**kw).fit(X, y)
    assert dist.n_iter_ == local.n_iter_
    assert abs(dist.loss_ - local.loss_) <= 1e-10 * abs(local.loss_)
    for a, b in zip(dist.coefs_, local.coefs_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_lbfgs_predicts_as_a_local_fit(client):
    X, y = _data(3000)
    kw = {"solver": "lbfgs", "max_iter": 50, "alpha": 1e-3}
    dist = fit_distributed(_clf(**kw), _blocks(X[:2400]), _blocks(y[:2400]))
    local = _clf(**kw).fit(X[:2400], y[:2400])
    agree = np.mean(dist.predict(X[2400:]) == local.predict(X[2400:]))
    assert agree >= 0.99
    assert list(dist.classes_) == [0, 1, 2]
    assert dist.n_features_in_ == 6 and dist.out_activation_ == "softmax"


def test_lbfgs_regressor_multi_output_with_sample_weights(client):
    X, _ = _data(1800)
    Y = np.column_stack([X[:, 0] - X[:, 1] ** 2, np.sin(X[:, 2])])
    w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    kw = {"solver": "lbfgs", "max_iter": 4, "alpha": 0.1}
    # uneven blocks
    dX = da.from_array(X, chunks=((500, 700, 600), 6))
    dist = fit_distributed(_reg(**kw), dX, Y, sample_weight=w)
    local = _reg(**kw).fit(X, Y, sample_weight=w)
    assert abs(dist.loss_ - local.loss_) <= 1e-10 * abs(local.loss_)
    np.testing.assert_allclose(dist.predict(X), local.predict(X), rtol=1e-8)
    assert dist.n_outputs_ == 2 and dist.out_activation_ == "identity"


# -- local SGD -----------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_stochastic_accuracy_near_a_local_fit(client, solver):
    X, y = _data(3000, classes=2)
    kw = {
        "solver": solver,
        "max_iter": 30,
        "learning_rate_init": 0.01 if solver == "adam" else 0.1,
        "hidden_layer_sizes": (16,),
    }
    dist = fit_distributed(_clf(**kw), _blocks(X[:2400]), _blocks(y[:2400]))
    local = _clf(**kw).fit(X[:2400], y[:2400])
    assert dist.n_iter_ == 30 and len(dist.loss_curve_) == 30
    assert dist.loss_curve_[-1] < dist.loss_curve_[0]
    held = X[2400:], y[2400:]
    assert local.score(*held) > 0.85
    assert dist.score(*held) >= local.score(*held) - 0.02


def test_sync_every_steps_and_the_rounds_are_deterministic(client):
    X, y = _data(2000, classes=2)
    kw = {"max_iter": 5, "learning_rate_init": 0.01, "batch_size": 50}
    a = fit_distributed(_clf(**kw), _blocks(X), _blocks(y), sync_every=3)
    b = fit_distributed(_clf(**kw), _blocks(X), _blocks(y), sync_every=3)
    c = fit_distributed(_clf(**kw), _blocks(X), _blocks(y))
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])
    assert len(a.loss_curve_) == 5 and a._optimizer.t > 0
    # an epoch is one pass over each worker's blocks whatever sync_every: rounds
    # longer than an epoch are an epoch
    d = fit_distributed(_clf(**kw), _blocks(X), _blocks(y), sync_every=1000)
    np.testing.assert_array_equal(d.coefs_[0], c.coefs_[0])


def test_segments_cover_each_local_epoch_once():
    rows = [7, 5, 9]
    plan = fd._Plan(seed=3, group=0, start=0, end=8, batch=3)  # one epoch: 8
    seen = [(pos, i) for pos, idx in fd._segments(plan, rows) for i in idx]
    assert sorted(seen) == [(p, i) for p, n in enumerate(rows) for i in range(n)]
    # rounds of 3 steps (the last of each epoch shorter) cover the same stream
    stream = []
    for epoch in range(3):
        for start in range(8 * epoch, 8 * epoch + 8, 3):
            plan = fd._Plan(3, 0, start, min(start + 3, 8 * epoch + 8), 3)
            stream += [(pos, i) for pos, idx in fd._segments(plan, rows) for i in idx]
    whole = [
        (pos, i)
        for epoch in range(3)
        for pos, idx in fd._segments(fd._Plan(3, 0, 8 * epoch, 8 * epoch + 8, 3), rows)
        for i in idx
    ]
    assert stream == whole


def test_early_stopping_on_held_out_blocks(client):
    X, y = _data(2400, classes=2)
    kw = {
        "early_stopping": True,
        "validation_fraction": 0.2,
        "n_iter_no_change": 2,
        "tol": 0.05,
        "max_iter": 50,
        "learning_rate_init": 0.01,
    }
    est = fit_distributed(_clf(**kw), _blocks(X), _blocks(y))
    assert est.n_iter_ < 50
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    # the best weights are restored: they score the held-out blocks (the last two)
    assert est.score(X[1600:], y[1600:]) == pytest.approx(est.best_validation_score_)


def test_regressor_early_stopping_r2(client):
    X, _ = _data(2000)
    y = X[:, 0] - 2 * X[:, 1]
    kw = {"early_stopping": True, "max_iter": 8, "learning_rate_init": 0.01}
    est = fit_distributed(_reg(**kw), _blocks(X), _blocks(y))
    # validation_fraction 0.1: the last block (400 rows) is held out; the best
    # weights are restored
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == pytest.approx(
        est.score(X[1600:], y[1600:]), rel=1e-9
    )


# -- labels, inputs --------------------------------------------------------------------
def test_classes_missing_from_blocks_and_string_labels(client):
    X, y = _data(1200)
    labels = np.array(["ant", "bee", "cat", "dog"])[y]
    # every block but the last lacks "dog"; "eel" is in no block
    dist = fit_distributed(
        _clf(solver="lbfgs", max_iter=3),
        _blocks(X),
        _blocks(labels),
        classes=["ant", "bee", "cat", "dog", "eel"],
    )
    assert list(dist.classes_) == ["ant", "bee", "cat", "dog", "eel"]
    found = fit_distributed(_clf(solver="lbfgs", max_iter=3), _blocks(X), labels)
    assert list(found.classes_) == ["ant", "bee", "cat"]
    local = _clf(solver="lbfgs", max_iter=3).fit(X, labels)
    assert abs(found.loss_ - local.loss_) <= 1e-10 * local.loss_


def test_dataframe_input_and_a_fitted_estimator_like_any(client, tmp_path):
    dd = pytest.importorskip("dask.dataframe")  # needs pyarrow
    X, y = _data(1200, classes=2)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    dX = dd.from_pandas(frame, npartitions=3)
    dy = dd.from_pandas(pd.Series(y, name="y"), npartitions=3)
    est = fit_distributed(_clf(solver="lbfgs", max_iter=5), dX, dy)
    local = _clf(solver="lbfgs", max_iter=5).fit(frame, y)
    assert list(est.feature_names_in_) == list(frame.columns)
    np.testing.assert_allclose(est.predict_proba(frame), local.predict_proba(frame))
    path = tmp_path / "model"
    fastnet.save(est, path)
    again = fastnet.load(path)
    np.testing.assert_array_equal(again.predict(frame), est.predict(frame))
    blocks = predict_blocks(est, _blocks(X)).compute()
    np.testing.assert_array_equal(blocks, est.predict(X))


class _Frame:
    """What ``fit_distributed`` asks of a dask DataFrame / Series (the test runs
    where dask.dataframe cannot be imported: it needs pyarrow)."""

    def __init__(self, array, columns=None):
        self.array, self.asked = array, []
        if columns is not None:
            self.columns = columns

    def to_dask_array(self, lengths=False):
        self.asked.append(lengths)
        return self.array


def test_frames_go_through_to_dask_array_with_lengths(client):
    X, y = _data(1200, classes=2)
    names = [f"f{i}" for i in range(6)]
    dX, dy = _Frame(_blocks(X), names), _Frame(_blocks(y))
    est = fit_distributed(_clf(solver="lbfgs", max_iter=5), dX, dy)
    assert dX.asked == [True] and dy.asked == [True]
    frame = pd.DataFrame(X, columns=names)
    local = _clf(solver="lbfgs", max_iter=5).fit(frame, y)
    assert list(est.feature_names_in_) == names
    np.testing.assert_allclose(est.predict_proba(frame), local.predict_proba(frame))


# -- errors ----------------------------------------------------------------------------
def test_bad_arguments(client):
    X, y = _data(400)
    dX, dy = _blocks(X, 200), _blocks(y, 200)
    from sklearn.neural_network import MLPClassifier

    with pytest.raises(TypeError, match=r"fastnet\.MLPClassifier"):
        fit_distributed(MLPClassifier(), dX, dy)
    with pytest.raises(TypeError, match=r"dask\.array"):
        fit_distributed(_clf(), X, dy)
    with pytest.raises(ValueError, match="y has 399 rows, X has 400"):
        fit_distributed(_clf(), dX, y[:399])
    with pytest.raises(ValueError, match="sync_every"):
        fit_distributed(_clf(), dX, dy, sync_every=0)
    with pytest.raises(TypeError, match="sync_every"):
        fit_distributed(_clf(), dX, dy, sync_every=2.5)
    with pytest.raises(ValueError, match="X has no rows"):
        fit_distributed(_clf(), dX[:0], dy[:0])
    with pytest.raises(ValueError, match="callbacks"):
        fit_distributed(_clf(callbacks=[fastnet.callbacks.Callback()]), dX, dy)


def test_a_bad_block_is_named_before_training(client):
    X, y = _data(1200)
    bad = X.copy()
    bad[950, 2] = np.nan
    with pytest.raises(ValueError, match=r"block 2 \(rows 800-1199\).*NaN"):
        fit_distributed(_clf(solver="lbfgs"), _blocks(bad), _blocks(y))
    # a block wider than the chunks say
    dX = _blocks(X).map_blocks(
        lambda b, block_info=None: (
            np.hstack([b, b[:, :1]]) if block_info[0]["chunk-location"][0] == 1 else b
        ),
        dtype=X.dtype,
    )
    with pytest.raises(ValueError, match=r"block 1 \(rows 400-799\) of X has shape"):
        fit_distributed(_clf(solver="lbfgs"), dX, _blocks(y))
    with pytest.raises(ValueError, match=r"block 0: .*negative"):
        fit_distributed(_reg(loss="poisson"), _blocks(X), _blocks(X[:, 0]))


# -- faults (last: the cluster restarts a worker) ----------------------------------
@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_a_worker_killed_mid_fit(cluster, monkeypatch, solver):
    _, client = cluster
    X, y = _data(2400)
    kw = {"solver": solver, "max_iter": 6, "learning_rate_init": 0.01}
    undisturbed = fit_distributed(_clf(**kw), _blocks(X), _blocks(y))

    reduce = fd._reduce
    calls = []

    def kill_on_the_third(data, per_group, name):
        future = reduce(data, per_group, name)
        calls.append(name)
        if len(calls) == 3:
            # the tasks of this iteration are running: kill the worker holding the
            # second half of the blocks (its nanny starts a new, empty one)
            pid = client.run(os.getpid, workers=[data.workers[1]])[data.workers[1]]
            os.kill(pid, signal.SIGKILL)
        return future

    monkeypatch.setattr(fd, "_reduce", kill_on_the_third)
    with distributed.get_task_stream(client) as stream:
        disturbed = fit_distributed(_clf(**kw), _blocks(X), _blocks(y))
    assert len(calls) > 3
    # the lost blocks were made again (6 blocks, each prepared once undisturbed)
    prepared = [t for t in stream.data if str(t["key"]).startswith("fastnet-block")]
    assert len(prepared) > 6
    assert disturbed.n_iter_ == undisturbed.n_iter_
    for a, b in zip(disturbed.coefs_, undisturbed.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    client.wait_for_workers(2, timeout=60)


def test_a_block_of_zero_weights_adds_nothing(client):
    # a local fit accepts weights that are zero over a whole block: so does this
    X, y = _data(2000, classes=2)
    w = np.ones(2000)
    w[400:800] = 0  # block 1
    kw = {"solver": "lbfgs", "max_iter": 5}
    local = _clf(**kw).fit(X, y, sample_weight=w)
    dist = fit_distributed(_clf(**kw), _blocks(X), _blocks(y), sample_weight=_blocks(w))
    np.testing.assert_allclose(dist.loss_, local.loss_, rtol=1e-10)
    adam = fit_distributed(_clf(max_iter=3), _blocks(X), _blocks(y), sample_weight=w)
    assert adam.n_iter_ == 3 and np.isfinite(adam.loss_)
    w[1000] = -1.0
    with pytest.raises(ValueError, match=r"block 2 \(rows 800-1199\): .*negative"):
        fit_distributed(_clf(**kw), _blocks(X), _blocks(y), sample_weight=_blocks(w))
