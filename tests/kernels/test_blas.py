"""kernels.blas.gemm against NumPy: every transpose, alpha/beta, thin shapes (one
row or one column of the result: BLAS ``?gemv``), and gemm_at against gemm."""

import numpy as np
import pytest
from numba import njit

from fastnet.kernels.abi import dtype_args
from fastnet.kernels.blas import GEMV_ROWS, gemm, gemm_at

from ..conftest import assert_close


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize(
    "mkn",
    [(5, 7, 3), (1, 4, 6), (6, 1, 2), (3, 5, 1), (64, 33, 17), (8, 9, 6), (9, 9, 6)],
)
def test_gemm_equals_numpy(dtype, rng, trans_a, trans_b, mkn):
    m, k, n = mkn
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    A = (a.T if trans_a else a).astype(np.float64)
    B = (b.T if trans_b else b).astype(np.float64)
    out = np.full((m, n), np.nan, dtype)  # beta = 0 never reads the old values
    assert gemm(a, b, out, 1.0, 0.0, trans_a, trans_b) == 0
    assert_close(out, A @ B, dtype, scale=k)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    out = c0.copy()
    gemm(a, b, out, -0.5, 2.0, trans_a, trans_b)
    assert_close(out, -0.5 * (A @ B) + 2.0 * c0, dtype, scale=k)


@njit
def _gemm_at(kind, a, b, out, m, n, k, alpha, beta, trans_a, trans_b):
    return gemm_at(kind, a, b, out, m, n, k, alpha, beta, trans_a, trans_b)


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize(
    "mkn", [(1, 9, 6), (6, 9, 1), (1, 5, 1), (7, 3, 5), (2, 9, 6), (12, 9, 6)]
)
def test_gemm_at_equals_gemm_bit_for_bit(dtype, rng, trans_a, trans_b, mkn):
    m, k, n = mkn
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    want = np.full((m, n), np.nan, dtype)
    gemm(a, b, want, 1.0, 0.0, trans_a, trans_b)
    kind, _, one = dtype_args(np.dtype(dtype))  # BLAS letter code; the numbers 1, 0
    got = np.full((m, n), np.nan, dtype)
    alpha, beta = one.ctypes.data, one.ctypes.data + one.itemsize
    args = (a.ctypes.data, b.ctypes.data, got.ctypes.data, m, n, k, alpha, beta)
    assert _gemm_at(kind, *args, trans_a, trans_b) == 0
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("n", [19, 1])
def test_a_few_rows_are_each_the_bits_of_that_row_alone(dtype, rng, trans_b, n):
    k = 37
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    a = rng.standard_normal((GEMV_ROWS, k)).astype(dtype)
    both = np.empty((GEMV_ROWS, n), dtype)
    gemm(a, b, both, 1.0, 0.0, False, trans_b)
    for i in range(GEMV_ROWS):
        alone = np.empty((1, n), dtype)
        gemm(a[i : i + 1], b, alone, 1.0, 0.0, False, trans_b)
        np.testing.assert_array_equal(both[i : i + 1], alone)
