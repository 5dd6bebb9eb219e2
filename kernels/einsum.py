"""Einsum building blocks: a strided single-operand reduction and a batched GEMM.

``fastnet.einsum`` plans an equation in Python once and runs it as a sequence of
these kernels: diagonals, transposes and sums of one operand are one strided loop
(a repeated label adds its strides, a broadcast axis has stride 0), and each
pairwise contraction is a batched matrix product through BLAS.
"""

import numpy as np
from numba import prange

from ._config import jit, jit_twins


def _strided_reduce(src, offset, out_shape, out_strides, red_shape, red_strides, out):
    r""":math:`out[o] = \sum_r src[offset + o \cdot s_{out} + r \cdot s_{red}]`.

    ``src`` is the flat data of a C-contiguous operand; ``out`` is flat and C-ordered
    over ``out_shape``. Strides count elements; a repeated label's stride is the sum
    of its axes' strides, which walks the diagonal.
    """
    n_out = out.shape[0]
    n_red = 1
    for d in red_shape:
        n_red *= d
    for o in prange(n_out):
        base = offset
        rem = o
        for ax in range(out_shape.shape[0] - 1, -1, -1):
            base += (rem % out_shape[ax]) * out_strides[ax]
            rem //= out_shape[ax]
        acc = 0.0
        for r in range(n_red):
            off = base
            rem = r
            for ax in range(red_shape.shape[0] - 1, -1, -1):
                off += (rem % red_shape[ax]) * red_strides[ax]
                rem //= red_shape[ax]
            acc += src[off]
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
    for i in range(out.shape[0]):
        if trans_a and trans_b:
            np.dot(a[i].T, b[i].T, out[i])
        elif trans_a:
            np.dot(a[i].T, b[i], out[i])
        elif trans_b:
            np.dot(a[i], b[i].T, out[i])
        else:
            np.dot(a[i], b[i], out[i])
