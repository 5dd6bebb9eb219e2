"""Dropout kernels against NumPy; the serial and parallel twins agree."""

import numpy as np
import pytest

from fastnet import kernels
from tests.conftest import assert_close, assert_twins_equal


@pytest.mark.parametrize("name", ["dropout_forward", "dropout_backward"])
@pytest.mark.parametrize("p", [0.0, 0.3])
def test_matches_numpy_and_twins_agree(name, p, dtype, rng):
    x = rng.standard_normal(5000).astype(dtype)
    u = rng.uniform(size=5000).astype(dtype)
    want = np.where(u >= p, x.astype(np.float64) / (1.0 - p), 0.0)
    outs = []
    for twin in getattr(kernels, name):
        out = np.full_like(x, np.nan)
        twin(x, u, p, out)
        outs.append(out)
    assert_close(outs[0], want, dtype)
    assert_twins_equal(*outs)
