r"""``tanh`` and the logistic function that LLVM vectorises for float32 elements.

Numba turns ``math.tanh`` and ``math.exp`` into a libm call per element: no loop
around them vectorises (no vector math library here), and float32 ``tanh`` ran
an order of magnitude slower than memory allows. For a float32 element these
evaluate the function in float64 arithmetic from :func:`exp_f64`, a polynomial with
the exponent set through its bits, so every operation has a vector instruction;
float64 elements keep libm, to the bit (scikit-learn's parity in float64 rests on
it).

Accuracy in float32, measured against float64 libm over 4.8 million float32 inputs
(a grid of [-110, 110] and every decade from 1e-38): the logistic function within
0.50 ulp (libm's ``expf`` with float64 division before: 1.48 ulp), ``tanh`` within
0.50 ulp (libm's ``tanhf``: 2.08 ulp). NaN stays NaN; ±inf give the limits.

The GELUs' float32 kernels compute in float64 (their constants are float64), so the
argument of their ``exp`` and ``erfc`` is a float64 whatever the element's dtype.
:func:`exp_of` and :func:`erfc_of` take the element as a type tag: for a float32
``x`` they evaluate :math:`e^t` and :math:`\mathrm{erfc}(a)` in vectorisable float64
arithmetic (:func:`exp_f64`, :func:`erfc_f64`; 1.2e-11 relative against SciPy and
NumPy over [-12, 12] and [-700, 700]; erfc beyond 12 is 0, e^t beyond -700 and 700
is 0 and inf), exact for a float32 result; a float64 ``x`` keeps libm, to the bit.
GELU and its derivative, both GELUs, in float32 over the grid above: within 0.50004
ulp (the libm code: 0.50000); the special values are libm's.

Speed: ``python bench/elementwise.py``; the figures are in ``bench/REPORT.md``.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from ._config import FASTMATH

_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
# 1/k! for k = 9 .. 2: Taylor's series of e^r on |r| <= ln(2)/2, whose error there is
# below 2e-10 relative, far under float32's 6e-8 (the float64 evaluation adds 1e-16)
_C9, _C8, _C7, _C6, _C5, _C4, _C3, _C2 = (
    1.0 / math.factorial(k) for k in range(9, 1, -1)
)
#: beyond this |t|, e^t is 0 or inf as far as a float32 result can tell
_CLAMP = 104.0
#: below this |x|, x is tanh(x) rounded to float32 (x^3/3 < x * 2^-25)
_TANH_TINY = 2.0**-12
_INLINE = {"fastmath": set(FASTMATH), "error_model": "numpy"}


@intrinsic
def _float64_from_bits(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits`` (a reinterpretation)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _bits_of_float64(typingctx, x):
    """The int64 holding the IEEE bits of the float64 ``x`` (a reinterpretation)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


#: 2^52 + 1023: a float64 integer k plus this (exact for |k| < 1023) holds k + 1023
#: in its low 52 bits, the biased exponent of 2^k
_EXP_BIAS_MAGIC = 4503599627371519.0


def exp_f64(t):
    r""":math:`e^t` for a float64 ``t`` in [-104, 104], in vectorisable arithmetic:
    :math:`t = k \ln 2 + r` with :math:`|r| \le \ln 2 / 2`, :math:`e^r` by its Taylor
    polynomial to degree 9, times :math:`2^k` made from its exponent bits. Relative
    error below 3e-10: exact for a float32 result, not for a float64 one."""
    return math.exp(t)  # in Python; compiled code takes the overload below


