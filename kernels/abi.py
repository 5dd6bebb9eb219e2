"""The C calling convention of the whole-network kernels, declared once.

The epoch and the forward pass (``kernels/mlp.py``) and the small kernels they call
are C functions: Numba compiles them from a signature, ``fastnet._runtime`` calls
the epoch and the forward through ``ctypes`` (and loads all of them from the native
cache without Numba). A caller and a callee that disagree on one argument corrupt
memory, so every parameter list is declared here, once, as ``(name, kind)`` pairs:

* ``'i'``: an int64 (a number, or an array's address where the callee rebuilds the
  array from other arguments);
* ``'f'``: a float64;
* ``'l'``: a pointer to int64, ``'h'``: a pointer to float64;
* ``'p'``: a pointer to the dtype the kernel is compiled for.

Derived from it: the Numba signatures (``kernels/mlp.py``), the ``ctypes`` argument
types (:meth:`CKernel.argtypes`) and the calls' argument tuples, built by name
(:meth:`CKernel.pack`, which refuses a missing or an unknown name). A test compares
every C kernel's Python parameters with its spec.

Also here, without Numba (the runtime reads them in processes that never import
it): the kernels' names, the layer table's columns, the output kinds, the dtypes'
description and the workspace layout. A leaf module: NumPy and the standard library
only.
"""

import ctypes
import itertools
from typing import NamedTuple

import numpy as np

#: what each kind of parameter is in ``ctypes``: addresses cross as int64
_CTYPES = {"i": ctypes.c_int64, "f": ctypes.c_double, "l": ctypes.c_int64,
           "h": ctypes.c_int64, "p": ctypes.c_int64}  # fmt: skip


class CKernel(NamedTuple):
    """One C kernel's convention: its parameters in order, as ``(name, kind)``,
    and its return kind (``'i'``, ``'f'``, or None for void)."""

    params: tuple
    returns: str | None = None
    #: its name, where one compilation serves every setting (else per setting)
    name: str | None = None

    @property
    def names(self):
        return tuple(name for name, _ in self.params)

    @property
    def kinds(self):
        return tuple(kind for _, kind in self.params)

    def argtypes(self):
        """The ``ctypes`` argument types."""
        return [_CTYPES[kind] for kind in self.kinds]

    def restype(self):
        """The ``ctypes`` return type (None: void)."""
        return None if self.returns is None else _CTYPES[self.returns]

    def pack(self, **named):
        """The call's arguments in the order of :attr:`params`, from keywords; a
        ``TypeError`` for a missing or an unknown name."""
        names = self.names
        if len(named) != len(names) or not all(n in named for n in names):
            missing = [n for n in names if n not in named]
            extra = [n for n in named if n not in names]
            raise TypeError(f"C kernel arguments: missing {missing}, unknown {extra}")
        return tuple(named[n] for n in names)


def _params(text):
    """``"X:i T:i ..."`` as ``(("X", "i"), ("T", "i"), ...)``."""
    return tuple(tuple(item.split(":")) for item in text.split())


#: the training epoch (``_epoch_c``): returns the optimizer's step count; ``at``
#: is an int64 array of the addresses :data:`EPOCH_AT`
EPOCH = CKernel(
    _params(
        "t_row:i order:l n:i batch:i table:l L:i dims:l at:l zo:l do:l hp:h t0:i "
        "alpha:f l2:f grad_scale:f loss_scale:f clip:f losses:h fns:l kind:i "
        "item:i part:i parts:i shares:i sync:l"
    ),
    "i",
    "c_epoch",
)
#: the entries of the epoch's ``at`` array, each an address: the data ``X`` and the
#: targets ``T``, the workspaces ``zs``, ``ds``, ``xb``, ``tb``, ``one`` (the
#: numbers 1 and 0 in the dtype), ``dbs`` (a row of the widest layer's width per
#: thread, of the dtype) and ``sq`` (one float64)
EPOCH_AT = CKernel(_params("X:i T:i zs:i ds:i xb:i tb:i one:i dbs:i sq:i"))
#: the int64 entries of the array ``sync`` that the threads of one epoch share: the
#: threads at the barrier, the barrier's generation, a request to stop (not 0: every
#: thread returns -1 at its next barrier), and the address of a C function
#: ``void wait(void)`` a thread calls while it waits long (``sched_yield``; 0: none)
SYNC = ("arrived", "generation", "stop", "wait")
#: the forward pass (``_forward_c``): the arguments that change per call first;
#: returns 0 where ``check`` found a non-finite input, else 1
FORWARD = CKernel(
    _params(
        "x:i n:i work:i out:i check:i block:i table:l L:i dims:l fns:l alpha:f "
        "kind:i item:i one:i"
    ),
    "i",
    "c_forward",
)
#: the small kernels the epoch and the forward call through :data:`EPOCH_FNS` and
#: :data:`FORWARD_FNS`, and ``all_finite``
BIAS_ACT = CKernel(_params("z:p b:p out:p m:i d:i alpha:f"))
ACT_BACKWARD = CKernel(_params("dy:p x:p y:p dz:p db:p m:i d:i alpha:f"))
LOSS_LABELS = CKernel(_params("z:p b:p t:l grad:p db:p m:i k:i factor:f eps:f"), "f")
LOSS_DENSE = CKernel(_params("z:p b:p t:p grad:p db:p m:i k:i factor:f eps:f"), "f")
#: ``db[lo:hi]``: the sums of those columns of the (m, d) ``x``, in row order
COLUMN_SUM = CKernel(_params("x:p db:p m:i d:i lo:i hi:i"))
UPDATE = CKernel(_params("p:p g:p s1:p s2:p n1:i n2:i n:i t:i hp:h l2:f"))
SUM_SQ = CKernel(_params("p:p n:i"), "f")
OUTPUT = CKernel(_params("z:p m:i k:i"))
ALL_FINITE = CKernel(_params("x:p n:i"), "i")

