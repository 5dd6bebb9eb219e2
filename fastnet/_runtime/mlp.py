"""Run an MLP's epoch and its forward pass in the whole-network kernels
(``kernels/mlp.py``) for the estimators and the Trainer.

The compiled epoch calls the same kernels in the same order as the module path, so
it is a pure speed-up: Python runs once per epoch instead of once per step. The
kernels' arguments are built by name from their spec (``fastnet.kernels.abi``).
"""

import ctypes
import functools
import itertools
import threading

import numpy as np

from ..kernels import abi
from ..kernels.abi import address
from . import c_kernels
from .pool import pool
from .threads import BlasLimit

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
    threads=None,
):
    """A function ``epoch(order)`` returning the epoch's sum of batch loss × batch
    rows, for a network of ``linears`` with the activation module ``hidden`` between
    them; or None when the optimizer has no compiled form (AdamW, clipping, its own
    weight decay).

    ``order`` (int64 row indices) is checked at each call, a ``ValueError`` where an
    index is out of range; ``epoch.check(order)`` checks alone, and
    ``epoch(order, checked=True)`` skips the pass over the values, for an order
    that is a permutation of one ``epoch.check`` passed (a pass over the values
    is a noticeable part of a small epoch).

    ``names``: the optimizer's parameter names, one ``(W name, b name)`` per layer.
    ``l2``: scikit-learn's L2, ``l2 / batch weight`` on the weights only.
    ``reuse``: the ``epoch.state`` of an earlier epoch of the same caller (the
    network's part: no data). Where it was made for the same arrays (parameters,
    gradients and optimizer state: the same objects, of the same shape, dtype and
    writeability) and the same settings, its workspace and table of addresses serve
    again, and only the data's part is made anew (making them was a large part of
    a short ``Trainer.fit``'s Python). Callers pass only a state that no other call
    may be using.

    ``threads``: at most this many of the process's pool (:mod:`.pool`; None: all
    its cores) train each step together, each taking its shares of the step's
    products (:func:`epoch_shares`: by the network, the batch and the process's
    cores; BLAS runs one thread in each). The shares do not depend on the thread
    count: the same bits for any ``threads`` (``kernels.mlp.epoch``).
    """
    kind = _optimizer_kind(optimizer)
    if kind is None:
        return None
    loss_name = _loss_name(loss, target)
    activation = hidden.kernel_name if hidden is not None else "identity"
    alpha = hidden.alpha if hidden is not None else 0.0
    dt = X.dtype
    if X.ndim != 2 or not X.flags.c_contiguous:
        raise ValueError("the compiled epoch takes a C-contiguous 2-D X")

    rows = _layer_rows(linears, names, optimizer)
    settings = (dt, X.shape[1], int(batch), activation, alpha, loss_name, kind)
    state = reuse
    if state is None or not state.fits(settings, rows):
        state = _ModelState(settings, rows, linears)
    n_layers = state.table.shape[0]
    target, t_row = _targets(target, X.shape[0], state.dims[-1], loss_name, dt)
    tb = np.empty((batch, t_row), np.uint8)
    n = X.shape[0]
    sizes = np.minimum(batch, n - np.arange(0, n, batch))  # rows per batch
    losses = np.empty(sizes.shape[0])
    sklearn_eps = (
        eps_placement or getattr(optimizer, "eps_placement", "torch")
    ) == "sklearn"
    hp = np.zeros(abi.HP_SIZE)
    workers = pool()
    shares = epoch_shares(state.dims, batch, workers.size)
    most = shares if threads is None else min(shares, threads)
    sync = np.zeros(len(abi.SYNC), np.int64)
    sq = np.zeros(1)
    dbs = np.empty(most * int(state.dims[1:].max()), dt)  # a row for each thread
    # the kernel's arrays cross as addresses, looked up once; the arguments by name
    # (the spec's), the order and the step count set at each call
    at = np.array(
        abi.EPOCH_AT.pack(
            X=address(X), T=address(target), tb=address(tb), dbs=address(dbs),
            sq=address(sq), **state.at_addresses
        ),
        np.int64,
    )  # fmt: skip
    keep = [state, X, target, tb, losses, hp, at, sync, sq, dbs]
    args = list(
        abi.EPOCH.pack(
            t_row=int(t_row),
            order=0,
            n=n,
            batch=int(batch),
            L=n_layers,
            t0=0,
            alpha=float(alpha),
            l2=float(l2),
            grad_scale=float(grad_scale),
            loss_scale=float(loss_scale),
            clip=loss.clip_eps(dt),
            losses=address(losses),
            hp=address(hp),
            at=address(at),
            kind=state.kind_code,
            item=state.item,
            part=0,
            parts=1,
            shares=shares,
            sync=address(sync),
            **state.addresses,
        )
    )
    at_order, at_t0, at_part, at_parts = _EPOCH_AT_CALL
    run = state.run
    rows_order = _RowOrder(n)

    def train(k):
        """The epoch on ``k`` threads (this one and ``k - 1`` of the pool's)."""
        if k == 1:
            args[at_part], args[at_parts] = 0, 1
            return run(*args)
        sync[:] = (0, 0, 0, _WAIT)
        args[at_parts] = k
        parts = []
        for part in range(k):
            args[at_part] = part
            parts.append(functools.partial(run, *args))
        try:
            steps = workers.run(parts)
        except BaseException:
            sync[abi.SYNC.index("stop")] = 1  # threads already started return
            raise
        if min(steps) < 0 or len(set(steps)) != 1:  # pragma: no cover - a bug
            raise RuntimeError(f"the epoch's threads ended apart: {steps}")
        return steps[0]

    def epoch(order, checked=False):
        # checked: order's values passed check before (it is a checked order or a
        # permutation of one), so only its array is looked at again
        if not (checked and rows_order.fits(order)):
            rows_order.check(order)
        _set_hyperparameters(hp, optimizer, kind, sklearn_eps)
        # the C kernel releases the GIL while it runs (ctypes), as Numba's did
        args[at_order] = address(order)
        args[at_t0] = int(optimizer.t)
        # BLAS on one thread in each of the epoch's threads: none spins beside them
        with workers.share(most) as k, BlasLimit(1, kernels_only=True):
            optimizer.t = train(k)
        total = 0.0  # summed as the module path sums, batch by batch
        for value, m in zip(losses, sizes, strict=True):
            total += float(value) * int(m)
        return total

    epoch.keep = keep  # the arrays the table points into live as long as epoch
    epoch.check = rows_order.check
    epoch.state = state
    return epoch


