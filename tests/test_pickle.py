"""Pickles (what Dask, joblib and multiprocessing send between processes) carry
parameters, optimizer state and settings — no compiled kernels, no buffers — and the
unpickled objects compute exactly what the originals do."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastnet as fn


def _dumps(obj):
    payload = pickle.dumps(obj)
    assert b"numba" not in payload and b"Dispatcher" not in payload
    return payload


def _modules():
    rng = np.random.default_rng(0)
    g = fn.Graph()
    x = g.input("x")
    h = g.add(fn.Linear(6, 4, random_state=0), x)
    g.add(fn.Einsum("bi,ij->bj"), h, g.param("W", rng.standard_normal((4, 3))))
    return {
        "linear": fn.Linear(6, 4, random_state=0),
        "relu": fn.ReLU(),
        "leaky_relu": fn.LeakyReLU(0.1),
        "gelu": fn.GELU(),
        "gelu_tanh": fn.GELU(approximate="tanh"),
        "tanh": fn.Tanh(),
        "sigmoid": fn.Sigmoid(),
        "identity": fn.Identity(),
        "softmax": fn.Softmax(),
        "sequential": fn.Sequential(
            fn.Linear(6, 8, random_state=1), fn.GELU(), fn.Linear(8, 3, random_state=2)
        ),
        "graph": g,
    }


@pytest.mark.parametrize("name", list(_modules()))
def test_modules_pickle_without_kernels_or_buffers(name):
    module = _modules()[name]
    x = np.random.default_rng(1).standard_normal((2000, 6)).astype(np.float32)
    call = (lambda m: m.forward(x=x)) if name == "graph" else (lambda m: m.forward(x))
    expected = np.array(call(module))  # buffers of 2000 rows now exist
    payload = _dumps(module)
    assert len(payload) < 2000 * 4 + 4096  # parameters, not a batch's buffers
    clone = pickle.loads(payload)
    with pytest.raises(RuntimeError, match="before forward"):
        clone.backward(np.ones_like(expected))  # the saved input was not pickled
    np.testing.assert_array_equal(call(clone), expected)
    dy = np.random.default_rng(2).standard_normal(expected.shape).astype(np.float32)
    got, want = clone.backward(dy), module.backward(dy)
    if isinstance(want, dict):
        got, want = got["x"], want["x"]
    np.testing.assert_array_equal(got, want)
    for k, v in module.grads.items():
        np.testing.assert_array_equal(clone.grads[k], v)


def test_dropout_pickle_continues_the_same_random_stream():
    drop = fn.Dropout(0.3, random_state=5)
    x = np.ones((50, 4))
    drop.forward(x)
    clone = pickle.loads(_dumps(drop))
    np.testing.assert_array_equal(clone.forward(x), drop.forward(x))


def test_losses_pickle_without_buffers():
    loss = fn.SoftmaxCrossEntropy()
    z = np.random.default_rng(0).standard_normal((300, 5))
    t = np.arange(300) % 5
    value = loss(z, t)
    clone = pickle.loads(_dumps(loss))
    with pytest.raises(RuntimeError, match="before forward"):
        clone.backward()
    assert clone(z, t) == value
    np.testing.assert_array_equal(clone.backward(), loss.backward())


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_estimators_pickle_and_continue_training_identically(kind):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    est = (fn.MLPClassifier if kind == "classifier" else fn.MLPRegressor)(
        hidden_layer_sizes=(7,), max_iter=4, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    est.predict(X[:1])  # compiled forward and buffers exist now
    clone = pickle.loads(_dumps(est))
    np.testing.assert_array_equal(clone.predict(X), est.predict(X))
    # the optimizer's moments and the random state travel too: one more epoch of
    # each ends with identical weights
    est.partial_fit(X, y)
    clone.partial_fit(X, y)
    for a, b in zip(clone.coefs_, est.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_pickles_of_the_previous_layout_load():
    """Objects pickled by fastnet 0.1.0, whose classes lived at the old module paths
    (``fastnet.estimator``, ``fastnet.layers.linear``,
    ``fastnet.train``, ...), load
    and compute what they computed then (``tests/fixtures/make_release_pickle.py``
    wrote the file)."""
    import pathlib

    path = pathlib.Path(__file__).parent / "fixtures" / "release_0.1.0.pkl"
    payload = path.read_bytes()
    assert b"fastnet.estimator" in payload and b"fastnet.layers.linear" in payload
    data = pickle.loads(payload)
    objects, expected = data["objects"], data["expected"]
    X = expected["X"]
    np.testing.assert_array_equal(
        objects["classifier"].predict_proba(X), expected["classifier"]
    )
    np.testing.assert_array_equal(
        objects["regressor"].predict(X), expected["regressor"]
    )
    np.testing.assert_array_equal(
        objects["sequential"].forward(X, train=False), expected["sequential"]
    )
    np.testing.assert_array_equal(objects["graph"].forward(x=X), expected["graph"])
    trainer = objects["trainer"]
    np.testing.assert_array_equal(
        trainer.model.forward(X, train=False), expected["trainer"]
    )
    assert objects["history"].loss == trainer.history.loss
    np.testing.assert_array_equal(
        objects["tabular"].predict(expected["frame"]), expected["tabular"]
    )
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        objects["classifier"].partial_fit(X, y)  # the optimizer's state came too
        trainer.fit(X, y)
    for loss in objects["losses"]:
        assert isinstance(
            loss,
            fn.SoftmaxCrossEntropy
            | fn.SigmoidBinaryCrossEntropy
            | fn.MSELoss
            | fn.PoissonLoss,
        )
    assert isinstance(objects["sgd"], fn.optim.SGD)
    assert isinstance(objects["dropout"], fn.Dropout)
