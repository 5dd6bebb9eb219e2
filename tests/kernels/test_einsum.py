"""The strided reduction behind einsum: sums over axes and diagonals against NumPy;
the serial and parallel twins agree."""

import numpy as np
import pytest

from fastnet import kernels
from tests.conftest import assert_close, assert_twins_equal


def i64(*values):
    return np.array(values, np.int64)


@pytest.mark.parametrize(
    "case",
    ["ijk->ik", "ii->i", "ij->"],
)
def test_matches_numpy_and_twins_agree(case, dtype, rng):
    # (operand shape, out_shape, out_strides, red_shape, red_strides), strides in
    # elements of the C-contiguous operand
    x, args = {
        "ijk->ik": ((30, 40, 7), (i64(30, 7), i64(280, 1), i64(40), i64(7))),
        "ii->i": ((50, 50), (i64(50), i64(51), i64(), i64())),
        "ij->": ((60, 70), (i64(), i64(), i64(60, 70), i64(70, 1))),
    }[case]
    x = rng.standard_normal(x).astype(dtype)
    want = np.einsum(case, x.astype(np.float64)).reshape(-1)
    outs = []
    for twin in kernels.strided_reduce:
        out = np.full(want.size, np.nan, dtype)
        twin(x.reshape(-1), 0, *args, out)
        outs.append(out)
    assert_close(outs[0], want, dtype, scale=10)
    assert_twins_equal(*outs)
