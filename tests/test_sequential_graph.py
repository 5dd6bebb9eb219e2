"""Sequential and Graph: chaining, fan-out gradient sums, parameter nodes, errors."""

import numpy as np
import pytest

import fastnet as fn
from tests.conftest import numeric_vjp


def mlp(dtype=np.float64):
    return fn.Sequential(
        fn.Linear(4, 6, dtype=dtype, random_state=0),
        fn.Tanh(),
        fn.Linear(6, 3, dtype=dtype, random_state=1),
    )


def test_sequential_is_the_chain(rng):
    model = mlp()
    x = rng.standard_normal((5, 4))
    a, t, b = model
    expected = b.forward(t.forward(a.forward(x)).copy()).copy()
    np.testing.assert_array_equal(model.forward(x), expected)
    assert list(model.params) == ["0.W", "0.b", "2.W", "2.b"]
    assert model.params["0.W"] is a.params["W"]


def test_sequential_gradients_match_central_differences(rng):
    model = mlp()
    x = rng.standard_normal((5, 4))
    dy = rng.standard_normal((5, 3))
    model.forward(x)
    dx = model.backward(dy).copy()
    np.testing.assert_allclose(
        dx, numeric_vjp(lambda v: model.forward(v).copy(), x, dy)
    )
    w = model.params["2.W"]
    model.forward(x)
    model.backward(dy)
    got = model.grads["2.W"].copy()

    def f(v):
        old = w.copy()
        w[...] = v
        out = model.forward(x).copy()
        w[...] = old
        return out

    np.testing.assert_allclose(got, numeric_vjp(f, w.copy(), dy), rtol=1e-7)


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="Sequential item 1"):
        fn.Sequential(fn.ReLU(), "relu")
    with pytest.raises(ValueError, match="at least one"):
        fn.Sequential()


def fan_out_graph():
    # x feeds two branches whose results meet again: d loss/dx sums both paths.
    g = fn.Graph()
    x = g.input("x")
    h = g.add(fn.Linear(3, 4, dtype=np.float64, random_state=0), x)
    a = g.add(fn.Tanh(), h)
    b = g.add(fn.Sigmoid(), h)  # h fans out to a and b
    c = g.add(fn.Linear(3, 4, dtype=np.float64, random_state=1), x)  # x fans out too
    s = g.add(Add(), a, b)
    g.add(Add(), s, c)
    return g


class Add(fn.Module):
    """y = a + b (a two-input module for the tests)."""

    def forward(self, a, b, train=True):
        return a + b

    def backward(self, dy):
        return dy, dy


def test_fan_out_gradients_are_summed(rng):
    g = fan_out_graph()
    x = rng.standard_normal((5, 3))
    dy = rng.standard_normal((5, 4))
    g.forward(x=x)
    dx = g.backward(dy)["x"].copy()
    np.testing.assert_allclose(dx, numeric_vjp(lambda v: g.forward(x=v).copy(), x, dy))
    for name in ("linear1.W", "linear4.b"):
        p = g.params[name]
        g.forward(x=x)
        g.backward(dy)
        got = g.grads[name].copy()

        def f(v, p=p):
            old = p.copy()
            p[...] = v
            out = g.forward(x=x).copy()
            p[...] = old
            return out

        np.testing.assert_allclose(got, numeric_vjp(f, p.copy(), dy), rtol=1e-7)


def test_param_nodes_get_gradients_and_train(rng):
    g = fn.Graph()
    x = g.input("x")
    scale = g.param("scale", np.ones((1, 3)))
    g.add(Mul(), x, scale)
    g.add(Mul(), g.nodes[-1], scale)  # the parameter fans out: used twice
    xv = rng.standard_normal((4, 3))
    dy = rng.standard_normal((4, 3))
    g.forward(x=xv)
    g.backward(dy)
    # y = x * s², dy/ds = 2 x s, summed over rows (s broadcast over the batch)
    np.testing.assert_allclose(scale.grad, (2 * xv * dy).sum(0, keepdims=True))
    assert g.params["scale"] is scale.value
    fn.optim.SGD(lr=0.1).step(g.params, g.grads)
    np.testing.assert_allclose(
        scale.value, 1 - 0.1 * (2 * xv * dy).sum(0, keepdims=True)
    )


class Mul(fn.Module):
    """y = a * b with b broadcast over rows."""

    def forward(self, a, b, train=True):
        self.a, self.b = a.copy(), b.copy()
        return a * b

    def backward(self, dy):
        return dy * self.b, (dy * self.a).sum(0, keepdims=True)


def test_graph_errors():
    g = fn.Graph()
    x = g.input("x")
    relu = fn.ReLU()
    g.add(relu, x)
    with pytest.raises(ValueError, match="already exists"):
        g.input("x")
    with pytest.raises(ValueError, match="already in this graph"):
        g.add(relu, x)
    with pytest.raises(ValueError, match="not a node of this graph"):
        g.add(fn.ReLU(), fn.Graph().input("y"))
    with pytest.raises(RuntimeError, match="before forward"):
        g.backward(np.ones(3))
    with pytest.raises(ValueError, match=r"missing \['x'\]"):
        g.forward(y=np.ones(3))
    g.forward(x=np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        g.backward(np.ones(4))


def test_unreached_input_gets_none(rng):
    g = fn.Graph()
    x = g.input("x")
    g.input("unused")
    g.add(fn.ReLU(), x)
    g.forward(x=rng.standard_normal(3), unused=np.ones(2))
    grads = g.backward(np.ones(3))
    assert grads["unused"] is None and grads["x"] is not None


def test_graph_runs_under_the_trainer(rng):
    g = fn.Graph()
    x = g.input("x")
    h = g.add(fn.Linear(2, 8, dtype=np.float64, random_state=0), x)
    g.add(fn.Linear(8, 1, dtype=np.float64, random_state=1), g.add(fn.Tanh(), h))
    X = rng.standard_normal((200, 2))
    y = (X[:, :1] * X[:, 1:]).copy()
    hist = fn.Trainer(
        g, fn.MSELoss(), fn.optim.Adam(lr=0.01), epochs=40, random_state=0
    ).fit(X, y)
    assert hist.loss[-1] < 0.5 * hist.loss[0]
