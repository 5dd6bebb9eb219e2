r"""Elementwise activations: forward, backward, and the fused ``bias + activation``.

Every activation is three scalar functions, registered in :data:`ACTIVATIONS`:

* ``f(x, alpha)``: the activation (``alpha`` is used by LeakyReLU only);
* ``df(saved, alpha)``: its derivative, written in terms of the *saved* tensor,
  which is the input ``x`` or the output ``y`` as the registry's ``saves`` says;
* ``d2f(saved, alpha)``: its second derivative, from the same saved tensor (for
  Hessian-vector products; ReLU and LeakyReLU: 0, at the kink too).

From these, :func:`_make` builds five kernels from the loop templates below, each
compiled serially and with a ``parallel=True`` twin (``_config.jit_twins``):

* ``forward(x, alpha, out)`` and ``backward(dy, saved, alpha, out)`` on 1-D arrays
  (callers pass ``arr.reshape(-1)`` of C-contiguous arrays);
* ``bias_forward(z, b, alpha, out)`` on a 2-D GEMM output: ``z += b`` in place,
  then ``out = f(z)`` (``out`` may be ``z`` itself when ``saves == "y"``);
* ``bias_backward(dy, saved, alpha, dz, db)``: ``dz = dy * df(saved)`` and
  ``db = dz.sum(0)``;
* ``backward_tangent(dy, saved, ddy, tx, alpha, dx, ddx)``: the backward and its
  tangent (Pearlmutter's R-operator) in one pass, on 1-D arrays:
  ``dx = dy * df(saved)`` and ``ddx = ddy * df(saved) + dy * d2f(saved) * tx``, where
  ``ddy`` is the tangent of ``dy`` and ``tx`` the tangent of the input ``x``.

Speed (``python bench/elementwise.py``; the figures are in ``bench/REPORT.md``):

* ReLU, LeakyReLU, identity: memory-bound. Their constants are float32 in float32
  kernels: a float64 literal widens the loop to float64.
* tanh, logistic: in float32 a vectorised exponential evaluated in float64
  (:mod:`fastnet.kernels.vmath`), where libm's is a call per element; tanh's
  backward computes in float64 on purpose (:func:`_tanh_grad`). In float64, libm
  per element.
* GELU and GELU-tanh: in float64 libm's ``erfc`` and ``exp`` per element; in
  float32 :func:`fastnet.kernels.vmath.erfc_of` and ``exp_of``, vectorised float64
  arithmetic.

All backward kernels take ``(dy, saved, alpha, out...)`` in that order; the tangent
of a backward inserts the tangents ``(ddy, tx)`` after ``(dy, saved)``. The tangent
of the forward needs no kernel of its own: it is ``backward(tx, saved, alpha, ty)``,
:math:`t_y = f'(x)\,t_x` (the Jacobian of an elementwise map is diagonal).

A new activation is an entry in :data:`ACTIVATIONS` (its three functions and which
tensor its backward reads) plus a module class registered in
``fastnet/nn/activations.py``; the estimators' ``activation=`` choices come from
that registry (``fastnet.nn.activations.ESTIMATOR_ACTIVATIONS``), not from
:data:`ACTIVATIONS`.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import prange

from . import vmath
from ._config import jit_inline, jit_twins

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715
# 0 and 1 as float32 constants: a select between one of them and a float32 value
# stays float32, where a float64 literal widens the loop to float64 (half the
# vector width, and two conversions an element); beside float64 they widen exactly
_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


@jit_inline
def _identity(x, alpha):
    """:math:`f(x) = x`."""
    return x


@jit_inline
def _identity_grad(saved, alpha):
    """:math:`f'(x) = 1`; ``saved`` is unused."""
    return _ONE


@jit_inline
def _identity_grad2(saved, alpha):
    """:math:`f''(x) = 0`."""
    return _ZERO


@jit_inline
def _relu(x, alpha):
    r""":math:`f(x) = \max(x, 0)`; NaN stays NaN."""
    return _ZERO if x <= _ZERO else x


@jit_inline
def _relu_grad(y, alpha):
    """:math:`f'(x) = 1` if :math:`x > 0` else 0, so ``ReLU'(0) = 0``.

    Saved: the output ``y`` (``y > 0`` exactly when ``x > 0``).
    """
    return _ONE if y > _ZERO else _ZERO


@jit_inline
def _relu_grad2(y, alpha):
    r""":math:`f''(x) = 0` for :math:`x \neq 0`; at the kink, where the second
    derivative does not exist, 0 as well (so the Hessian of a ReLU network is that of
    its piecewise-linear pieces, as PyTorch's and JAX's autodiff give it)."""
    return _ZERO


@jit_inline
def _leaky_relu(x, alpha):
    r""":math:`f(x) = x` if :math:`x \ge 0` else :math:`\alpha x`."""
    return x if x >= 0.0 else alpha * x


@jit_inline
def _leaky_relu_grad(x, alpha):
    r""":math:`f'(x) = 1` if :math:`x \ge 0` else :math:`\alpha`: LeakyReLU'(0) = 1.

    Saved: the input ``x`` (the output cannot tell the sign when ``alpha <= 0``).
    """
    return 1.0 if x >= 0.0 else alpha


@jit_inline
def _leaky_relu_grad2(x, alpha):
    r""":math:`f''(x) = 0` for :math:`x \neq 0`, and 0 at the kink (see
    :func:`_relu_grad2`)."""
    return 0.0


@jit_inline
def _gelu(x, alpha):
    r""":math:`f(x) = x\,\Phi(x)`, :math:`\Phi(x) = \tfrac12\,\mathrm{erfc}(-x/\sqrt2)`.

    ``erfc`` rather than ``1 + erf``: for negative ``x`` the sum cancels and loses
    every digit of the small tail probability in float32.
    """
    return x * (0.5 * vmath.erfc_of(x, -x * _SQRT_HALF))


@jit_inline
def _gelu_grad(x, alpha):
    r""":math:`f'(x) = \Phi(x) + x\,\varphi(x)`, with
    :math:`\varphi(x) = e^{-x^2/2}/\sqrt{2\pi}`.

    Saved: the input ``x``.
    """
    return 0.5 * vmath.erfc_of(x, -x * _SQRT_HALF) + x * (
        _INV_SQRT_2PI * vmath.exp_of(x, -0.5 * x * x)
    )


@jit_inline
def _gelu_grad2(x, alpha):
    r""":math:`f''(x) = 2\varphi(x) + x\varphi'(x) = \varphi(x)\,(2 - x^2)`,
    since :math:`\varphi'(x) = -x\varphi(x)`. Saved: the input ``x``."""
    xx = x * x
    # min: where x * x overflows (float32 beyond 1.8e19) phi is 0, and 0 * inf
    # would be NaN; a select rather than a branch keeps the loop vectorised alike in
    # the serial and the parallel twin
    return _INV_SQRT_2PI * vmath.exp_of(x, -0.5 * xx) * (2.0 - min(xx, 1e4))


@jit_inline
def _gelu_tanh(x, alpha):
    r"""PyTorch's ``approximate='tanh'``: :math:`\tfrac12 x (1 + \tanh u)`,
    :math:`u = \sqrt{2/\pi}\,(x + 0.044715 x^3)`.

    Evaluated as :math:`x\,\sigma(2u)`, which is the same function without the
    cancellation of ``1 + tanh(u)`` for negative ``x``.
    """
    u = _SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)
    return x / (1.0 + vmath.exp_of(x, -2.0 * u))


@jit_inline
def _gelu_tanh_grad(x, alpha):
    r""":math:`f'(x) = s + 2 x s (1 - s) \sqrt{2/\pi}(1 + 3 \cdot 0.044715 x^2)`,
    :math:`s = \sigma(2u)`, the exact derivative of :func:`_gelu_tanh`.

    Saved: the input ``x``.
    """
    u = _SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)
    s = 1.0 / (1.0 + vmath.exp_of(x, -2.0 * u))
    # Beyond |x| = 50, s is exactly 0 or 1 and the second term exactly 0: the
    # clamped copy of x gives that 0 without 0 * inf (x**2 overflowing), and without
    # a branch, which kept the serial and parallel twins from vectorising alike
    # (Numba 0.59: 1 ulp apart in 16 % of elements). A NaN stays NaN through s.
    c = max(-50.0, min(x, 50.0))
    return s + 2.0 * c * s * (1.0 - s) * _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * c * c)


@jit_inline
def _gelu_tanh_grad2(x, alpha):
    r""":math:`f''(x) = 2 s' + x s''` for :math:`f = x s`, :math:`s = \sigma(2u)`:
    :math:`s' = 2 s (1 - s) u'`, :math:`s'' = 2\,(s' (1 - 2 s) u' + s (1 - s) u'')`,
    :math:`u' = \sqrt{2/\pi}(1 + 3 \cdot 0.044715 x^2)`,
    :math:`u'' = 6 \cdot 0.044715 \sqrt{2/\pi}\, x`. Saved: the input ``x``.
    """
    # Beyond |x| = 50, s is exactly 0 or 1 and f'' exactly 0: the clamp gives that
    # 0 without overflowing x**3 (0 * inf), and without a branch, which kept the
    # serial and parallel twins from vectorising alike.
    c = max(-50.0, min(x, 50.0))
    u = _SQRT_2_OVER_PI * (c + _GELU_C * c * c * c)
    s = 1.0 / (1.0 + vmath.exp_of(x, -2.0 * u))
    du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * c * c)
    ddu = 6.0 * _GELU_C * _SQRT_2_OVER_PI * c
    ds = 2.0 * s * (1.0 - s) * du
    dds = 2.0 * (ds * (1.0 - 2.0 * s) * du + s * (1.0 - s) * ddu)
    return 2.0 * ds + c * dds


@jit_inline
def _tanh(x, alpha):
    r""":math:`f(x) = \tanh x`: libm in float64; in float32 vectorised, within 0.5
    ulp (:mod:`fastnet.kernels.vmath`)."""
    return vmath.tanh(x)


@jit_inline
def _tanh_grad(y, alpha):
    """:math:`f'(x) = 1 - y^2`. Saved: the output ``y``.

    In float64 arithmetic for both dtypes (half the float32 vector width): near
    :math:`|y| = 1` a float32 ``1 - y * y`` cancels, and loses digits by an amount
    that depends on whether LLVM fuses it into an FMA (the serial and parallel twins
    then differ); the float64 form is scikit-learn's to the bit."""
    return 1.0 - y * y


