"""Numerical faults, concurrency and resources: diverging training, extreme logits,
parallel kernels from 8 threads, two processes sharing the Numba cache, flat memory,
bit-identical reruns, and fuzzed estimator input. (Concurrent predictions:
test_concurrency.py.)"""

import os
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import neural_network as sk_neural_network
from sklearn.datasets import load_digits

import fastnet as fn
from tests.processes import python_lines, pythons_at_once

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_extreme_logits_are_finite_in_float32():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], np.float32)
    ce = fn.SoftmaxCrossEntropy()
    assert np.isfinite(ce.forward(z, [1, 2])) and np.isfinite(ce.backward()).all()
    for module in (fn.Sigmoid(), fn.GELU(), fn.GELU("tanh"), fn.Softmax()):
        assert np.isfinite(module.forward(z)).all()
        assert np.isfinite(module.backward(np.ones_like(z))).all()


def test_diverging_estimator_raises_scikit_learn_error_and_keeps_finite_weights():
    # scikit-learn trains on through NaN and raises at the end; fastnet raises the
    # same error as soon as the weights stop being finite, with the weights of the
    # last finite iteration kept (here iteration 1 of 50: the second one diverges)
    X, y = load_digits(return_X_y=True)
    X = X / 16
    kw = {
        "hidden_layer_sizes": (8,),
        "activation": "identity",
        "solver": "sgd",
        "learning_rate_init": 0.03,
        "max_iter": 50,
        "random_state": 0,
    }
    msg = "Solver produced non-finite parameter weights"
    with pytest.raises(ValueError, match=msg), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's overflows
        sk_neural_network.MLPRegressor(**kw).fit(X, y)
    reg = fn.MLPRegressor(**kw)
    with pytest.raises(ValueError, match=msg) as err:
        reg.fit(X, y)
    assert "keeps the last finite weights" in str(err.value)
    assert reg.n_iter_ == 1 and len(reg.loss_curve_) == 1 and np.isfinite(reg.loss_)
    one = fn.MLPRegressor(**(kw | {"max_iter": 1})).fit(X, y)
    for a, b in zip(
        reg.coefs_ + reg.intercepts_, one.coefs_ + one.intercepts_, strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(reg.predict(X)).all()
    # partial_fit: a call that diverges leaves the model as it was before the call,
    # and the next call starts a fresh optimizer at learning_rate_init
    reg = fn.MLPRegressor(**(kw | {"learning_rate_init": 0.001}))
    reg.partial_fit(X, y)
    before = [a.copy() for a in reg.coefs_ + reg.intercepts_]
    reg._optimizer.learning_rate = 1.0  # scikit-learn's attribute; this rate diverges
    with pytest.raises(ValueError, match=msg):
        reg.partial_fit(X, y)
    for a, b in zip(reg.coefs_ + reg.intercepts_, before, strict=True):
        np.testing.assert_array_equal(a, b)
    reg.partial_fit(X, y)
    assert reg._optimizer.learning_rate == 0.001
    assert all(np.isfinite(c).all() for c in reg.coefs_ + reg.intercepts_)


def test_parallel_kernels_from_eight_threads():
    x = np.random.default_rng(0).standard_normal(1 << 19)
    want = fn.GELU().forward(x).copy()
    out = [None] * 8

    def work(i):
        out[i] = fn.GELU().forward(x).copy()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for o in out:
        np.testing.assert_array_equal(o, want)


def test_two_processes_fitting_with_one_cold_cache(tmp_path):
    code = (
        "import numpy as np, fastnet as fn\n"
        "from sklearn.datasets import load_digits\n"
        "X, y = load_digits(return_X_y=True)\n"
        "m = fn.MLPClassifier((16,), max_iter=3, random_state=0).fit(X, y)\n"
        "print(repr(float(m.coefs_[0].sum())))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    outs = pythons_at_once(code, env, cwd=ROOT)
    assert outs[0] == outs[1]
    assert python_lines(code, env, cwd=ROOT) == outs[0].splitlines()


def test_memory_stays_flat_over_200_epochs():
    import tracemalloc

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    model = fn.Sequential(
        fn.Linear(64, 32, random_state=0), fn.ReLU(), fn.Linear(32, 10, random_state=1)
    )
    trainer = fn.Trainer(
        model, fn.SoftmaxCrossEntropy(), fn.optim.Adam(), epochs=20, random_state=0
    )
    trainer.fit(X, y)
    tracemalloc.start()
    try:
        trainer.epochs = 100
        trainer.fit(X, y)
        first, _ = tracemalloc.get_traced_memory()
        trainer.epochs = 200
        trainer.fit(X, y)
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # what stays is per fit (history lists), not per epoch
    assert second - first < 64 * 1024, second - first


def test_same_random_state_gives_bit_identical_weights():
    X, y = load_digits(return_X_y=True)
    for kw in ({}, {"solver": "sgd"}, {"dropout": 0.2}, {"early_stopping": True}):
        a = fn.MLPClassifier(max_iter=4, random_state=3, **kw).fit(X, y)
        b = fn.MLPClassifier(max_iter=4, random_state=3, **kw).fit(X, y)
        for p, q in zip(a.coefs_, b.coefs_, strict=True):
            np.testing.assert_array_equal(p, q)


@settings(max_examples=40, deadline=None)
@given(
    X=hnp.arrays(
        st.sampled_from([np.float64, np.float32]),
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
        elements=st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-5, 5)
        ),
    ),
    y=st.lists(st.integers(0, 2), min_size=0, max_size=8),
)
def test_fuzzed_estimator_input_fits_or_raises_cleanly(X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est = fn.MLPClassifier((4,), max_iter=2, random_state=0).fit(X, np.array(y))
        except (ValueError, TypeError):
            return
    assert all(np.isfinite(c).all() for c in est.coefs_)
    proba = est.predict_proba(np.asarray(X, dtype=np.float64).reshape(len(X), -1))
    assert np.isfinite(proba).all()