@overload(exp_f64, inline="always", jit_options=_INLINE)
def _exp_f64(t):
    def impl(t):
        # k stays a float64 (np.floor, not math.floor's int64) and 2^k is made
        # from its bits by adding a magic number: a float64 <-> int64 conversion
        # has no vector instruction before AVX-512, and one per element kept the
        # loop scalar on AVX2 machines. The same k, r and 2^k: the same bits.
        k = np.floor(t * _LOG2E + 0.5)
        r = t - k * _LN2
        p = _C9 * r + _C8
        p = p * r + _C7
        p = p * r + _C6
        p = p * r + _C5
        p = p * r + _C4
        p = p * r + _C3
        p = p * r + _C2
        p = p * r + 1.0
        p = p * r + 1.0
        return p * _float64_from_bits(_bits_of_float64(k + _EXP_BIAS_MAGIC) << 52)

    return impl


def tanh(x):
    """``math.tanh(x)``; a float32 ``x`` through :func:`exp_f64` (module docstring)."""
    return math.tanh(x)


@overload(tanh, inline="always", jit_options=_INLINE)
def _tanh(x):
    if x != types.float32:
        return lambda x: math.tanh(x)

    def impl(x):
        a = abs(np.float64(x))
        # 1 - 2 / (e^{2a} + 1): cancels only where a is small, and in float64 that
        # costs under 1e-12 relative above _TANH_TINY, where x itself is the answer
        t = 2.0 * a if a < _CLAMP else _CLAMP
        y = np.float32(1.0 - 2.0 / (exp_f64(t) + 1.0))
        y = -y if x < 0 else y
        return y if a >= _TANH_TINY else x  # also keeps NaN (a select, not a branch)

    return impl


def logistic(x):
    """``1 / (1 + math.exp(-x))``; a float32 ``x`` through :func:`exp_f64`."""
    return 1.0 / (1.0 + math.exp(-x))


@overload(logistic, inline="always", jit_options=_INLINE)
def _logistic(x):
    if x != types.float32:
        return lambda x: 1.0 / (1.0 + math.exp(-x))

    def impl(x):
        t = -np.float64(x)
        t = t if t < _CLAMP else _CLAMP  # selects, which vectorise; NaN becomes 104
        t = t if t > -_CLAMP else -_CLAMP
        y = np.float32(1.0 / (1.0 + exp_f64(t)))
        return y if x == x else x

    return impl


def exp_of(x, t):
    """``math.exp(t)``; for a float32 ``x``, :func:`exp_f64` (module docstring)."""
    return math.exp(t)


@overload(exp_of, jit_options=_INLINE)
def _exp_of(x, t):
    if x != types.float32:
        return lambda x, t: math.exp(t)

    def impl(x, t):
        s = np.float64(t)
        # selects, not branches: e^t is 0 below -700 and inf above 700 (libm's
        # limits are -745 and 709.8; for a float32 result the same), since
        # exp_f64 builds 2^k from exponent bits, valid for |k| < 1022. NaN stays
        # NaN.
        e = exp_f64(min(max(s, -_EXP_LIMIT), _EXP_LIMIT))
        big = math.inf if s > 0.0 else 0.0
        e = e if abs(s) <= _EXP_LIMIT else big
        return e if s == s else s

    return impl


def erfc_of(x, a):
    """``math.erfc(a)``; for a float32 ``x``, :func:`erfc_f64` (module docstring)."""
    return math.erfc(a)


@overload(erfc_of, inline="always", jit_options=_INLINE)
def _erfc_of(x, a):
    if x != types.float32:
        return lambda x, a: math.erfc(a)
    return lambda x, a: erfc_f64(np.float64(a))


def erfc_f64(a):
    r""":math:`\mathrm{erfc}(a)` for a float64 ``a``, in vectorisable arithmetic, to
    3e-10 relative (:func:`exp_f64`'s bound; 1.2e-11 measured over [-12, 12]):
    exact for a float32 result, not for a float64 one.

    For :math:`z = |a| \le 12`,
    :math:`\mathrm{erfc}(z) = e^{-z^2}\,\mathrm{erfcx}(z)`, the scaled function
    :math:`\mathrm{erfcx}` by a Chebyshev series of degree 16 in :math:`t = 2/(2+z)`
    (fitted to ``scipy.special.erfcx`` at 2,000 Chebyshev nodes of
    :math:`t \in [1/7, 1]`; 4e-12 relative over :math:`[0, 12]`) and :math:`e^{-z^2}`
    by :func:`exp_f64` (:math:`z^2` of a float32 ``a`` is exact). Beyond 12,
    :math:`\mathrm{erfc}(z) < 1.4 \cdot 10^{-64}` is taken as 0. Negative ``a``:
    :math:`2 - \mathrm{erfc}(-a)`."""
    return math.erfc(a)