@jit_inline
def _tanh_grad2(y, alpha):
    """:math:`f''(x) = -2 y (1 - y^2)`. Saved: the output ``y``."""
    return -2.0 * y * (1.0 - y * y)


@jit_inline
def _logistic(x, alpha):
    """:math:`f(x) = 1 / (1 + e^{-x})`; ``exp`` overflowing to inf gives exactly 0.
    libm in float64; in float32 vectorised, within 0.5 ulp
    (:mod:`fastnet.kernels.vmath`)."""
    return vmath.logistic(x)


@jit_inline
def _logistic_grad(y, alpha):
    """:math:`f'(x) = y (1 - y)`. Saved: the output ``y`` (float32 one: see
    :func:`_tanh_grad`)."""
    return y * (_ONE - y)


@jit_inline
def _logistic_grad2(y, alpha):
    """:math:`f''(x) = y (1 - y)(1 - 2 y)`. Saved: the output ``y``."""
    return y * (1.0 - y) * (1.0 - 2.0 * y)


class Activation(NamedTuple):
    """One activation's compiled kernels; each is a (serial, parallel) pair."""

    forward: tuple
    backward: tuple
    bias_forward: tuple
    bias_backward: tuple
    backward_tangent: tuple
    saves: str  # "x" or "y": which tensor backward needs


