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
def column_sum(a, out):
    """``out[j] = sum_i a[i, j]``, accumulated in row order."""
    out[:] = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j] += a[i, j]
