"""fastnet's compiled kernels (installed as ``fastnet.kernels``).

Only ``@njit`` functions over NumPy arrays and scalars live here. They write into
caller-owned ``out`` arrays, allocate nothing in steady state and never validate:
a Numba kernel does not bounds-check, so callers (the modules in ``fastnet``) check
shapes, dtypes and contiguity first.

Kernels with a row- or element-parallel loop come as a ``(serial, parallel)`` pair;
:func:`pick` chooses one by problem size.
"""

from ._config import FASTMATH, PARALLEL_MIN_SIZE
from .activations import ACTIVATIONS, Activation
from .dropout import dropout_backward, dropout_forward
from .einsum import batched_matmul, strided_reduce
from .linear import (
    column_sum,
    linear_backward,
    linear_backward_tangent,
    linear_forward,
    linear_forward_tangent,
)
from .losses import (
    poisson_exp,
    poisson_exp_tangent,
    sigmoid_binary_cross_entropy,
    sigmoid_binary_cross_entropy_tangent,
    softmax_cross_entropy,
    softmax_cross_entropy_dense,
    softmax_cross_entropy_dense_tangent,
    softmax_cross_entropy_tangent,
    squared_error,
    squared_error_tangent,
)
from .mlp import OUT_KINDS
from .mlp import block_offsets as mlp_block_offsets
from .mlp import callbacks as mlp_callbacks
from .mlp import dtype_args as mlp_dtype_args
from .mlp import epoch as mlp_epoch
from .mlp import forward as mlp_forward
from .mlp import forward_callbacks as mlp_forward_callbacks
from .optimizers import adam_update, scale_inplace, sgd_update, sum_squares
from .softmax import softmax_backward, softmax_backward_tangent, softmax_forward
from .util import all_finite, axpy


def pick(twins, size):
    """The serial kernel of ``twins`` below :data:`PARALLEL_MIN_SIZE` elements, else
    the parallel one."""
    return twins[size >= PARALLEL_MIN_SIZE]


__all__ = [
    "ACTIVATIONS",
    "FASTMATH",
    "OUT_KINDS",
    "PARALLEL_MIN_SIZE",
    "Activation",
    "adam_update",
    "all_finite",
    "axpy",
    "batched_matmul",
    "column_sum",
    "dropout_backward",
    "dropout_forward",
    "linear_backward",
    "linear_backward_tangent",
    "linear_forward",
    "linear_forward_tangent",
    "mlp_block_offsets",
    "mlp_callbacks",
    "mlp_dtype_args",
    "mlp_epoch",
    "mlp_forward",
    "mlp_forward_callbacks",
    "pick",
    "poisson_exp",
    "poisson_exp_tangent",
    "scale_inplace",
    "sgd_update",
    "sigmoid_binary_cross_entropy",
    "sigmoid_binary_cross_entropy_tangent",
    "softmax_backward",
    "softmax_backward_tangent",
    "softmax_cross_entropy",
    "softmax_cross_entropy_dense",
    "softmax_cross_entropy_dense_tangent",
    "softmax_cross_entropy_tangent",
    "softmax_forward",
    "squared_error",
    "squared_error_tangent",
    "strided_reduce",
    "sum_squares",
]
