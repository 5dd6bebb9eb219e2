"""Activation and Softmax modules: any shape, dtype kept, gradients, errors."""

import numpy as np
import pytest

import fastnet as fn
from fastnet.kernels import ACTIVATIONS
from tests import naive
from tests.conftest import activation_modules, assert_close, numeric_vjp

#: kernel name -> module factory, from the module registry
MODULES = activation_modules()


def test_every_registered_activation_has_a_module():
    assert set(MODULES) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(MODULES))
@pytest.mark.parametrize("shape", [(0,), (5,), (3, 4), (2, 3, 4)])
def test_module_matches_reference(name, shape, dtype, rng):
    module = MODULES[name]()
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    f, df = naive.ACTIVATIONS[name]
    y = module.forward(x)
    assert y.shape == shape and y.dtype == dtype
    assert_close(y, f(x.astype(np.float64), 0.1), dtype)
    assert_close(module.backward(dy), dy * df(x.astype(np.float64), 0.1), dtype, 4)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_gradient_matches_central_differences(name, rng):
    module = MODULES[name]()
    x = rng.uniform(0.05, 2.0, (3, 4)) * rng.choice([-1, 1], (3, 4))
    dy = rng.standard_normal((3, 4))
    module.forward(x)
    got = module.backward(dy).copy()
    expected = numeric_vjp(lambda v: module.forward(v).copy(), x, dy)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-10)


def test_large_input_takes_the_parallel_kernel_and_agrees(rng):
    x = rng.standard_normal((600, 600))  # > PARALLEL_MIN_SIZE elements
    y = fn.GELU().forward(x)
    f, _ = naive.ACTIVATIONS["gelu"]
    np.testing.assert_allclose(y, f(x, 0.0), rtol=1e-13, atol=1e-300)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="'none' or 'tanh'"):
        fn.GELU(approximate="fast")


@pytest.mark.parametrize("alpha,exc", [("0.1", TypeError), (float("nan"), ValueError)])
def test_leaky_relu_rejects_bad_alpha(alpha, exc):
    with pytest.raises(exc, match="alpha"):
        fn.LeakyReLU(alpha=alpha)


def test_integer_input_becomes_float64():
    assert fn.ReLU().forward(np.array([-1, 2])).dtype == np.float64


def test_gelu_fed_its_own_output_keeps_the_right_saved_input(rng):
    g = fn.GELU()
    x = rng.standard_normal(10)
    y1 = g.forward(x).copy()
    g.forward(g.forward(x))
    _, df = naive.ACTIVATIONS["gelu"]
    np.testing.assert_allclose(g.backward(np.ones(10)), df(y1, 0.0), rtol=1e-13)


def test_backward_checks_shape_and_order():
    r = fn.ReLU()
    with pytest.raises(RuntimeError, match="before forward"):
        r.backward(np.ones(3))
    r.forward(np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(4,\), expected \(3,\)"):
        r.backward(np.ones(4))


@pytest.mark.parametrize("shape", [(0, 3), (4,), (2, 3, 5)])
def test_softmax_module_any_leading_shape(shape, rng):
    s = fn.Softmax()
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(shape)
    p = s.forward(x)
    flat = x.reshape(-1, shape[-1])
    np.testing.assert_allclose(p.reshape(flat.shape), naive.softmax(flat), rtol=1e-13)
    want = naive.softmax_vjp(dy.reshape(flat.shape), flat) if flat.size else flat
    np.testing.assert_allclose(s.backward(dy).reshape(flat.shape), want, atol=1e-15)


def test_softmax_rejects_scalars():
    with pytest.raises(ValueError, match="scalar"):
        fn.Softmax().forward(np.float64(1.0))
