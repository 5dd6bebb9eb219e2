"""kernels.util against NumPy."""

import numpy as np
import pytest

from fastnet.kernels import all_finite, axpy


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 65535, 65536, 199_999])
def test_all_finite_finds_one_bad_value_anywhere(dtype, bad, where):
    x = np.ones(200_000, dtype)
    assert all_finite(x)
    x[where] = bad
    assert not all_finite(x)
    assert all_finite(x) == np.isfinite(x).all()


def test_all_finite_at_the_edges_of_the_range(dtype):
    info = np.finfo(dtype)
    x = np.array([info.max, -info.max, info.tiny / 2, -0.0], dtype)  # subnormal too
    assert all_finite(x)
    assert all_finite(np.empty(0, dtype))


def test_axpy_equals_numpy(dtype, rng):
    y = rng.standard_normal(101).astype(dtype)
    x = rng.standard_normal(101).astype(dtype)
    want = y + dtype(0.5) * x
    axpy(y, dtype(0.5), x)
    np.testing.assert_allclose(y, want, rtol=1e-6)
