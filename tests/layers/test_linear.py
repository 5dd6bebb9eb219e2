"""The Linear module: initialisation, gradients, input checks, buffer reuse."""

import numpy as np
import pytest

import fastnet as fn
from tests.conftest import numeric_vjp


def test_glorot_uniform_like_scikit_learn():
    layer = fn.Linear(20, 7, dtype=np.float64, random_state=3)
    rs = np.random.RandomState(3)
    bound = np.sqrt(6.0 / 27)
    np.testing.assert_array_equal(layer.params["W"], rs.uniform(-bound, bound, (20, 7)))
    np.testing.assert_array_equal(layer.params["b"], rs.uniform(-bound, bound, 7))
    assert fn.Linear(20, 7).params["W"].dtype == np.float32


def test_gradients_match_central_differences(rng):
    layer = fn.Linear(4, 3, dtype=np.float64, random_state=0)
    x = rng.standard_normal((5, 4))
    dy = rng.standard_normal((5, 3))
    layer.forward(x)
    dx = layer.backward(dy).copy()
    w = layer.params["W"]

    def with_w(v):
        saved = w.copy()
        w[...] = v
        out = layer.forward(x).copy()
        w[...] = saved
        return out

    np.testing.assert_allclose(
        dx, numeric_vjp(lambda v: layer.forward(v).copy(), x, dy)
    )
    layer.forward(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.grads["W"], numeric_vjp(with_w, w.copy(), dy))
    np.testing.assert_allclose(layer.grads["b"], dy.sum(0))


def test_against_torch(torch, rng):
    layer = fn.Linear(6, 4, dtype=np.float64, random_state=1)
    x = rng.standard_normal((3, 6))
    dy = rng.standard_normal((3, 4))
    tl = torch.nn.Linear(6, 4)
    with torch.no_grad():
        tl.weight.copy_(torch.tensor(layer.params["W"].T))
        tl.bias.copy_(torch.tensor(layer.params["b"]))
    tx = torch.tensor(x, requires_grad=True)
    ty = tl(tx)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(layer.forward(x), ty.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(layer.backward(dy), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], tl.weight.grad.numpy().T, rtol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], tl.bias.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x[:, ::2],  # non-contiguous
        lambda x: np.require(x, requirements="F"),
        lambda x: x.astype(">f8"),  # big-endian
        lambda x: x.astype(np.float32),  # another float width: cast
        lambda x: np.asarray(x.tolist()),  # from a list
    ],
)
def test_unusual_but_valid_input_works(make, rng):
    layer = fn.Linear(3, 2, dtype=np.float64, random_state=0)
    base = rng.standard_normal((4, 6))
    x = make(base if make(base).shape[1] == 3 else base[:, :3])
    expected = np.asarray(x, dtype=np.float64) @ layer.params["W"] + layer.params["b"]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-6)


def test_read_only_input_works(rng):
    layer = fn.Linear(3, 2, random_state=0)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    x.flags.writeable = False
    assert layer.forward(x).shape == (4, 2)
    assert layer.backward(np.ones((4, 2), np.float32)).shape == (4, 3)


def test_zero_rows(rng):
    layer = fn.Linear(3, 2, random_state=0)
    assert layer.forward(np.empty((0, 3))).shape == (0, 2)
    assert layer.backward(np.empty((0, 2))).shape == (0, 3)
    np.testing.assert_array_equal(layer.grads["W"], 0)


@pytest.mark.parametrize(
    "x,exc,words",
    [
        (np.ones((4, 5)), ValueError, "expected (n, 3)"),
        (np.ones(3), ValueError, "2-D"),
        (np.ones((2, 2, 3)), ValueError, "2-D"),
        (np.ones((4, 3), complex), TypeError, "complex"),
        (np.array([["a", "b", "c"]]), TypeError, "numbers"),
        (np.array([[None, 1, 2]], dtype=object), TypeError, "numbers"),
    ],
)
def test_bad_input_is_rejected_clearly(x, exc, words):
    with pytest.raises(exc, match=words.replace("(", r"\(").replace(")", r"\)")):
        fn.Linear(3, 2).forward(x)


def test_bad_gradient_and_order_are_rejected():
    layer = fn.Linear(3, 2)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 2)))
    layer.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"shape \(4, 3\), expected \(4, 2\)"):
        layer.backward(np.ones((4, 3)))


@pytest.mark.parametrize(
    "args,exc",
    [
        ((0, 2), ValueError),
        ((-1, 2), ValueError),
        ((2.5, 2), TypeError),
        ((True, 2), TypeError),
    ],
)
def test_bad_sizes_are_rejected(args, exc):
    with pytest.raises(exc, match="n_in"):
        fn.Linear(*args)


def test_bad_dtype_is_rejected():
    with pytest.raises(TypeError, match="float32 or float64"):
        fn.Linear(2, 2, dtype=np.int64)


def test_replaced_parameter_of_wrong_shape_is_caught_before_the_kernel():
    layer = fn.Linear(3, 2)
    layer.params["W"] = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"Linear params\['W'\] .* shape \(3, 2\)"):
        layer.forward(np.ones((1, 3)))


def test_buffers_are_reused_per_shape(rng):
    layer = fn.Linear(3, 2, random_state=0)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    a = layer.forward(x)
    assert layer.forward(x) is a
    assert layer.forward(x[:2]) is not a


def test_feeding_a_layer_its_own_output_is_safe(rng):
    layer = fn.Linear(3, 3, dtype=np.float64, random_state=0)
    x = rng.standard_normal((4, 3))
    once = layer.forward(x).copy()
    twice = layer.forward(layer.forward(x))
    np.testing.assert_allclose(twice, once @ layer.params["W"] + layer.params["b"])
