"""Affine layer ``Y = X @ W + b`` with ``W`` of shape ``(n_in, n_out)``.

The matrix products go straight to SciPy's ``?gemm`` (:func:`.blas.gemm`), with
transposed operands passed as transpose flags, not copies. Results are written into
caller-owned, C-contiguous buffers.
"""

from ._config import jit_inline
from .blas import gemm


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
