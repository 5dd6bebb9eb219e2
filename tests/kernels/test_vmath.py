"""The vectorised float32 tanh and logistic function against float64 references:
every float32 result within half an ulp (plus 1e-3 for the reference's own
rounding), the special values, float64 unchanged (libm to the bit), and loops that
LLVM really vectorises."""

import math

import numba
import numpy as np
import pytest
from numba import njit
from scipy.special import expit

from fastnet.kernels import vmath
from fastnet.kernels._config import FASTMATH

OPTIONS = {"fastmath": set(FASTMATH), "error_model": "numpy"}


def _loop(f):
    """A compiled loop ``out[i] = f(x[i])`` over 1-D arrays (``f``: compiled)."""

    @njit(**OPTIONS)
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = f(x[i])

    return loop


_tanh_loop = _loop(vmath.tanh)
_logistic_loop = _loop(vmath.logistic)
# the references: libm through Numba, as the kernels called it before vmath
_libm_tanh = _loop(njit(**OPTIONS)(lambda v: math.tanh(v)))
_libm_logistic = _loop(njit(**OPTIONS)(lambda v: 1.0 / (1.0 + math.exp(-v))))


FUNCTIONS = {
    "tanh": (_tanh_loop, np.tanh, _libm_tanh),
    "logistic": (_logistic_loop, expit, _libm_logistic),
}


def _apply(loop, x):
    out = np.empty_like(x)
    loop(x, out)
    return out


def _ulps(actual, exact):
    """|actual - exact| in float32 ulps of ``exact`` (normal results only)."""
    scale = 2.0 ** (np.floor(np.log2(np.abs(exact))) - 23)
    return np.abs(actual.astype(np.float64) - exact) / scale


def _grid():
    """Every 1e-4 of [-110, 110] rounded to float32, and 4,000 magnitudes per decade
    from 1e-38 to 100, both signs: 4.8 million inputs."""
    dense = np.linspace(-110, 110, 2_200_001).astype(np.float32)
    tiny = (10.0 ** np.linspace(-38, 2, 160_001)).astype(np.float32)
    return np.concatenate([dense, tiny, -tiny])


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_float32_is_within_half_an_ulp_of_the_exact_value(name):
    loop, exact, _ = FUNCTIONS[name]
    x = _grid()
    y = _apply(loop, x)
    assert y.dtype == np.float32
    ref = exact(x.astype(np.float64))
    normal = np.abs(ref) >= np.finfo(np.float32).tiny
    assert _ulps(y[normal], ref[normal]).max() <= 0.501
    # below float32's normal range the result is the exact value's nearest subnormal
    # or zero (the logistic function's far left tail)
    sub = ~normal
    np.testing.assert_allclose(y[sub], ref[sub], rtol=0, atol=2.0**-149)


def test_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 1e4, -1e4], "f4")
    t = _apply(_tanh_loop, x)
    np.testing.assert_array_equal(
        t[1:], np.array([1, -1, 0, 0, 1e-40, -1e-40, 1, -1], "f4")
    )
    assert np.isnan(t[0])
    assert np.signbit(t[4]) and np.signbit(t[6])  # tanh(-0) = -0: odd, to the sign
    s = _apply(_logistic_loop, x)
    np.testing.assert_array_equal(s[1:], [1, 0, 0.5, 0.5, 0.5, 0.5, 1, 0])
    assert np.isnan(s[0])


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_float64_is_libm_to_the_bit(name, rng):
    loop, _, libm = FUNCTIONS[name]
    x = np.concatenate([rng.standard_normal(100_000) * 5, [0.0, -0.0, 800, -800]])
    np.testing.assert_array_equal(_apply(loop, x), _apply(libm, x))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_float32_loops_vectorise(name):
    # the point of the module: no libm call per element, and vector arithmetic
    loop = FUNCTIONS[name][0]
    _apply(loop, np.ones(64, np.float32))
    # the float32 compilation (other tests may have compiled the float64 one)
    (signature,) = [s for s in loop.signatures if s[0].dtype == numba.float32]
    ir = loop.inspect_llvm(signature)
    assert "x double>" in ir  # vectors of float64, as <4 x double> or <8 x double>
    assert "@tanhf" not in ir and "@expf" not in ir and "@exp(" not in ir
