"""Einsum building blocks: a strided single-operand reduction and a batched GEMM.

``fastnet.einsum`` plans an equation in Python once and runs it as a sequence of
these kernels: diagonals, transposes and sums of one operand are one strided loop
(a repeated label adds its strides, a broadcast axis has stride 0), and each
pairwise contraction is a batched matrix product through BLAS.
"""

import numpy as np
from numba import prange

from ._config import jit, jit_twins


@jit
def _offset(index, shape, strides):
    """Element offset of the C-order flat ``index`` over ``shape`` with ``strides``."""
    off = 0
    for ax in range(shape.shape[0] - 1, -1, -1):
        off += (index % shape[ax]) * strides[ax]
        index //= shape[ax]
    return off


def _strided_reduce(src, offset, out_shape, out_strides, red_shape, red_strides, out):
    r""":math:`out[o] = \sum_r src[offset + o \cdot s_{out} + r \cdot s_{red}]`.

    ``src`` is the flat data of a C-contiguous operand; ``out`` is flat and C-ordered
    over ``out_shape``. Strides count elements; a repeated label's stride is the sum
    of its axes' strides, which walks the diagonal.
    """
    n_red = 1
    for d in red_shape:
        n_red *= d
    for o in prange(out.shape[0]):
        # (the parallel loop index is unsigned; int64 keeps the index arithmetic
        # integral instead of promoting uint64 op int64 to float64)
        base = offset + _offset(np.int64(o), out_shape, out_strides)
        acc = 0.0
        for r in range(n_red):
            acc += src[base + _offset(r, red_shape, red_strides)]
        out[o] = acc


#: ``strided_reduce(src, offset, out_shape, out_strides, red_shape, red_strides, out)``
#: (serial, parallel over output elements).
strided_reduce = jit_twins(_strided_reduce)


@jit
def batched_matmul(a, b, out, trans_a, trans_b):
    r""":math:`out_i = op(a_i)\,op(b_i)` for every batch index ``i`` (BLAS ``gemm``).

    ``a``, ``b`` and ``out`` are C-contiguous 3-D arrays; ``op`` transposes when
    ``trans_a`` / ``trans_b`` is set (passed to BLAS as a flag, not copied).
    """
    m, n = out.shape[1], out.shape[2]
    k = a.shape[1] if trans_a else a.shape[2]
    if m * n * k <= 1024:
        # Tiny products (a dot or a scaled row per batch element, as in 'bj,bj->b'
        # or 'b,bi->bi'): a loop beats one BLAS call per batch element.
        for i in range(out.shape[0]):
            for r in range(m):
                for c in range(n):
                    acc = 0.0
                    for t in range(k):
                        x = a[i, t, r] if trans_a else a[i, r, t]
                        y = b[i, c, t] if trans_b else b[i, t, c]
                        acc += x * y
                    out[i, r, c] = acc
        return
    for i in range(out.shape[0]):
        if trans_a and trans_b:
            np.dot(a[i].T, b[i].T, out[i])
        elif trans_a:
            np.dot(a[i].T, b[i], out[i])
        elif trans_b:
            np.dot(a[i], b[i].T, out[i])
        else:
            np.dot(a[i], b[i], out[i])
