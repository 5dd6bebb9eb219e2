"""fastnet's compiled kernels (installed as ``fastnet.kernels``).

Only ``@njit`` functions over NumPy arrays and scalars live here. They write into
caller-owned ``out`` arrays, allocate nothing in steady state and never validate:
a Numba kernel does not bounds-check, so callers (the modules in ``fastnet``) check
shapes, dtypes and contiguity first.

Kernels with a row- or element-parallel loop come as a ``(serial, parallel)`` pair;
:func:`pick` chooses one by problem size.

Every name loads on first access (module-level ``__getattr__``), and with it Numba:
``from fastnet import kernels`` costs nothing, so a module may hold the package and
still import without Numba (an estimator whose kernels load from the native cache,
``fastnet._runtime``, never imports it).

Nothing here imports from ``fastnet`` outside ``fastnet.kernels``: the runtime and
the modules import the kernels, never the other way.
"""

from ._lazy import import_paused

#: public name -> (submodule, its name there)
_LAZY = {
    "FASTMATH": ("_config", "FASTMATH"),
    "PARALLEL_MIN_SIZE": ("_config", "PARALLEL_MIN_SIZE"),
    "pick": ("_config", "pick"),
    "ACTIVATIONS": ("activations", "ACTIVATIONS"),
    "Activation": ("activations", "Activation"),
    "dropout_backward": ("dropout", "dropout_backward"),
    "dropout_forward": ("dropout", "dropout_forward"),
    "batched_matmul": ("einsum", "batched_matmul"),
    "strided_reduce": ("einsum", "strided_reduce"),
    "column_sum": ("linear", "column_sum"),
    "linear_backward": ("linear", "linear_backward"),
    "linear_backward_share": ("linear", "linear_backward_share"),
    "linear_backward_tangent": ("linear", "linear_backward_tangent"),
    "linear_forward": ("linear", "linear_forward"),
    "linear_forward_share": ("linear", "linear_forward_share"),
    "linear_forward_tangent": ("linear", "linear_forward_tangent"),
    "OUT_KINDS": ("abi", "OUT_KINDS"),
    "mlp_block_offsets": ("abi", "block_offsets"),
    "mlp_dtype_args": ("abi", "dtype_args"),
    "mlp_epoch": ("mlp", "epoch"),
    "mlp_forward": ("mlp", "forward"),
    "adam_update": ("optimizers", "adam_update"),
    "scale_inplace": ("optimizers", "scale_inplace"),
    "sgd_update": ("optimizers", "sgd_update"),
    "sum_squares": ("optimizers", "sum_squares"),
    "softmax_backward": ("softmax", "softmax_backward"),
    "softmax_backward_tangent": ("softmax", "softmax_backward_tangent"),
    "softmax_forward": ("softmax", "softmax_forward"),
    "all_finite": ("util", "all_finite"),
    "axpy": ("util", "axpy"),
}
for _name in (
    "poisson_exp",
    "poisson_exp_tangent",
    "sigmoid_binary_cross_entropy",
    "sigmoid_binary_cross_entropy_tangent",
    "softmax_cross_entropy",
    "softmax_cross_entropy_dense",
    "softmax_cross_entropy_dense_tangent",
    "softmax_cross_entropy_tangent",
    "squared_error",
    "squared_error_tangent",
):
    _LAZY[_name] = ("losses", _name)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _LAZY[name]
    # with the collector paused, as fastnet's own lazy names
    value = getattr(import_paused(f"{__name__}.{module}"), attr)
    globals()[name] = value  # later look-ups skip this function
    return value


__all__ = sorted(_LAZY)
