"""Fused optimizer updates: one in-place pass over a flattened parameter.

Arrays are 1-D views (``arr.reshape(-1)``) of C-contiguous parameters, gradients and
state. Scalars are passed in the parameter's dtype, so a float32 update runs in
float32 arithmetic end to end and vectorises at full width.
"""

import math

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._config import FASTMATH, jit, jit_twins


def _sgd_update(param, grad, velocity, lr, momentum, nesterov, l2):
    r"""SGD with optional (Nesterov) momentum and L2 weight decay (scikit-learn's form).

    .. math:: g = \nabla + \lambda\theta,\quad v \leftarrow \mu v - \eta g,\quad
              \theta \leftarrow \theta + v
              \;\; (\text{Nesterov: } \theta + \mu v - \eta g)

    The velocity holds the learning rate, as in scikit-learn; for a constant rate the
    iterates equal PyTorch's (``v_torch = -v / lr``). With ``momentum == 0``,
    ``velocity`` may be empty; the update is :math:`\theta \leftarrow \theta - \eta g`.
    """
    for i in prange(param.shape[0]):
        g = grad[i] + l2 * param[i]
        if momentum == 0:
            param[i] -= lr * g
        else:
            v = momentum * velocity[i] - lr * g
            velocity[i] = v
            if nesterov:
                param[i] += momentum * v - lr * g
            else:
                param[i] += v


def _adam_update(param, grad, m, v, step_size, beta1, beta2, eps, l2, decay):
    r"""Adam / AdamW with the bias correction folded into ``step_size`` and ``eps``.

    .. math:: g = \nabla + \lambda\theta,\quad
              m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
              v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
              \theta \leftarrow d\,\theta - \alpha_t\, m / (\sqrt v + \hat\epsilon)

    PyTorch's Adam at step ``t`` is
    :math:`\alpha_t = \eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)`,
    :math:`\hat\epsilon = \epsilon\sqrt{1-\beta_2^t}`; scikit-learn's uses the same
    :math:`\alpha_t` with :math:`\hat\epsilon = \epsilon`. ``l2`` is Adam's coupled
    weight decay; ``decay`` = :math:`1 - \eta\lambda` is AdamW's decoupled one
    (1 for Adam).
    """
    one = type(beta1)(1.0)
    c1 = one - beta1
    c2 = one - beta2
    for i in prange(param.shape[0]):
        g = grad[i] + l2 * param[i]
        mi = beta1 * m[i] + c1 * g
        vi = beta2 * v[i] + c2 * (g * g)
        m[i] = mi
        v[i] = vi
        param[i] = decay * param[i] - step_size * mi / (math.sqrt(vi) + eps)


#: ``sgd_update(param, grad, velocity, lr, momentum, nesterov, l2)`` (serial, parallel).
sgd_update = jit_twins(_sgd_update)
#: ``adam_update(param, grad, m, v, step_size, beta1, beta2, eps, l2, decay)``
#: (serial, parallel).
adam_update = jit_twins(_adam_update)


def _head_squares(x, end):
    r"""The eight running sums of :func:`sum_squares` over ``x[:end]`` (``end`` a
    multiple of 8), added pairwise: ``((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 +
    s7))``, element ``i`` in sum ``i mod 8``. Compiled code runs this loop for a
    strided ``x`` and :func:`_lane_sums`, the same arithmetic, for a contiguous one
    (the overload below)."""
    f64 = np.float64
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    for i in range(0, end, 8):
        v0, v1, v2, v3 = f64(x[i]), f64(x[i + 1]), f64(x[i + 2]), f64(x[i + 3])
        v4, v5, v6, v7 = f64(x[i + 4]), f64(x[i + 5]), f64(x[i + 6]), f64(x[i + 7])
        s0 += v0 * v0
        s1 += v1 * v1
        s2 += v2 * v2
        s3 += v3 * v3
        s4 += v4 * v4
        s5 += v5 * v5
        s6 += v6 * v6
        s7 += v7 * v7
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@overload(_head_squares, inline="always", jit_options={"fastmath": set(FASTMATH)})
def _head_squares_impl(x, end):
    if x.layout == "C":
        return lambda x, end: _lane_sums(x, end)
    return _head_squares


@intrinsic
def _lane_sums(typingctx, x, end):
    """:func:`_head_squares` of a C-contiguous ``x`` as one vector of eight float64
    sums: each chunk of 8 elements loaded as a vector, widened to float64, squared
    and added lane by lane (``fmul``/``fadd`` with the kernels' fastmath flags, so
    LLVM fuses them into FMAs as it does the scalar sums: the same bits)."""
    flags = tuple(sorted(FASTMATH))

    def codegen(context, builder, sig, args):
        arrty = sig.args[0]
        data = context.make_array(arrty)(context, builder, args[0]).data
        stop = context.cast(builder, args[1], sig.args[1], types.intp)
        element = context.get_value_type(arrty.dtype)
        double = ir.DoubleType()
        lanes = ir.VectorType(double, 8)
        acc = cgutils.alloca_once_value(builder, ir.Constant(lanes, [0.0] * 8))
        start = ir.Constant(stop.type, 0)
        step = ir.Constant(stop.type, 8)
        with cgutils.for_range_slice(builder, start, stop, step) as (i, _):
            at = builder.bitcast(
                builder.gep(data, [i]), ir.VectorType(element, 8).as_pointer()
            )
            v = builder.load(at, align=arrty.dtype.bitwidth // 8)
            if element != double:
                v = builder.fpext(v, lanes)
            square = builder.fmul(v, v, flags=flags)
            builder.store(builder.fadd(builder.load(acc), square, flags=flags), acc)
        total = builder.load(acc)
        sums = [builder.extract_element(total, ir.Constant(ir.IntType(32), r))
                for r in range(8)]  # fmt: skip
        while len(sums) > 1:
            sums = [builder.fadd(a, b, flags=flags)
                    for a, b in zip(sums[::2], sums[1::2], strict=True)]  # fmt: skip
        return sums[0]

    if not (isinstance(x, types.Array) and x.ndim == 1 and x.layout == "C"):
        return None
    if x.dtype not in (types.float32, types.float64):
        return None
    return types.float64(x, end), codegen


@jit
def sum_squares(x):
    r""":math:`\sum_i x_i^2` of a 1-D array, accumulated in float64 (the L2 term,
    norm clipping).

    Eight running sums, element ``i`` into sum ``i mod 8``, added pairwise at the
    end (then the tail): without reassociating fastmath flags one running sum is a
    chain of dependent additions, one per 4 cycles; eight independent ones can run
    at once. On a C-contiguous array the eight sums are one vector (an intrinsic,
    :func:`_lane_sums`): written as eight scalars LLVM kept them scalar, one
    float32-to-float64 conversion at a time. The same
    bits either way; the timings are in ``bench/REPORT.md``.
    """
    # squares in float64 too (numba's float() keeps float32: 1e-30**2 would be 0)
    n = x.shape[0]
    end = n - n % 8
    tail = 0.0
    for i in range(end, n):
        v = np.float64(x[i])
        tail += v * v
    return _head_squares(x, end) + tail


@jit
def scale_inplace(x, factor):
    """``x *= factor`` on a 1-D array."""
    for i in range(x.shape[0]):
        x[i] *= factor
