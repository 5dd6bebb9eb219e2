"""Linear kernels against NumPy, finite differences and PyTorch."""

import numpy as np
import pytest

from fastnet import kernels
from fastnet.kernels import column_sum, linear_backward, linear_forward
from tests import naive
from tests.conftest import assert_close, numeric_vjp

SHAPES = [(0, 3, 2), (1, 1, 1), (5, 3, 4), (33, 17, 9)]


def run_forward(x, w, b):
    out = np.full((x.shape[0], w.shape[1]), np.nan, x.dtype)
    linear_forward(x, w, b, out)
    return out


def run_backward(dy, x, w):
    dx = np.full_like(x, np.nan)
    dw = np.full_like(w, np.nan)
    db = np.full(w.shape[1], np.nan, x.dtype)
    linear_backward(dy, x, w, dx, dw, db)
    return dx, dw, db


def operands(rng, n, n_in, n_out, dtype):
    x = rng.standard_normal((n, n_in)).astype(dtype)
    w = rng.standard_normal((n_in, n_out)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    dy = rng.standard_normal((n, n_out)).astype(dtype)
    return x, w, b, dy


@pytest.mark.parametrize("n,n_in,n_out", SHAPES)
def test_forward_and_backward_match_numpy(n, n_in, n_out, dtype, rng):
    x, w, b, dy = operands(rng, n, n_in, n_out, dtype)
    f64 = [a.astype(np.float64) for a in (x, w, b, dy)]
    scale = 10 * max(n_in, n, 1)
    assert_close(run_forward(x, w, b), naive.linear(*f64[:3]), dtype, scale)
    for got, want in zip(
        run_backward(dy, x, w), naive.linear_vjp(f64[3], *f64[:2]), strict=True
    ):
        assert got.dtype == dtype
        assert_close(got, want, dtype, scale)


def test_backward_matches_central_differences(rng):
    x, w, b, dy = operands(rng, 4, 3, 5, np.float64)
    dx, dw, db = run_backward(dy, x, w)
    np.testing.assert_allclose(dx, numeric_vjp(lambda v: run_forward(v, w, b), x, dy))
    np.testing.assert_allclose(dw, numeric_vjp(lambda v: run_forward(x, v, b), w, dy))
    np.testing.assert_allclose(db, numeric_vjp(lambda v: run_forward(x, w, v), b, dy))


def test_empty_outputs_skip_dx_and_db(rng):
    x, w, _, dy = operands(rng, 6, 4, 3, np.float64)
    dw = np.empty_like(w)
    linear_backward(dy, x, w, np.empty((0, 0)), dw, np.empty(0))
    np.testing.assert_allclose(dw, x.T @ dy)


def test_column_sum_runs_in_row_order(rng):
    a = rng.standard_normal((100, 7)).astype(np.float32)
    out = np.empty(7, np.float32)
    column_sum(a, out)
    expected = np.zeros(7, np.float32)
    for row in a:
        expected += row
    np.testing.assert_array_equal(out, expected)


def test_against_torch_autograd(torch, rng):
    x, w, b, dy = operands(rng, 8, 5, 3, np.float64)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = tx @ tw + tb
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(run_forward(x, w, b), ty.detach().numpy(), rtol=1e-13)
    for got, t in zip(run_backward(dy, x, w), (tx, tw, tb), strict=True):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_tangent_kernels_match_numpy(dtype, rng):
    n, n_in, n_out = 6, 5, 4
    x, tx = (rng.standard_normal((n, n_in)).astype(dtype) for _ in range(2))
    w, tw = (rng.standard_normal((n_in, n_out)).astype(dtype) for _ in range(2))
    tb = rng.standard_normal(n_out).astype(dtype)
    dy, ddy = (rng.standard_normal((n, n_out)).astype(dtype) for _ in range(2))
    X, TX, W, TW, TB, DY, DDY = (
        a.astype(np.float64) for a in (x, tx, w, tw, tb, dy, ddy)
    )
    ty = np.empty((n, n_out), dtype)
    kernels.linear_forward_tangent(x, w, tx, tw, tb, ty)
    assert_close(ty, TX @ W + X @ TW + TB, dtype, scale=8)
    empty = np.empty((0, n_in), dtype)
    kernels.linear_forward_tangent(x, w, empty, tw, tb, ty)  # zero input tangent
    assert_close(ty, X @ TW + TB, dtype, scale=8)
    dx, ddx = np.empty((n, n_in), dtype), np.empty((n, n_in), dtype)
    hw, hb = np.empty((n_in, n_out), dtype), np.empty(n_out, dtype)
    kernels.linear_backward_tangent(dy, x, w, ddy, tx, tw, dx, ddx, hw, hb)
    assert_close(dx, DY @ W.T, dtype, scale=8)
    assert_close(ddx, DDY @ W.T + DY @ TW.T, dtype, scale=8)
    assert_close(hw, X.T @ DDY + TX.T @ DY, dtype, scale=8)
    assert_close(hb, DDY.sum(0), dtype, scale=8)
    # an empty dy (Gauss-Newton): only the ddy terms
    no_dy = np.empty((0, n_out), dtype)
    kernels.linear_backward_tangent(no_dy, x, w, ddy, tx, tw, empty, ddx, hw, hb)
    assert_close(ddx, DDY @ W.T, dtype, scale=8)
    assert_close(hw, X.T @ DDY, dtype, scale=8)