#: columns of the epoch's layer table: addresses of each layer's weights, bias,
#: their gradients, and the optimizer's first and second slot for each (0: none);
#: a forward's table has the first two
LAYER_COLUMNS = ("W", "b", "gW", "gb", "s1W", "s2W", "s1b", "s2b")
#: the epoch's C kernels, in the order of its ``fns`` array
EPOCH_FNS = ("bias_act", "act_backward", "loss", "update", "sum_sq", "column_sum")
#: the forward's C kernels, in the order of its ``fns`` array
FORWARD_FNS = ("bias_act", "bias", "output", "all_finite")
#: output of the forward kernel: 0 identity, 1 softmax, 2 logistic
OUT_KINDS = {"identity": 0, "softmax": 1, "logistic": 2}
#: the optimizer's hyperparameters in ``hp``
HP_SIZE = 6

_DTYPE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


def dtype_name(dtype):
    """``'float32'`` or ``'float64'``; a ``TypeError`` for any other dtype."""
    dtype = np.dtype(dtype)
    name = _DTYPE_NAMES.get(dtype)  # (a dict: quicker than dtype.name)
    if name is None:
        raise TypeError(f"the network kernels take float32 or float64, not {dtype}")
    return name


def dtype_args(dtype):
    """The kernels' description of ``dtype``: ``(kind, item, one)``: its BLAS
    letter's code, its size in bytes, and an array holding 1 and 0 in it, whose
    address (``one.ctypes.data``) the kernels take; the caller keeps it alive."""
    dtype = np.dtype(dtype_name(dtype))
    kind = ord("s") if dtype == np.float32 else ord("d")
    return kind, dtype.itemsize, np.array([1.0, 0.0], dtype)


def block_offsets(dims, rows, hidden_too):
    """Where each layer's ``rows x width`` block starts in a flat workspace, in
    elements (int64): one block per layer, then one per hidden layer when
    ``hidden_too``; the last entry is the workspace's size."""
    widths = [int(w) for w in dims[1:]]
    widths += widths[:-1] if hidden_too else []
    # Python's integers, not NumPy's cumsum: a Trainer.fit call builds two of these
    return np.array([0, *itertools.accumulate(w * rows for w in widths)], np.int64)


def epoch_names(activation, loss, optimizer, dtype):
    """The C kernels of an epoch (the order of :data:`EPOCH_FNS`)."""
    d = dtype_name(dtype)
    return [
        f"c_{activation}_bias_act_{d}",
        f"c_{activation}_act_backward_{d}",
        f"c_{loss}_{d}",
        f"c_{optimizer}_{d}",
        f"c_sum_squares_{d}",
        f"c_column_sum_{d}",
    ]


def forward_names(activation, out_kind, dtype):
    """The C kernels of a forward pass (:data:`FORWARD_FNS`; None: none)."""
    d = dtype_name(dtype)
    out = None if out_kind == "identity" else f"c_{out_kind}_output_{d}"
    return [
        f"c_{activation}_bias_act_{d}",
        f"c_identity_bias_act_{d}",
        out,
        all_finite_name(dtype),
    ]


def all_finite_name(dtype):
    """The name of ``all_finite``'s C kernel for ``dtype``."""
    return f"c_all_finite_{dtype_name(dtype)}"


_c_char = ctypes.c_char
_addressof = ctypes.addressof


def address(a):
    """The data address of the C-contiguous array ``a``, as an ``'i'`` argument:
    through the buffer protocol where ``a`` is writeable and not empty (quicker
    than ``a.ctypes.data``, which a one-row prediction paid three times)."""
    try:
        return _addressof(_c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):  # read-only, or empty
        return a.ctypes.data
