"""The vectorised float32 tanh, logistic function and GELUs (with their
derivatives, through ``exp_of`` and ``erfc_of``) against float64 references: every
float32 result within half an ulp (plus 1e-3 for the reference's own rounding), the
special values, float64 unchanged (libm to the bit), and loops that LLVM really
vectorises."""

import math
import types

import numba
import numpy as np
import pytest
from numba import njit
from scipy.special import expit, ndtr

from fastnet.kernels import activations, vmath
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


# the GELUs' code before exp_of / erfc_of: the same functions with libm's calls
_libm_vmath = types.ModuleType("libm_vmath")
_libm_vmath.exp_of = njit(**OPTIONS)(lambda x, t: math.exp(t))
_libm_vmath.erfc_of = njit(**OPTIONS)(lambda x, a: math.erfc(a))


def _activation(f, exact):
    """(loop, exact, libm loop) for an activation's scalar function ``f(x, alpha)``."""
    g = f.py_func
    libm = njit(**OPTIONS)(
        types.FunctionType(g.__code__, {**g.__globals__, "vmath": _libm_vmath})
    )
    vectorised = njit(inline="always", **OPTIONS)(lambda v: f(v, 0.0))  # as kernels
    return _loop(vectorised), exact, _loop(njit(**OPTIONS)(lambda v: libm(v, 0.0)))


_C = math.sqrt(2 / math.pi)


def _gelu_grad_exact(x):
    return ndtr(x) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _gelu_tanh_exact(x):
    return x * expit(2 * _C * (x + 0.044715 * x**3))


def _gelu_tanh_grad_exact(x):
    s = expit(2 * _C * (x + 0.044715 * x**3))
    return s + 2 * x * s * (1 - s) * _C * (1 + 3 * 0.044715 * x**2)


FUNCTIONS = {
    "tanh": (_tanh_loop, np.tanh, _libm_tanh),
    "logistic": (_logistic_loop, expit, _libm_logistic),
    "gelu": _activation(activations._gelu, lambda x: x * ndtr(x)),
    "gelu'": _activation(activations._gelu_grad, _gelu_grad_exact),
    "gelu_tanh": _activation(activations._gelu_tanh, _gelu_tanh_exact),
    "gelu_tanh'": _activation(activations._gelu_tanh_grad, _gelu_tanh_grad_exact),
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


@pytest.mark.parametrize("name", ["gelu", "gelu'", "gelu_tanh", "gelu_tanh'"])
def test_gelu_special_values_are_libms(name):
    # NaN, infinities, zeros, subnormals and the far tails as the libm code gave them
    # (GELU(-inf) and GELU'(inf) are NaN there too: -inf * 0 and inf * 0)
    loop, _, libm = FUNCTIONS[name]
    x = np.array(
        [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 13, -13, 40, -40, 1e30],
        "f4",
    )
    x = np.concatenate([x, -x[-1:]])
    # to an ulp: a finite tail value may round the other way (3e-10 apart)
    np.testing.assert_allclose(_apply(loop, x), _apply(libm, x), rtol=2.0**-23, atol=0)


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
    assert not any(f"@{f}" in ir for f in ("tanhf", "expf", "exp(", "erfc"))


def test_erfc_series_is_the_documented_fit():
    # erfc_f64's coefficients: the degree-16 Chebyshev fit of scipy's erfcx at 2,000
    # Chebyshev nodes of t = 2 / (2 + z) on [1/7, 1], as its docstring says
    from numpy.polynomial import chebyshev
    from scipy.special import erfcx

    t_lo = 2 / 14
    u = np.cos(np.pi * (np.arange(2000) + 0.5) / 2000)
    t = (u * (1 - t_lo) + 1 + t_lo) / 2
    fit = chebyshev.chebfit(u, erfcx(2 / t - 2), 16)
    # the smallest coefficients (c16 is -3.9e-14) move by 3e-16 between NumPy and
    # SciPy releases (least squares, ill-conditioned there): compare coefficients
    # to 1e-14 and the series they sum to, whose value is what matters, to 1e-13
    np.testing.assert_allclose(vmath._ERFCX_CHEB, fit, rtol=1e-9, atol=1e-14)
    grid = np.linspace(-1, 1, 10_001)
    series = chebyshev.chebval(grid, vmath._ERFCX_CHEB)
    np.testing.assert_allclose(series, chebyshev.chebval(grid, fit), rtol=1e-13)