@overload(erfc_f64, inline="always", jit_options=_INLINE)
def _erfc_f64(a):
    def impl(a):
        z = abs(a)
        zc = z if z < _ERFC_ZMAX else _ERFC_ZMAX  # also NaN -> 12 (a select)
        # u = (2t - (1 + t_lo)) / (1 - t_lo) with t = 2 / (2 + z): one division
        u = _ERFC_U_SCALE / (2.0 + zc) - _ERFC_U_SHIFT
        u2 = 2.0 * u
        # Clenshaw's recurrence, written out (a loop over the tuple kept LLVM from
        # vectorising the caller's loop)
        c = _ERFCX_CHEB
        b2 = c[16]
        b1 = u2 * b2 + c[15]
        b2, b1 = b1, u2 * b1 - b2 + c[14]
        b2, b1 = b1, u2 * b1 - b2 + c[13]
        b2, b1 = b1, u2 * b1 - b2 + c[12]
        b2, b1 = b1, u2 * b1 - b2 + c[11]
        b2, b1 = b1, u2 * b1 - b2 + c[10]
        b2, b1 = b1, u2 * b1 - b2 + c[9]
        b2, b1 = b1, u2 * b1 - b2 + c[8]
        b2, b1 = b1, u2 * b1 - b2 + c[7]
        b2, b1 = b1, u2 * b1 - b2 + c[6]
        b2, b1 = b1, u2 * b1 - b2 + c[5]
        b2, b1 = b1, u2 * b1 - b2 + c[4]
        b2, b1 = b1, u2 * b1 - b2 + c[3]
        b2, b1 = b1, u2 * b1 - b2 + c[2]
        b2, b1 = b1, u2 * b1 - b2 + c[1]
        e = (u * b1 - b2 + c[0]) * exp_f64(-zc * zc)
        e = e if z < _ERFC_ZMAX else 0.0
        e = 2.0 - e if a < 0.0 else e
        return e if a == a else a

    return impl


_EXP_LIMIT = 700.0
_ERFC_ZMAX = 12.0
_ERFC_TLO = 2.0 / (2.0 + _ERFC_ZMAX)
_ERFC_U_SCALE = 4.0 / (1.0 - _ERFC_TLO)
_ERFC_U_SHIFT = (1.0 + _ERFC_TLO) / (1.0 - _ERFC_TLO)
#: erfcx(z) = sum_k c_k T_k(u), u = (2t - (1 + t_lo)) / (1 - t_lo), t = 2 / (2 + z)
_ERFCX_CHEB = (
    0.42260062335156107,
    0.46517327365016437,
    0.10092117835056968,
    0.011576683496801299,
    -9.41962291764449e-05,
    -0.00018091713296856474,
    -3.4428095360126615e-07,
    3.943206619867633e-06,
    -1.6301731742039976e-07,
    -9.538425241693078e-08,
    1.293824087660847e-08,
    1.6327996751668027e-09,
    -6.241475823598389e-10,
    2.7276603753043764e-11,
    1.8740187797300625e-11,
    -4.060361745793277e-12,
    -3.8669659014145146e-14,
)
#: :func:`erfc_f64`'s series, ``(zmax, u_scale, u_shift, chebyshev coefficients)``,
#: for the same evaluation elsewhere (``fastnet.onnx`` builds it from ONNX nodes)
ERFC_SERIES = (_ERFC_ZMAX, _ERFC_U_SCALE, _ERFC_U_SHIFT, _ERFCX_CHEB)
