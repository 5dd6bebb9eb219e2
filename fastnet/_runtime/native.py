"""The native cache's names that the other layers use, in one place.

The work is split by job: ``objects`` (object files, loaded by llvmlite's MCJIT
without Numba), ``addresses`` (every C kernel this process has, and saving new
ones), ``background`` (a helper process compiling for a cold cache), ``c_kernels``
(each kernel from the cache, a helper or Numba; the ``ctypes`` functions), and the
kernels' calling convention in ``fastnet.kernels.abi``.
"""

from ..kernels._paths import cache_dir
from ..kernels.abi import (
    LAYER_COLUMNS,
    OUT_KINDS,
    address,
    block_offsets,
    dtype_args,
    dtype_name,
    epoch_names,
    forward_names,
)
from .addresses import lookup
from .background import BACKGROUND, compile_in_background, in_background, wait_for
from .c_kernels import (
    all_finite,
    callbacks,
    ensure,
    epoch_kernel,
    forward_callbacks,
    forward_kernel,
)

__all__ = [
    "BACKGROUND",
    "LAYER_COLUMNS",
    "OUT_KINDS",
    "address",
    "all_finite",
    "block_offsets",
    "cache_dir",
    "callbacks",
    "compile_in_background",
    "dtype_args",
    "dtype_name",
    "ensure",
    "epoch_kernel",
    "epoch_names",
    "forward_callbacks",
    "forward_kernel",
    "forward_names",
    "in_background",
    "lookup",
    "wait_for",
]
