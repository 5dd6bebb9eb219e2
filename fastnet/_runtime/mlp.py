"""Run an MLP's epoch in the compiled epoch (``kernels/mlp.py``) for the estimators
and the Trainer.

The compiled epoch calls the same kernels in the same order as the module path, so
it is a pure speed-up: Python runs once per epoch instead of once per step.
"""

import numpy as np

from ..optim import SGD, Adam
from . import native as _native

#: which fused kernel computes each loss module's loss
LOSS_KERNELS = {
    "SoftmaxCrossEntropy": "softmax_cross_entropy",
    "SigmoidBinaryCrossEntropy": "sigmoid_binary_cross_entropy",
    "MSELoss": "squared_error",
    "PoissonLoss": "poisson_exp",
}


def fused_epoch(
    linears,
    hidden,
    names,
    loss,
    optimizer,
    X,
    target,
    batch,
    l2=0.0,
    loss_scale=1.0,
    grad_scale=1.0,
    eps_placement=None,
    reuse=None,
):
    """A function ``epoch(order)`` returning the epoch's sum of batch loss × batch
    rows, for a network of ``linears`` with the activation module ``hidden`` between
    them; or None when the optimizer has no compiled form (AdamW, clipping, its own
    weight decay).

    ``order`` (int64 row indices) is checked at each call, a ``ValueError`` where an
    index is out of range; ``epoch.check(order)`` checks alone, and
    ``epoch(order, checked=True)`` skips the pass over the values, for an order
    that is a permutation of one ``epoch.check`` passed (2.9 us of a wine epoch).

    ``names``: the optimizer's parameter names, one ``(W name, b name)`` per layer.
    ``l2``: scikit-learn's L2, ``l2 / batch weight`` on the weights only.
    ``reuse``: the ``epoch.state`` of an earlier epoch of the same caller (the
    network's part: no data). Where it was made for the same arrays (parameters,
    gradients and optimizer state: the same objects, of the same shape, dtype and
    writeability) and the same settings, its workspace and table of addresses serve
    again, and only the data's part is made anew (a one-epoch ``Trainer.fit`` of
    64-32-10 spent 90 us of its 230 us of Python here). Callers pass only a state
    that no other call may be using.
    """
    if isinstance(optimizer, Adam):
        if optimizer.decoupled or optimizer.weight_decay or optimizer.clip_norm:
            return None
        kind = "adam"
    elif isinstance(optimizer, SGD):
        if optimizer.weight_decay or optimizer.clip_norm:
            return None
        kind = "sgd"
    else:
        return None
    if target.dtype.kind == "f" and type(loss).__name__ == "SoftmaxCrossEntropy":
        loss_name = "softmax_cross_entropy_dense"
    else:
        loss_name = LOSS_KERNELS[type(loss).__name__]
    activation = hidden.kernel_name if hidden is not None else "identity"
    alpha = hidden.alpha if hidden is not None else 0.0
    dt = X.dtype
    if X.ndim != 2 or not X.flags.c_contiguous:
        raise ValueError("the compiled epoch takes a C-contiguous 2-D X")

    def slots(name, p):
        return list(optimizer._slots(name, p).values())

    rows = []
    for lin, (w_name, b_name) in zip(linears, names, strict=True):
        W, b = lin.params["W"], lin.params["b"]
        sw, sb = slots(w_name, W), slots(b_name, b)
        # the order of _native.LAYER_COLUMNS: W, b, gW, gb, s1W, s2W, s1b, s2b
        rows.append(
            [W, b, lin.grads["W"], lin.grads["b"], *(sw + [None] * (2 - len(sw))),
             *(sb + [None] * (2 - len(sb)))]
        )  # fmt: skip
    settings = (dt, X.shape[1], int(batch), activation, alpha, loss_name, kind)
    state = reuse
    if state is None or not state.fits(settings, rows):
        state = _ModelState(settings, rows, linears)
    n_layers = state.table.shape[0]
    # targets cross as rows of bytes (the loss kernel reads them as labels or as
    # numbers): one epoch kernel serves every target kind and dtype
    target = np.ascontiguousarray(target)
    if target.shape[0] != X.shape[0] or (
        target.ndim == 2 and target.shape[1] != state.dims[-1]
    ):
        raise ValueError(
            f"targets of shape {target.shape} do not fit {X.shape[0]} rows and "
            f"{state.dims[-1]} outputs"
        )
    want = np.dtype(np.int64 if loss_name == "softmax_cross_entropy" else dt)
    if target.dtype != want:  # the loss kernel reads the bytes as this type
        raise ValueError(
            f"the loss {loss_name} needs {want} targets, got {target.dtype}"
        )
    t_row = target.dtype.itemsize * (target.shape[1] if target.ndim == 2 else 1)
    tb = np.empty((batch, t_row), np.uint8)
    n = X.shape[0]
    sizes = np.minimum(batch, n - np.arange(0, n, batch))  # rows per batch
    losses = np.empty(sizes.shape[0])
    sklearn_eps = (
        eps_placement or getattr(optimizer, "eps_placement", "torch")
    ) == "sklearn"
    hp = np.zeros(6)
    keep = [state, X, target, tb, losses, hp]
    # the kernel's arrays cross as addresses, looked up once
    address = _native.address
    X_at, T_at, tb_at, losses_at, hp_at = (
        address(a) for a in (X, target, tb, losses, hp)
    )
    (table_at, dims_at, zs_at, zo_at, ds_at, do_at, xb_at, one_at,
     fns_at) = state.addresses  # fmt: skip
    run, saves_x, kind_code, item = (
        state.run,
        state.saves_x,
        state.kind_code,
        state.item,
    )
    t_row, batch, alpha = int(t_row), int(batch), float(alpha)
    l2, grad_scale, loss_scale = float(l2), float(grad_scale), float(loss_scale)

    def array_fits(order):
        return (
            isinstance(order, np.ndarray)
            and order.shape == (n,)
            and order.dtype == np.int64
            and order.flags.c_contiguous
        )

    def check(order):
        # the kernel gathers rows by these indices without bounds checks
        if not array_fits(order) or (n and (order.min() < 0 or order.max() >= n)):
            raise ValueError(f"the epoch's row order must be int64 indices of {n} rows")

    def epoch(order, checked=False):
        # checked: order's values passed check before (it is a checked order or a
        # permutation of one), so only its array is looked at again
        if not (checked and array_fits(order)):
            check(order)
        o = optimizer
        if kind == "adam":
            hp[:] = (o.lr, o.beta1, o.beta2, o.eps, float(sklearn_eps), 1.0)
        else:
            hp[:] = (o.lr, o.momentum, float(o.nesterov), 0.0, 0.0, 0.0)
        # the C kernel releases the GIL while it runs (ctypes), as Numba's did
        optimizer.t = run(
            X_at, T_at, t_row, _native.address(order), n, batch, table_at, n_layers,
            dims_at, zs_at, zo_at, ds_at, do_at, xb_at, tb_at, hp_at,
            int(optimizer.t), alpha, l2, grad_scale, loss_scale, losses_at, fns_at,
            int(saves_x), kind_code, item, one_at,
        )  # fmt: skip
        total = 0.0  # summed as the module path sums, batch by batch
        for value, m in zip(losses, sizes, strict=True):
            total += float(value) * int(m)
        return total

    epoch.keep = keep  # the arrays the table points into live as long as epoch
    epoch.check = check
    epoch.state = state
    return epoch


