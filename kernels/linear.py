"""Affine layer ``Y = X @ W + b`` with ``W`` of shape ``(n_in, n_out)``.

The matrix products go straight to SciPy's ``?gemm`` (:func:`.blas.gemm`), with
transposed operands passed as transpose flags, not copies. Results are written into
caller-owned, C-contiguous buffers.
"""

import numpy as np

from ._config import jit_inline
from .blas import gemm, gemm_lda_at

#: a product in shares (:func:`share`) is cut at multiples of this: the inference
#: blocks' alignment (``fastnet._runtime.mlp.BLOCK_ALIGN``)
_ALIGN = 16


@jit_inline
def linear_forward(x, w, b, out):
    """:math:`Y = X W + b`: ``out (n, n_out) = x (n, n_in) @ w (n_in, n_out) + b``."""
    gemm(x, w, out, 1.0, 0.0, False, False)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] += b[j]


@jit_inline
def linear_forward_tangent(x, w, tx, tw, tb, out):
    r"""Tangent (JVP) of :func:`linear_forward` along ``(tx, tw, tb)``:

    .. math:: T_Y = T_X W + X T_W + t_b

    An empty ``tx`` is a zero input tangent (the data), and skips its product.
    """
    gemm(x, tw, out, 1.0, 0.0, False, False)
    if tx.size > 0:
        gemm(tx, w, out, 1.0, 1.0, False, False)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] += tb[j]


@jit_inline
def linear_backward(dy, x, w, dx, dw, db):
    r"""Vector-Jacobian product of :func:`linear_forward`.

    .. math:: dX = dY\,W^\top,\quad dW = X^\top dY,\quad db = \textstyle\sum_i dY_{i,:}

    Saved: the input ``x``. An empty ``dx`` skips ``dX`` (the first layer needs
    none); an empty ``db`` skips ``db`` (a fused bias+activation backward made it).
    """
    if dx.size > 0:
        gemm(dy, w, dx, 1.0, 0.0, False, True)
    gemm(x, dy, dw, 1.0, 0.0, True, False)
    if db.size > 0:
        column_sum(dy, db)


@jit_inline
def linear_backward_tangent(dy, x, w, ddy, tx, tw, dx, ddx, hw, hb):
    r""":func:`linear_backward`'s ``dX`` and the tangents of its three outputs
    (Pearlmutter's R-operator), given the tangents ``ddy`` of ``dy``, ``tx`` of ``x``
    and ``tw`` of ``w``:

    .. math:: dX = dY W^\top,\quad T_{dX} = T_{dY} W^\top + dY\,T_W^\top,\quad
              T_{dW} = X^\top T_{dY} + T_X^\top dY,\quad
              T_{db} = \textstyle\sum_i T_{dY, i,:}

    Arguments: the backward's ``(dy, x, w)``, their tangents ``(ddy, tx, tw)``, then
    the outputs. An empty ``dx`` / ``ddx`` skips that output (the first layer needs
    neither); an empty ``tx`` is a zero input tangent; an empty ``dy`` is a zero
    ``dy``, which leaves the Gauss-Newton terms only (``T_dX = T_dY W^T``,
    ``T_dW = X^T T_dY``).
    """
    if dx.size > 0 and dy.size > 0:
        gemm(dy, w, dx, 1.0, 0.0, False, True)
    if ddx.size > 0:
        gemm(ddy, w, ddx, 1.0, 0.0, False, True)
        if dy.size > 0:
            gemm(dy, tw, ddx, 1.0, 1.0, False, True)
    gemm(x, ddy, hw, 1.0, 0.0, True, False)
    if tx.size > 0 and dy.size > 0:
        gemm(tx, dy, hw, 1.0, 1.0, True, False)
    column_sum(ddy, hb)


@jit_inline
def column_sum(a, out):
    """``out[j] = sum_i a[i, j]``, accumulated in row order."""
    for j in range(out.shape[0]):  # a loop, not out[:] = 0 (see bias_backward)
        out[j] = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j] += a[i, j]


@jit_inline
def share(n, part, parts):
    """Part ``part`` of ``parts`` of ``range(n)`` (rows of a product), as ``(lo,
    hi)``: cut at multiples of 16, every share but the last a multiple of 16, so
    that each share with rows has at least 16 (more than ``blas.GEMV_ROWS``: a
    share goes to ``?gemm`` as the whole product does) unless ``n`` is under 16,
    which goes whole to part 0. Parts beyond the ``n // 16`` groups get ``(0, 0)``.
    The training epoch's threads take a step's products in these shares
    (``kernels.mlp.epoch``)."""
    groups = n // _ALIGN
    used = min(parts, max(groups, 1))
    if part >= used:
        return 0, 0
    lo = _ALIGN * (groups * part // used)
    hi = n if part == used - 1 else _ALIGN * (groups * (part + 1) // used)
    return lo, hi


@jit_inline
def linear_forward_share(x, w, b, out, part, shares):
    """:func:`linear_forward` on the rows of share ``part`` of ``shares``
    (:func:`share`): the training epoch's forward in shares, to the bit (BLAS does
    not give a block of rows the bits of the whole product)."""
    lo, hi = share(x.shape[0], part, shares)
    if hi > lo:
        linear_forward(x[lo:hi], w, b, out[lo:hi])


@jit_inline
def linear_backward_share(dy, x, w, dx, dw, part, shares):
    """Share ``part`` of ``shares`` of :func:`linear_backward`'s products, as the
    training epoch's: ``dX``'s rows of the share (none where ``dx`` is empty), and
    ``dW``'s rows of the share of its rows (``dW[g0:g1] = X[:, g0:g1]^T dY``, each
    element summing every row of ``dY``; one output column: whole, in share 0).
    The bias gradient is not a share's: the caller sums it (:func:`column_sum`)."""
    n_in, n_out = x.shape[1], dy.shape[1]
    lo, hi = share(x.shape[0], part, shares)
    if dx.size > 0 and hi > lo:
        gemm(dy[lo:hi], w, dx[lo:hi], 1.0, 0.0, False, True)
    g0, g1 = share(n_in, part, shares)
    if n_out == 1:
        g0, g1 = 0, n_in if part == 0 else 0
    if g1 > g0:
        item = x.itemsize
        scalars = np.zeros(2, x.dtype)
        scalars[0] = 1.0
        one = scalars.ctypes.data
        gemm_lda_at(ord("s") if item == 4 else ord("d"), x.ctypes.data + g0 * item,
                    n_in, dy.ctypes.data, dw.ctypes.data + g0 * n_out * item, g1 - g0,
                    n_out, x.shape[0], one, one + item, True, False)  # fmt: skip
