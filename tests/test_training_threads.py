"""The training epoch on fastnet's own threads (``kernels.mlp.epoch`` in shares on
``_runtime.pool``): the same bits for every thread count, the module path computing
the same shares, float64 still scikit-learn's, several fits at once, and threads
that stop when a launch fails."""

import threading
import warnings

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

import fastnet as fn
from fastnet._runtime import mlp as runtime_mlp
from fastnet._runtime import pool as pool_module
from fastnet.kernels import linear


@pytest.fixture
def shares4(monkeypatch):
    """Every network's steps in 4 shares (a pool of 4, any step big enough): the
    threaded epoch on any machine, for the small networks of these tests."""
    monkeypatch.setitem(pool_module._pool, "pool", pool_module.Pool(4))
    monkeypatch.setattr(runtime_mlp, "STEP_WORK", 1)
    return 4


def data(dtype=np.float32, n=300, d=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    return X, y


class _EveryBatch(fn.callbacks.Callback):
    """A batch hook: the fit takes the module path."""

    def on_batch_end(self, owner, state):
        pass


def weights(est):
    return [*est.coefs_, *est.intercepts_]


def assert_same(a, b):
    for u, v in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(u, v)
    assert a.loss_curve_ == b.loss_curve_


def fit(cls, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached
        return cls(**({"random_state": 0, "max_iter": 3} | kw)).fit(X, y)


CONFIGS = [
    (fn.MLPClassifier, {"hidden_layer_sizes": (40, 24)}),  # Adam, alpha 1e-4
    (fn.MLPClassifier, {"hidden_layer_sizes": (40,), "alpha": 0.0}),
    (
        fn.MLPClassifier,
        {"activation": "tanh", "solver": "sgd", "nesterovs_momentum": True},
    ),
    (fn.MLPClassifier, {"activation": "gelu", "hidden_layer_sizes": (33, 17)}),
    (fn.MLPRegressor, {"hidden_layer_sizes": (40, 24)}),  # one output column
    (fn.MLPRegressor, {"activation": "logistic", "loss": "poisson", "target": "multi"}),
]


def _target(cls, config, y):
    config = dict(config)
    if cls is fn.MLPRegressor:
        y = y / 2.0 if config.pop("target", None) is None else np.c_[y, y / 3.0] + 0.1
    return config, y


@pytest.mark.parametrize("cls,config", CONFIGS, ids=str)
def test_every_thread_count_gives_the_same_bits(cls, config, shares4):
    X, y = data()
    config, y = _target(cls, config, y)
    alone = fit(cls, X, y, n_threads=1, **config)
    assert alone._fn_fused_state is not None  # the compiled epoch ran
    for n_threads in (2, 3, 4, None):
        assert_same(fit(cls, X, y, n_threads=n_threads, **config), alone)


@pytest.mark.parametrize("cls,config", CONFIGS, ids=str)
def test_the_module_path_computes_the_same_shares(cls, config, shares4):
    # a batch hook trains through the modules, which take the compiled epoch's
    # shares (Linear.shares): the same bits at any thread count
    X, y = data()
    config, y = _target(cls, config, y)
    compiled = fit(cls, X, y, n_threads=2, **config)
    modules = fit(cls, X, y, callbacks=[_EveryBatch()], **config)
    assert getattr(modules, "_fn_fused_state", None) is None
    assert_same(compiled, modules)
    # the shares are undone after the fit: whole products for anything else
    assert all(lin.shares == 1 for lin in modules._network().modules[0::2])


def test_shares_change_the_bits_so_the_module_path_must_follow_them(monkeypatch):
    # why Linear.shares exists: BLAS gives a block of rows other bits than the
    # whole product, so the module path in whole products parts from the compiled
    # epoch in shares (if this ever holds bit for bit, the shares are free)
    X, y = data(n=400, d=64)
    kw = {"hidden_layer_sizes": (96, 48), "n_threads": 1}
    whole = fit(fn.MLPClassifier, X, y, **kw)
    monkeypatch.setitem(pool_module._pool, "pool", pool_module.Pool(4))
    monkeypatch.setattr(runtime_mlp, "STEP_WORK", 1)
    shared = fit(fn.MLPClassifier, X, y, **kw)
    assert any(
        not np.array_equal(u, v)
        for u, v in zip(weights(whole), weights(shared), strict=True)
    )
    for u, v in zip(weights(whole), weights(shared), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)


class _HoldTokens(fn.callbacks.Callback):
    """Between epochs, takes some of the pool's tokens (3, then 2, then none...),
    as other callers would: the fit's next epoch gets fewer threads."""

    def __init__(self):
        self.held = None
        self.plan = [3, 2, 0, 3]

    def on_epoch_end(self, owner, state):
        if self.held is not None:
            self.held.__exit__(None, None, None)
            self.held = None
        want = self.plan.pop(0) if self.plan else 0
        if want:
            self.held = pool_module.pool().share(want)
            assert self.held.__enter__() == want

    def on_fit_end(self, owner, state):
        if self.held is not None:
            self.held.__exit__(None, None, None)


def test_epochs_on_as_many_threads_as_the_pool_has_free_give_the_same_bits(shares4):
    # one fit's epochs get different thread counts (4, 1, 2, 4, 1) where other
    # callers hold the pool's tokens in between: the bits of one thread throughout
    X, y = data()
    kw = {"hidden_layer_sizes": (40, 24), "max_iter": 5, "tol": 0.0}
    alone = fit(fn.MLPClassifier, X, y, n_threads=1, **kw)
    busy = fit(fn.MLPClassifier, X, y, callbacks=[_HoldTokens()], **kw)
    assert busy._fn_fused_state is not None
    assert_same(alone, busy)


def test_trainer_every_thread_count_and_the_module_path_agree(shares4, monkeypatch):
    X, y = data()

    def train(n_threads, modules=False):
        model = fn.Sequential(
            fn.Linear(20, 48, random_state=0),
            fn.ReLU(),
            fn.Linear(48, 32, random_state=1),
            fn.ReLU(),
            fn.Linear(32, 3, random_state=2),
        )
        trainer = fn.Trainer(
            model,
            fn.SoftmaxCrossEntropy(),
            fn.optim.Adam(lr=1e-2),
            batch_size=64,
            epochs=3,
            random_state=0,
            n_threads=n_threads,
        )
        with monkeypatch.context() as m:
            if modules:
                m.setattr(fn.Trainer, "_fused_epoch", lambda *a: None)
            trainer.fit(X, y)
        return model, trainer.history.loss

    ref, ref_loss = train(1)
    for n_threads, modules in ((2, False), (4, False), (None, True), (2, True)):
        model, loss = train(n_threads, modules)
        assert loss == ref_loss
        for k, v in model.params.items():
            np.testing.assert_array_equal(v, ref.params[k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_network_the_compiled_epoch_does_not_run_keeps_its_bits_too(dtype, shares4):
    # mixed activations: the module path, its Linear layers in shares on the pool
    # and BLAS at one thread: the same bits for any thread count (products large
    # enough for OpenBLAS to use its threads when it may: found by a new user)
    X, y = data(dtype, n=512, d=320)

    def train(n_threads):
        model = fn.Sequential(
            fn.Linear(320, 256, dtype=dtype, random_state=0),
            fn.ReLU(),
            fn.Linear(256, 128, dtype=dtype, random_state=1),
            fn.Tanh(),
            fn.Linear(128, 3, dtype=dtype, random_state=2),
        )
        trainer = fn.Trainer(
            model,
            fn.SoftmaxCrossEntropy(),
            fn.optim.SGD(lr=0.05),
            batch_size=256,
            epochs=1,
            random_state=0,
            n_threads=n_threads,
        )
        assert trainer._fused_epoch(*trainer._prepare(X, y, None, "X")) is None
        trainer.fit(X, y)
        return model

    ref = train(1)
    for n_threads in (2, 4, None):
        for k, v in train(n_threads).params.items():
            np.testing.assert_array_equal(v, ref.params[k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lbfgs_gives_the_same_bits_for_any_thread_count(dtype, shares4):
    X, y = data(dtype, n=1000, d=320)
    kw = {"hidden_layer_sizes": (256, 128), "solver": "lbfgs", "max_iter": 3}
    alone = fit(fn.MLPClassifier, X, y, n_threads=1, **kw)
    for n_threads in (2, 4, None):
        other = fit(fn.MLPClassifier, X, y, n_threads=n_threads, **kw)
        for u, v in zip(weights(alone), weights(other), strict=True):
            np.testing.assert_array_equal(u, v)
        assert other.loss_ == alone.loss_


def test_float64_in_shares_is_still_scikit_learns(shares4):
    X, y = data(np.float64, n=240)
    kw = {"hidden_layer_sizes": (40, 24), "max_iter": 5, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fn.MLPClassifier(**kw, n_threads=2).fit(X, y)
        theirs = SkMLPClassifier(**kw).fit(X, y)
    for u, v in zip(weights(ours), weights(theirs), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)


def test_fits_in_several_threads_at_once_each_get_their_own_bits(shares4):
    # different data of the same shape in each thread; the pool's tokens are
    # shared, so some epochs run on fewer threads: the shares keep the bits
    sets = [data(seed=s) for s in range(4)]
    alone = [fit(fn.MLPClassifier, X, y, hidden_layer_sizes=(40, 24)) for X, y in sets]
    for _ in range(3):
        got = [None] * len(sets)

        def run(i, got=got):
            X, y = sets[i]
            got[i] = fit(fn.MLPClassifier, X, y, hidden_layer_sizes=(40, 24))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sets))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        for a, b in zip(got, alone, strict=True):
            assert_same(a, b)


def test_a_failed_launch_stops_the_threads_already_started(shares4, monkeypatch):
    # the second worker cannot be started: the first, already waiting at a
    # barrier, returns -1 instead of waiting for ever, and the fit raises
    X, y = data()
    est = fn.MLPClassifier(hidden_layer_sizes=(40,), max_iter=1, random_state=0)
    pool = pool_module.pool()
    executor = pool._executor()
    real = executor.submit
    started = []

    def submit(fn_, *args):
        if started:
            raise RuntimeError("cannot start a thread")
        future = real(fn_, *args)
        started.append(future)
        return future

    monkeypatch.setattr(executor, "submit", submit)
    with pytest.raises(RuntimeError, match="cannot start a thread"):
        est.fit(X, y)
    assert started[0].result(timeout=30) == -1
    monkeypatch.setattr(executor, "submit", real)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)  # the pool works again
    assert np.isfinite(est.loss_)


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 31, 32, 100, 128, 200, 784])
@pytest.mark.parametrize("parts", [1, 2, 3, 4, 16])
def test_shares_cover_the_rows_once_at_multiples_of_16(n, parts):
    edges = [linear.share(n, p, parts) for p in range(parts)]
    covered = [i for lo, hi in edges for i in range(lo, hi)]
    assert covered == list(range(n))
    for p, (lo, hi) in enumerate(edges):
        if hi > lo:
            assert lo % 16 == 0
            assert hi - lo >= 16 or n < 16
            assert hi == n or hi % 16 == 0
        else:
            assert (n == 0 or p > 0) and all(h == lo_ for lo_, h in edges[p:])


def test_the_step_is_cut_in_shares_by_its_work():
    big = np.array([784, 256, 128, 10])
    assert runtime_mlp.epoch_shares(big, 128, 2) == 2
    assert runtime_mlp.epoch_shares(big, 128, 16) == 11  # 90 million a step
    assert runtime_mlp.epoch_shares(np.array([64, 100, 10]), 200, 2) == 1
    assert runtime_mlp.epoch_shares(np.array([64, 32, 10]), 32, 16) == 1
    assert runtime_mlp.epoch_shares(big, 1, 16) == 1