#: the fewest multiply-adds of a step's products (forward and backward, all layers)
#: per share: a step with fewer is cut in fewer shares. Each epoch on several
#: threads costs a handoff to the pool (about 0.1 ms), each barrier about a
#: microsecond, and small products run no faster in shares: at 2 million, digits
#: fits (64-100-10, batch 200: 4.4 million a step) went from 0.20x to 0.22-0.24x
#: scikit-learn's time (bench/fit_time.py); at 8 million they run whole
STEP_WORK = 8_000_000


def epoch_shares(dims, batch, cores):
    """In how many shares an epoch of ``batch``-row steps through a network of
    widths ``dims`` computes each step's products (``kernels.mlp.epoch``; the
    module path's ``Linear.shares``): :func:`step_shares` of its layers. The most
    threads the epoch uses."""
    return step_shares(int(np.dot(dims[:-1], dims[1:])), batch, cores)


def step_shares(products, batch, cores):
    """Shares of a training step of ``batch`` rows through layers whose weights
    have ``products`` numbers in all (the sum of ``n_in * n_out``): ``cores``, or
    fewer where the step's products (forward and backward: three times ``batch *
    products`` multiply-adds) come to under :data:`STEP_WORK` a share."""
    work = 3 * int(batch) * int(products)
    return int(max(1, min(cores, work // STEP_WORK)))


def _sched_yield():
    """The address of the C library's ``sched_yield`` (0 where there is none): what
    an epoch's thread calls while it waits long at a barrier."""
    try:
        return ctypes.cast(ctypes.CDLL(None).sched_yield, ctypes.c_void_p).value or 0
    except (OSError, AttributeError):  # pragma: no cover - not a POSIX C library
        return 0


_WAIT = _sched_yield()


#: where the epoch kernel's arguments that change from call to call (the order, the
#: step count, the thread's part and their number) are in its argument list
_EPOCH_AT_CALL = tuple(
    abi.EPOCH.names.index(k) for k in ("order", "t0", "part", "parts")
)


def _loss_name(loss, target):
    """The fused loss kernel for the loss module ``loss`` and its targets (class
    labels or probability rows, for the softmax cross-entropy)."""
    if target.dtype.kind == "f" and type(loss).__name__ == "SoftmaxCrossEntropy":
        return "softmax_cross_entropy_dense"
    return LOSS_KERNELS[type(loss).__name__]


def _set_hyperparameters(hp, optimizer, kind, sklearn_eps):
    """``hp``: the optimizer's hyperparameters as the update kernel reads them
    (read at each epoch: a schedule may have changed the rate)."""
    o = optimizer
    if kind == "adam":
        hp[:] = (o.lr, o.beta1, o.beta2, o.eps, float(sklearn_eps), 1.0)
    else:
        hp[:] = (o.lr, o.momentum, float(o.nesterov), 0.0, 0.0, 0.0)


class _RowOrder:
    """Checks of an epoch's row order over ``n`` rows: the kernel gathers rows by
    these indices without bounds checks."""

    def __init__(self, n):
        self.n = n

    def fits(self, order):
        """Whether ``order`` is a C-contiguous int64 array of ``n`` entries."""
        return (
            isinstance(order, np.ndarray)
            and order.shape == (self.n,)
            and order.dtype == np.int64
            and order.flags.c_contiguous
        )

    def check(self, order):
        """A ``ValueError`` unless ``order`` fits and its values are row indices."""
        n = self.n
        if not self.fits(order) or (n and (order.min() < 0 or order.max() >= n)):
            raise ValueError(f"the epoch's row order must be int64 indices of {n} rows")


def _optimizer_kind(optimizer):
    """``"adam"`` or ``"sgd"``: the compiled form of ``optimizer`` (its
    ``compiled_form()``: ``fastnet.optim`` sits above the runtime, which asks
    rather than imports); None where it has none."""
    form = getattr(optimizer, "compiled_form", None)
    return form() if form is not None else None


def _layer_rows(linears, names, optimizer):
    """Each layer's arrays in the order of :data:`~fastnet.kernels.abi.LAYER_COLUMNS`
    (W, b, gW, gb, s1W, s2W, s1b, s2b; None: no such optimizer slot)."""

    def slots(name, p):
        found = list(optimizer._slots(name, p).values())
        return found + [None] * (2 - len(found))

    rows = []
    for lin, (w_name, b_name) in zip(linears, names, strict=True):
        W, b = lin.params["W"], lin.params["b"]
        rows.append(
            [W, b, lin.grads["W"], lin.grads["b"], *slots(w_name, W), *slots(b_name, b)]
        )
    return rows


def _targets(target, n_rows, k_out, loss_name, dt):
    """``target`` as the loss kernel reads it (C-contiguous, checked against the
    rows, the outputs and the loss's dtype), and the bytes of one of its rows."""
    # targets cross as rows of bytes (the loss kernel reads them as labels or as
    # numbers): one epoch kernel serves every target kind and dtype
    target = np.ascontiguousarray(target)
    if target.shape[0] != n_rows or (target.ndim == 2 and target.shape[1] != k_out):
        raise ValueError(
            f"targets of shape {target.shape} do not fit {n_rows} rows and "
            f"{k_out} outputs"
        )
    want = np.dtype(np.int64 if loss_name == "softmax_cross_entropy" else dt)
    if target.dtype != want:  # the loss kernel reads the bytes as this type
        raise ValueError(
            f"the loss {loss_name} needs {want} targets, got {target.dtype}"
        )
    t_row = target.dtype.itemsize * (target.shape[1] if target.ndim == 2 else 1)
    return target, t_row


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
        self.kind_code, self.item, self.one = abi.dtype_args(dt)
        fns = c_kernels.callbacks(activation, loss_name, kind, dt)
        self.run = c_kernels.epoch_kernel()
        # every hidden layer's activation in a block of its own (the kernels'
        # backward reads the input or the output, as each needs)
        zo = abi.block_offsets(dims, batch, True)
        do = abi.block_offsets(dims, batch, False)
        zs = np.empty(int(zo[-1]), dt)
        ds = np.empty(int(do[-1]), dt)
        xb = np.empty((batch, n_features), dt)
        #: the network's arrays, by the epoch kernel's parameter names, and by the
        #: names of its ``at`` array's entries
        self.arrays = dict(table=self.table, dims=dims, zo=zo, do=do, fns=fns)
        self.at_arrays = dict(zs=zs, ds=ds, xb=xb, one=self.one)
        self.addresses = {k: address(a) for k, a in self.arrays.items()}
        self.at_addresses = {k: address(a) for k, a in self.at_arrays.items()}

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
            table[i, j] = address(arr)
            keep.append(arr)
    return table, keep


#: the bytes a block's activations may take at least (every layer's outputs for its
#: rows): what stays in a core's L2 cache beside the weights streaming through it
BLOCK_BYTES = 256 * 1024
#: the fewest and most rows of a block, and the multiple they are rounded to
BLOCK_MIN, BLOCK_MAX, BLOCK_ALIGN = 32, 1024, 16
#: a call of many rows is cut into about this many blocks per core of the pool (then
#: its threads' shares of whole blocks differ by at most a few percent)
BLOCKS_PER_CORE = 4


def block_rows(dims, item):
    """The fewest rows of a block for a network of widths ``dims`` (input first) and
    ``item`` bytes per number: as many as keep the block's activations (every
    layer's outputs) within :data:`BLOCK_BYTES`, a multiple of :data:`BLOCK_ALIGN`
    within :data:`BLOCK_MIN` to :data:`BLOCK_MAX`."""
    per_row = int(np.sum(dims[1:])) * item
    rows = BLOCK_BYTES // max(per_row, 1) // BLOCK_ALIGN * BLOCK_ALIGN
    return int(min(max(rows, BLOCK_MIN), BLOCK_MAX))


def call_block(n, least, cores):
    """Rows of a block for a call of ``n`` rows: the rows cut into equal blocks
    (rounded up to :data:`BLOCK_ALIGN`), as many as give each block about ``least``
    rows (:func:`block_rows`) or more, at most :data:`BLOCKS_PER_CORE` per core, and
    no block over :data:`BLOCK_MAX` rows. Larger blocks won by measurement (README,
    speed): each block's product packs the layer's weights again, and blocks of
    about 1,000 rows ran 10,000 rows through 784-256-128-10 at 1.04x the inference
    GEMM floor where the cache-sized 160 ran at 1.17x; equal blocks keep 200 rows
    from running as 160 on one thread and 40 on the other. The size depends on the
    rows and the process's cores, never on a call's thread count: the same bits for
    any ``n_threads``."""
    count = min(BLOCKS_PER_CORE * cores, -(-n // least))
    count = max(count, -(-n // BLOCK_MAX), 1)
    block = -(-n // count)
    return -(-block // BLOCK_ALIGN) * BLOCK_ALIGN


#: the forward kernel's arguments that change from call to call: its first ones
_PER_CALL = ("x", "n", "work", "out", "check", "block")
if abi.FORWARD.names[: len(_PER_CALL)] != _PER_CALL:
    raise ImportError(f"kernels.abi.FORWARD no longer starts with {_PER_CALL}")


class CompiledForward:
    """A network's whole forward pass in native code, with the module path's
    arithmetic: no Python per layer.

    Rows go through the whole network in blocks (:func:`call_block` rows; a block's
    product, then its bias and activation while the block is in cache, then the next
    layer; the output function on the last). A call takes its threads from the
    process's pool (:mod:`.pool`: its own thread, and idle cores' workers) and gives
    each a run of whole blocks; BLAS runs one thread in each (SciPy's BLAS, which
    the kernels call, is limited to one thread while calls run: no BLAS thread
    spins beside them). The blocks are the same whatever the thread count, so the
    results are the same bits for any thread count.

    Made for ``linears`` (``Linear`` modules), the activation module ``hidden``
    between them (None: identity) and the output ``out_kind`` (``"softmax"``,
    ``"logistic"``, ``"exp"``, else identity). Thread-safe: every call writes into
    arrays of its own (a workspace per thread), the weights are only read, and the
    kernel releases the GIL, so concurrent calls run at once (each taking its share
    of the cores).
    """

    def __init__(self, linears, hidden, out_kind):
        name = hidden.kernel_name if hidden is not None else "identity"
        dtype = linears[0].params["W"].dtype
        rows = [[lin.params["W"], lin.params["b"]] for lin in linears]
        table, keep = layer_table(rows, dtype)
        self.dims = dims = network_dims(linears, linears[0].n_in)
        self.n_in, self.n_out = int(dims[0]), int(dims[-1])  # Python ints: cheaper
        self.dtype = dtype
        self.exp = out_kind == "exp"
        self.hidden = int(dims[1:-1].sum())
        kind, item, one = abi.dtype_args(dtype)
        #: the fewest rows of a block (:func:`block_rows`)
        self.least = block_rows(dims, item)
        #: rows of every block when set (benchmarks, tests); None: :func:`call_block`
        self.block = None
        output = out_kind if out_kind in abi.OUT_KINDS else "identity"
        fns = c_kernels.forward_callbacks(name, output, dtype)
        self.keep = [*keep, one, table, dims, fns]  # what the addresses point into
        self.run = c_kernels.forward_kernel()
        fixed = abi.FORWARD.pack(
            **dict.fromkeys(_PER_CALL),
            table=table.ctypes.data,
            L=table.shape[0],
            dims=dims.ctypes.data,
            fns=fns.ctypes.data,
            alpha=float(hidden.alpha) if hidden is not None else 0.0,
            kind=kind,
            item=item,
            one=one.ctypes.data,
        )
        self.fixed = fixed[len(_PER_CALL) :]
        self._local = threading.local()  # each thread's workspace

    def _workspace(self, block):
        """The address of this thread's workspace for blocks of ``block`` rows (kept
        between calls, with its address: a one-row call allocates only its
        output)."""
        size = block * self.hidden
        local = self._local
        work = getattr(local, "work", None)
        if work is None or work[0].size < size:
            array = np.empty(max(size, 1), self.dtype)
            work = local.work = (array, address(array))
        return work[1]

    def _rows(self, X, out, lo, hi, check, block):
        """The kernel on rows ``lo:hi`` of ``X`` into the same rows of ``out``."""
        return self.run(
            address(X) + lo * X.strides[0], hi - lo, self._workspace(block),
            address(out) + lo * out.strides[0], check, block, *self.fixed,
        )  # fmt: skip

    def __call__(self, X, check=False, threads=None):
        """The network's output for the rows of ``X``: a new array the caller owns;
        with ``check``, None where ``X`` holds a NaN or an infinity (the kernel
        checks it first). ``threads``: at most this many threads (None: every core
        of the pool)."""
        if X.ndim != 2 or X.shape[1] != self.n_in or X.dtype != self.dtype:
            raise ValueError(
                f"X has {X.shape[1:]} features of {X.dtype}; the network takes "
                f"{self.n_in} of {self.dtype}"
            )
        n = X.shape[0]
        X = np.ascontiguousarray(X)  # the kernel reads rows of the given width
        out = np.empty((n, self.n_out), self.dtype)
        if n == 0:
            return out
        workers = pool()
        block = self.block or self.least
        if n > block and self.block is None:
            block = call_block(n, block, workers.size)
        blocks = -(-n // block)
        want = min(blocks, workers.size if threads is None else threads)
        # ctypes releases the GIL while the kernel runs: calls run at once
        with workers.share(want) as k, BlasLimit(1, kernels_only=True):
            if k == 1:
                done = self._rows(X, out, 0, n, check, block)
            else:
                edges = [min(n, blocks * i // k * block) for i in range(k + 1)]
                parts = [
                    functools.partial(self._rows, X, out, lo, hi, check, block)
                    for lo, hi in itertools.pairwise(edges)
                ]
                done = all(workers.run(parts))
        if not done:
            return None
        if self.exp:
            np.exp(out, out=out)  # as the module path's output does
        return out
