"""Softmax over the last axis of a 2-D array, and its full Jacobian-vector product."""

import math

from numba import prange

from ._config import jit, jit_twins
from .vmath import exp_of


@jit
def row_max(z, i):
    """The largest element of row ``i`` of ``z`` (the first, where several)."""
    m = z[i, 0]
    for j in range(1, z.shape[1]):
        if z[i, j] > m:
            m = z[i, j]
    return m


@jit
def row_exp(z, i, out):
    r"""``(m, s)``: the row max :math:`m = \max_k z_{ik}` and
    :math:`s = \sum_k e^{z_{ik} - m}`, each term also written to ``out[i, k]``
    (``out`` may be ``z``: each element is read before it is written). Every
    exponent is <= 0, so nothing overflows and the largest term is exactly 1."""
    m = row_max(z, i)
    s = 0.0
    for j in range(z.shape[1]):
        e = math.exp(z[i, j] - m)
        out[i, j] = e
        s += e
    return m, s


def _softmax_forward(x, out):
    r""":math:`p_{ij} = e^{x_{ij} - m_i} / \sum_k e^{x_{ik} - m_i}`,
    :math:`m_i = \max_k x_{ik}`; ``x`` and ``out`` C-contiguous (``out`` may be
    ``x``).

    Subtracting the row maximum keeps every exponent <= 0, so nothing overflows
    (logits of 1e4 are fine) and the largest term is exactly 1. The exponentials
    run in one pass over the whole array, not row by row: a row of 10 classes is
    too short for a vector loop, the whole array is not, and a float32 element's
    :func:`~.vmath.exp_of` is vectorised float64 arithmetic (a float64 element
    keeps libm's ``exp``). Each row's sum then runs in column order, as before.
    """
    n, k = x.shape
    for i in prange(n):
        m = row_max(x, i)
        for j in range(k):
            out[i, j] = x[i, j] - m
    flat = out.reshape(n * k)
    for t in prange(n * k):
        flat[t] = exp_of(flat[t], flat[t])
    for i in prange(n):
        s = 0.0
        for j in range(k):
            s += out[i, j]
        inv = 1.0 / s
        for j in range(k):
            out[i, j] *= inv


def _softmax_backward(dy, p, out):
    r""":math:`dx = p \odot (dy - \sum_k dy_k p_k)` per row: the product of ``dy``
    with the full Jacobian :math:`\mathrm{diag}(p) - p p^\top`, not just its
    diagonal :math:`p(1 - p)`. Saved: the output ``p``.
    """
    for i in prange(dy.shape[0]):
        d = 0.0
        for j in range(dy.shape[1]):
            d += dy[i, j] * p[i, j]
        for j in range(dy.shape[1]):
            out[i, j] = p[i, j] * (dy[i, j] - d)


def _softmax_backward_tangent(dy, p, ddy, tx, dx, ddx):
    r"""The backward :func:`_softmax_backward` and its tangent, in one pass per row.

    With :math:`t_p = p \odot (t_x - \sum_k t_{x,k} p_k)` the tangent of ``p`` (the
    forward's Jacobian applied to the input tangent ``tx``), :math:`s = \sum_k dy_k
    p_k` and its tangent :math:`t_s = \sum_k (ddy_k p_k + dy_k t_{p,k})`:

    .. math:: dx = p \odot (dy - s),\qquad
              ddx = t_p \odot (dy - s) + p \odot (ddy - t_s)

    Saved: the output ``p``; ``ddy`` is the tangent of ``dy``.
    """
    for i in prange(dy.shape[0]):
        a = 0.0
        s = 0.0
        for j in range(dy.shape[1]):
            a += tx[i, j] * p[i, j]
            s += dy[i, j] * p[i, j]
        ts = 0.0
        for j in range(dy.shape[1]):
            tp = p[i, j] * (tx[i, j] - a)
            ts += ddy[i, j] * p[i, j] + dy[i, j] * tp
        for j in range(dy.shape[1]):
            tp = p[i, j] * (tx[i, j] - a)
            dx[i, j] = p[i, j] * (dy[i, j] - s)
            ddx[i, j] = tp * (dy[i, j] - s) + p[i, j] * (ddy[i, j] - ts)


#: ``softmax_forward(x, out)`` (serial, parallel); rows of ``x`` must be non-empty.
softmax_forward = jit_twins(_softmax_forward)
#: ``softmax_backward(dy, p, out)`` (serial, parallel).
softmax_backward = jit_twins(_softmax_backward)
#: ``softmax_backward_tangent(dy, p, ddy, tx, dx, ddx)`` (serial, parallel). The
#: tangent of the forward is ``softmax_backward(tx, p, tp)``: the Jacobian
#: :math:`\mathrm{diag}(p) - p p^\top` is symmetric.
softmax_backward_tangent = jit_twins(_softmax_backward_tangent)