# Loop templates. ``_f``, ``_df`` and ``_d2f`` are bound to one activation's scalar
# functions by ``jit_twins`` in ``_make``; these placeholders are never called.
_f = _df = _d2f = None
_OWN_LOOP = True


# Each template that may run in place (``out`` the same array as an input, as the
# forward's ``bias_forward(z, b, alpha, z)`` and the backward's
# ``bias_backward(dy, saved, alpha, dy, db)`` do) has a loop of its own for that
# case, writing the one array: LLVM vectorises a loop only where it can rule out
# overlap between what it reads and writes, and with two names for one array its
# runtime check always finds overlap and runs the scalar loop (an in-place ReLU
# bias pass over 320 x 128 float32 took 31 us; in its own loop 5 us). The two loops
# do the same arithmetic on each element: the same bits. ``_OWN_LOOP`` (bound per
# activation, a constant Numba prunes the branch on) is False for tanh and the
# logistic function: their float32 scalar functions are vmath's inlined overloads,
# and inlining one twice into a function makes Numba's SSA check warn
# (NumbaIRAssumptionWarning) at every user's first compilation; their loops are
# bound by the exponential's arithmetic, not by memory, and keep one loop.
@jit_inline
def _same(a, b):
    """Whether arrays ``a`` and ``b`` start at the same address."""
    return a.ctypes.data == b.ctypes.data


