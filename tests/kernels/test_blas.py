"""kernels.blas.gemm against NumPy: every transpose, alpha/beta, thin shapes."""

import numpy as np
import pytest

from fastnet.kernels.blas import gemm

from ..conftest import assert_close


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize(
    "mkn", [(5, 7, 3), (1, 4, 6), (6, 1, 2), (3, 5, 1), (64, 33, 17)]
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