class _ModelState:
    """The part of a compiled epoch that depends on the network and its optimizer
    only: the table of its arrays' addresses (and the arrays, kept alive), the
    layer widths, the workspace for a batch, the C kernels."""

    def __init__(self, settings, rows, linears):
        dt, n_features, batch, activation, _alpha, loss_name, kind = settings
        self.settings = settings
        self.rows = rows
        self.signature = _signature(rows)
        self.table, self.keep = layer_table(rows, dt)
        self.dims = dims = network_dims(linears, n_features)
        self.saves_x = activation in _native.SAVES_X
        self.kind_code, self.item, self.one = _native.dtype_args(dt)
        fns = _native.callbacks(activation, loss_name, kind, dt)
        self.run = _native.epoch_kernel()
        zo = _native.block_offsets(dims, batch, self.saves_x)
        do = _native.block_offsets(dims, batch, False)
        zs = np.empty(int(zo[-1]), dt)
        ds = np.empty(int(do[-1]), dt)
        xb = np.empty((batch, n_features), dt)
        self.arrays = (self.table, dims, zs, zo, ds, do, xb, self.one, fns)
        self.addresses = tuple(_native.address(a) for a in self.arrays)

    def fits(self, settings, rows):
        """Whether this state serves ``settings`` and the arrays ``rows`` (the same
        objects, unchanged in shape, dtype and writeability)."""
        if settings != self.settings or len(rows) != len(self.rows):
            return False
        for row, mine in zip(rows, self.rows, strict=True):
            if any(a is not b for a, b in zip(row, mine, strict=True)):
                return False
        return _signature(rows) == self.signature


def _signature(rows):
    return [
        None
        if a is None
        else (a.shape, a.dtype, a.flags.writeable, a.flags.c_contiguous)
        for row in rows
        for a in row
    ]


def network_dims(linears, n_features):
    """The widths of a chain of ``Linear`` layers, input first, as int64; a
    ``ValueError`` where a layer's input does not match the previous output (the
    whole-network kernels trust these widths)."""
    dims = [n_features]
    for i, lin in enumerate(linears):
        if lin.n_in != dims[-1] or lin.params["W"].shape != (lin.n_in, lin.n_out):
            raise ValueError(
                f"layer {i} takes {lin.n_in} inputs (weights "
                f"{lin.params['W'].shape}) but receives {dims[-1]}"
            )
        dims.append(lin.n_out)
    return np.array(dims, np.int64)


def layer_table(rows, dtype):
    """An int64 table of the arrays' data addresses (0 for None), one row per
    layer, for the whole-network kernels; and the arrays, which the caller keeps
    alive while the table is used. Every array is checked here, since the kernels
    trust these addresses: C-contiguous, of ``dtype``, and writeable unless it is
    only read (columns W and b of an inference table)."""
    dtype = np.dtype(dtype)
    keep = []
    table = np.zeros((len(rows), len(rows[0])), np.int64)
    for i, row in enumerate(rows):
        for j, arr in enumerate(row):
            if arr is None:
                continue
            if not (
                isinstance(arr, np.ndarray)
                and arr.dtype == dtype
                and arr.flags.c_contiguous
                and (arr.flags.writeable or len(row) == 2)
            ):
                raise ValueError(
                    f"layer {i}: a {type(arr).__name__} of "
                    f"{getattr(arr, 'dtype', '?')} is not a C-contiguous "
                    f"{'writeable ' if len(row) > 2 else ''}{dtype} array"
                )
            table[i, j] = _native.address(arr)
            keep.append(arr)
    return table, keep
