"""Affine layer ``Y = X @ W + b`` with ``W`` of shape ``(n_in, n_out)``.

The matrix products go to BLAS through ``np.dot`` inside ``@njit`` (Numba calls
SciPy's ``?gemm`` and passes transposed operands as transpose flags, not copies).
Results are written into caller-owned, C-contiguous buffers.
"""

import numpy as np

from ._config import jit


@jit
def linear_forward(x, w, b, out):
    """:math:`Y = X W + b`: ``out (n, n_out) = x (n, n_in) @ w (n_in, n_out) + b``."""
    np.dot(x, w, out)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] += b[j]


@jit
def linear_backward(dy, x, w, dx, dw, db):
    r"""Vector-Jacobian product of :func:`linear_forward`.

    .. math:: dX = dY\,W^\top,\quad dW = X^\top dY,\quad db = \textstyle\sum_i dY_{i,:}

    Saved: the input ``x``. An empty ``dx`` skips ``dX`` (the first layer needs
    none); an empty ``db`` skips ``db`` (a fused bias+activation backward made it).
    """
    if dx.size > 0:
        np.dot(dy, w.T, dx)
    np.dot(x.T, dy, dw)
    if db.size > 0:
        column_sum(dy, db)


@jit
def column_sum(a, out):
    """``out[j] = sum_i a[i, j]``, accumulated in row order."""
    out[:] = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j] += a[i, j]
