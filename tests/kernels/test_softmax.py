"""Softmax kernels: forward, the full Jacobian-vector product, stability."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastnet import kernels
from fastnet.kernels import softmax_backward, softmax_forward
from tests import naive
from tests.conftest import assert_close, assert_twins_equal, numeric_vjp


def fwd(x, variant=0):
    out = np.full_like(x, np.nan)
    softmax_forward[variant](x, out)
    return out


def bwd(dy, x, variant=0):
    out = np.full_like(x, np.nan)
    softmax_backward[variant](dy, fwd(x, variant), out)
    return out


@pytest.mark.parametrize("shape", [(0, 4), (1, 1), (3, 1), (6, 10)])
def test_matches_numpy_and_explicit_jacobian(shape, dtype, rng):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    assert_close(fwd(x), naive.softmax(x.astype(np.float64)), dtype, scale=4)
    want = naive.softmax_vjp(dy.astype(np.float64), x.astype(np.float64))
    assert_close(bwd(dy, x), want, dtype, scale=8)


def test_backward_is_not_the_diagonal_only(rng):
    # Seed 004's p(1 - p) is the Jacobian's diagonal: with off-diagonal terms the
    # gradient differs, and only the full product matches finite differences.
    x = rng.standard_normal((3, 5))
    dy = rng.standard_normal((3, 5))
    numeric = numeric_vjp(fwd, x, dy)
    np.testing.assert_allclose(bwd(dy, x), numeric, rtol=1e-7, atol=1e-10)
    p = naive.softmax(x)
    assert not np.allclose(dy * p * (1 - p), numeric, atol=1e-3)


def test_gradient_of_a_constant_shift_is_zero(rng):
    x = rng.standard_normal((4, 6))
    dx = bwd(np.ones_like(x), x)
    np.testing.assert_allclose(dx, 0.0, atol=1e-15)


def test_extreme_logits(dtype):
    x = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]], dtype)
    p = fwd(x)
    assert np.isfinite(p).all()
    np.testing.assert_array_equal(p[0], [1, 0, 0])
    np.testing.assert_array_equal(p[1], [0.5, 0.5, 0])
    np.testing.assert_allclose(p[2], 1 / 3, rtol=1e-6)


def test_serial_and_parallel_agree(dtype, rng):
    x = (rng.standard_normal((3000, 30)) * 3).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert_twins_equal(fwd(x, 0), fwd(x, 1))
    assert_twins_equal(bwd(dy, x, 0), bwd(dy, x, 1))


def test_against_torch_autograd(torch, rng):
    x = rng.standard_normal((5, 7)) * 4
    dy = rng.standard_normal((5, 7))
    tx = torch.tensor(x, requires_grad=True)
    tp = torch.softmax(tx, dim=-1)
    tp.backward(torch.tensor(dy))
    np.testing.assert_allclose(fwd(x), tp.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(bwd(dy, x), tx.grad.numpy(), rtol=1e-10, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        elements=st.floats(-1e4, 1e4, allow_nan=False),
    )
)
def test_hypothesis_rows_sum_to_one(x):
    p = fwd(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(p, naive.softmax(x), rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (6, 10)])
def test_backward_tangent_matches_explicit_jacobian(shape, dtype, rng):
    x, dy, ddy, tx = (rng.standard_normal(shape).astype(dtype) for _ in range(4))
    p = fwd(x)
    dx, ddx = np.empty_like(x), np.empty_like(x)
    kernels.softmax_backward_tangent[0](dy, p, ddy, tx, dx, ddx)
    ref_dx, ref_ddx = naive.softmax_jvp_tangent(
        *(a.astype(np.float64) for a in (dy, ddy, x, tx))
    )
    assert_close(dx, ref_dx, dtype, scale=4)
    assert_close(ddx, ref_ddx, dtype, scale=8)
    out = np.empty_like(x)
    kernels.softmax_backward_tangent[1](dy, p, ddy, tx, out, np.empty_like(x))
    assert_twins_equal(dx, out)