def _forward(x, alpha, out):
    if _OWN_LOOP and _same(x, out):
        for i in prange(x.shape[0]):
            x[i] = _f(x[i], alpha)
    else:
        for i in prange(x.shape[0]):
            out[i] = _f(x[i], alpha)


def _backward(dy, saved, alpha, out):
    if _OWN_LOOP and _same(dy, out):
        for i in prange(dy.shape[0]):
            dy[i] = dy[i] * _df(saved[i], alpha)
    else:
        for i in prange(dy.shape[0]):
            out[i] = dy[i] * _df(saved[i], alpha)


def _backward_tangent(dy, saved, ddy, tx, alpha, dx, ddx):
    for i in prange(dy.shape[0]):
        d1 = _df(saved[i], alpha)
        dx[i] = dy[i] * d1
        ddx[i] = ddy[i] * d1 + dy[i] * _d2f(saved[i], alpha) * tx[i]


def _bias_forward(z, b, alpha, out):
    if _OWN_LOOP and _same(z, out):
        for i in prange(z.shape[0]):
            for j in range(z.shape[1]):
                z[i, j] = _f(z[i, j] + b[j], alpha)
    else:
        for i in prange(z.shape[0]):
            for j in range(z.shape[1]):
                v = z[i, j] + b[j]
                z[i, j] = v
                out[i, j] = _f(v, alpha)


def _bias_backward(dy, saved, alpha, dz, db):
    if _OWN_LOOP and _same(dy, dz):
        for i in prange(dy.shape[0]):
            for j in range(dy.shape[1]):
                dy[i, j] = dy[i, j] * _df(saved[i, j], alpha)
    else:
        for i in prange(dy.shape[0]):
            for j in range(dy.shape[1]):
                dz[i, j] = dy[i, j] * _df(saved[i, j], alpha)
    # The column sum runs serially, in row order (a reduction across rows), so the
    # serial and parallel twins give bit-identical db.
    for j in range(db.shape[0]):  # a loop: a slice assignment compiles Numba's
        db[j] = 0.0  # broadcasting (compile time in every C kernel wrapping this)
    for i in range(dz.shape[0]):
        for j in range(dz.shape[1]):
            db[j] += dz[i, j]


#: activations whose in-place calls share the general loop (see ``_OWN_LOOP``)
_ONE_LOOP = frozenset({"tanh", "logistic"})


def _make(name, f, df, d2f, saves):
    """The kernels of the activation ``name``, whose derivatives ``df`` and
    ``d2f`` take the tensor ``saves`` names: the input ``"x"`` or the output
    ``"y"``."""
    templates = (_forward, _backward, _bias_forward, _bias_backward, _backward_tangent)
    own_loop = name not in _ONE_LOOP
    kernels = [
        jit_twins(
            template, f"{name}{template.__name__}", _f=f, _df=df, _d2f=d2f,
            _OWN_LOOP=own_loop,
        )
        for template in templates
    ]  # fmt: skip
    return Activation(*kernels, saves)


#: name -> compiled kernels, the keys the activation modules name (``kernel_name``
#: in ``fastnet.nn.activations``) and the kernel tests parametrize over. The
#: estimators take their ``activation=`` choices from the module registry,
#: ``fastnet.nn.activations.ESTIMATOR_ACTIVATIONS``.
ACTIVATIONS = {
    "identity": _make("identity", _identity, _identity_grad, _identity_grad2, "y"),
    "relu": _make("relu", _relu, _relu_grad, _relu_grad2, "y"),
    "leaky_relu": _make(
        "leaky_relu", _leaky_relu, _leaky_relu_grad, _leaky_relu_grad2, "x"
    ),
    "gelu": _make("gelu", _gelu, _gelu_grad, _gelu_grad2, "x"),
    "gelu_tanh": _make("gelu_tanh", _gelu_tanh, _gelu_tanh_grad, _gelu_tanh_grad2, "x"),
    "tanh": _make("tanh", _tanh, _tanh_grad, _tanh_grad2, "y"),
    "logistic": _make("logistic", _logistic, _logistic_grad, _logistic_grad2, "y"),
}
