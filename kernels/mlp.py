"""Whole-network kernels for MLPs: a training epoch and a forward pass in one call.

A step of the module-by-module path (``Linear`` / activation / loss / optimizer,
each a kernel called from Python) spends much of its time in Python; for small
networks that is most of the time. These kernels run the same arithmetic in the same
order from inside one compiled loop over all batches, so their results are
bit-identical to the module path and the Python overhead is paid once per epoch.

Compiled once, whatever the network, the dtype and the target: every array crosses
as an address (:mod:`.ffi`), the layers' as a table (:data:`.abi.LAYER_COLUMNS`)
with their widths in ``dims``, so depth is data; the dtype is data too (its BLAS
letter and item size; BLAS takes the matrix products, rows move as bytes);
everything elementwise is a small C-callable kernel per setting and dtype: the bias
plus the activation in one pass over each product, the activation's backward plus
the bias gradient, the loss, the optimizer update. A new activation, loss,
optimizer or dtype compiles those few small kernels, never a network (``python
bench/startup.py``).

The epoch and the forward are C functions too (``_epoch_c``, ``_forward_c``), so
every kernel a fit or a prediction runs is plain machine code. Every C kernel's
parameters are declared once, in :mod:`.abi`; the signatures here are derived from
it. ``kernels/mlp_cfuncs.py`` holds the C functions and their makers:
``makers()`` (and ``epoch_makers``, ``forward_makers``) give each one's name and a
function that compiles it. ``fastnet._runtime`` looks them up in its native cache,
which loads them in later processes without Numba, and compiles and keeps them
where they are not there.

The epoch runs on several threads at once: each calls the same C function with its
part, and the threads meet at barriers in the kernel (atomics on a shared array,
:data:`.abi.SYNC`), several times a step; see :func:`epoch`.
"""

from . import abi
from ._config import jit, jit_inline
from .blas import gemm_at, gemm_lda_at
from .ffi import (
    atomic_add,
    atomic_load,
    atomic_store,
    call_f64,
    call_i64,
    call_void,
    copy_bytes,
    ptr,
    spin_pause,
    view,
)
from .linear import share

# the layer table's columns, the fns arrays' entries (:mod:`.abi`), as constants
_W, _B, _GW, _GB, _S1W, _S2W, _S1B, _S2B = range(len(abi.LAYER_COLUMNS))
_BIAS_ACT, _ACT_BACKWARD, _LOSS, _UPDATE, _SUM_SQ, _COLUMN_SUM = range(
    len(abi.EPOCH_FNS)
)
_F_BIAS_ACT, _F_BIAS, _F_OUTPUT, _F_ALL_FINITE = range(len(abi.FORWARD_FNS))
_AT_X, _AT_T, _AT_ZS, _AT_DS, _AT_XB, _AT_TB, _AT_ONE, _AT_DBS, _AT_SQ = range(
    len(abi.EPOCH_AT.params)
)


#: a waiting thread spins this many times (``pause``), then yields its core at each
#: look (``wait`` of :data:`.abi.SYNC`)
_SPINS = 4000
_ARRIVED, _GENERATION, _STOP, _WAIT = range(len(abi.SYNC))


@jit_inline
def _barrier(sync, parts):
    """Wait until all ``parts`` threads of the epoch have come here (sense by
    generation: the last to come resets the count and opens the next
    generation); False where a stop was asked (:data:`.abi.SYNC`)."""
    if parts == 1:
        return True
    base = sync.ctypes.data
    generation = atomic_load(base + 8 * _GENERATION)
    if atomic_add(base + 8 * _ARRIVED, 1) == parts - 1:
        atomic_store(base + 8 * _ARRIVED, 0)
        atomic_add(base + 8 * _GENERATION, 1)
    else:
        spins = 0
        while atomic_load(base + 8 * _GENERATION) == generation:
            if atomic_load(base + 8 * _STOP) != 0:
                return False
            spins += 1
            if spins < _SPINS or sync[_WAIT] == 0:
                spin_pause()
            else:
                call_void(sync[_WAIT], ())
    return atomic_load(base + 8 * _STOP) == 0


@jit_inline
def _forward_rows(table, dims, zs, zo, xb, fns, alpha, kind, item, one, r0, rows):
    """The epoch's forward on the batch's rows ``r0:r0 + rows``: each layer's
    product, then its bias and activation (the last layer's bias: the loss's)."""
    L = table.shape[0]
    zero = one + item
    h = xb
    for layer in range(L):
        d = dims[layer + 1]
        z = zs + zo[layer] * item
        gemm_at(kind, h + r0 * dims[layer] * item, table[layer, _W], z + r0 * d * item,
                rows, d, dims[layer], one, zero, False, False)  # fmt: skip
        if layer < L - 1:
            # the activation in a block of its own: the backward reads the input
            # or the output, as its kernel needs
            a = zs + zo[L + layer] * item
            args = (ptr(z + r0 * d * item), ptr(table[layer, _B]),
                    ptr(a + r0 * d * item), rows, d, alpha)  # fmt: skip
            call_void(fns[_BIAS_ACT], args)
            h = a


@jit
def epoch(
    t_row,
    order,
    batch,
    table,
    dims,
    at,
    zo,
    do,
    hp,
    t0,
    alpha,
    l2,
    grad_scale,
    loss_scale,
    clip,
    losses,
    fns,
    kind,
    item,
    part,
    parts,
    shares,
    sync,
):
    """Train one epoch over the rows ``order`` in batches of ``batch``, each step's
    products in ``shares`` shares: this thread's part ``part`` of ``parts`` (the
    same call in each thread, sharing ``sync``, :data:`.abi.SYNC`; ``parts`` 1:
    alone; at most ``shares``).

    ``at``: addresses (int64, :data:`.abi.EPOCH_AT`): ``X`` (rows of ``dims[0]``
    numbers), ``T`` (the targets as rows of ``t_row`` bytes, which the loss kernel
    reads as int64 labels or as numbers), the workspaces ``zs`` (every layer's
    pre-activation, then every hidden layer's activation, ``batch`` rows each, at
    the element offsets ``zo``: :func:`.abi.block_offsets` with ``hidden_too``),
    ``ds`` (every layer's gradient, offsets ``do``), ``xb`` and ``tb`` (a batch
    of gathered rows), ``one`` (the numbers 1 and 0 in the dtype, BLAS's
    scalars), ``dbs`` (a scratch row per thread) and ``sq`` (the sum of squares
    of the weights, from the last part to the first). ``kind``: the dtype's BLAS
    letter code; ``item``: its size in bytes.

    Per batch: gather rows; ``z_l = h_{l-1} W_l``, then ``z_l += b_l``,
    ``h_l = f(z_l)`` in one pass; the last layer's bias, the fused loss (times
    ``loss_scale``; its probabilities clipped by ``clip``, 0: exact, see
    ``kernels.losses``), its gradient times ``grad_scale`` and the last bias's gradient
    in one C kernel; backward through every layer, each activation's backward
    in the pass that sums its layer's bias gradient; one optimizer update per array
    with L2 ``l2 / batch rows`` on the weights only (``l2`` = 0: none). Writes each
    batch's loss to ``losses`` (loss plus the L2 term ``l2/2 ||W||² / rows``);
    returns the optimizer's step count after the epoch (-1: stopped).

    The shares of a step's products (:func:`_share`, thread ``part`` taking shares
    ``part, part + parts, ...``; BLAS on one thread in each): the batch's rows for
    the gather, the forward and the input gradients with the activations'
    backward; each weight gradient's rows (all the batch's rows summed for each
    element). BLAS does not give a share of a product the bits of the whole
    product's rows (measured: SciPy's OpenBLAS 0.3.30, float32, for most shapes),
    so the shares depend on the batch and ``shares`` only, never on ``parts``: the
    same bits for any thread count, and the module path computes the same shares
    (``fastnet.nn.Linear.shares``). Then the loss on the whole batch in part 0
    while the last part sums the squares; each hidden bias gradient by its columns
    (in row order, the fused pass's arithmetic; whole, in that pass, with one
    share); the updates by ranges of the parameters (elementwise). Threads meet
    at ``L + 3`` barriers a step: after the forward, after the loss, after each
    hidden layer's backward, after the gradients and after the updates.

    ``table`` (L, 8): the layers' array addresses (:data:`.abi.LAYER_COLUMNS`);
    ``dims`` (L + 1): the widths, input first. ``fns``: addresses of the C kernels
    (:data:`.abi.EPOCH_FNS`, ``mlp_cfuncs.epoch_makers``): the activation's
    backward gets both its input and its output and reads the one it needs.
    ``hp``: the optimizer's hyperparameters (6 values).
    """
    X, T, one = at[_AT_X], at[_AT_T], at[_AT_ONE]
    zs, ds, xb, tb = at[_AT_ZS], at[_AT_DS], at[_AT_XB], at[_AT_TB]
    n = order.shape[0]
    L = table.shape[0]
    k_out = dims[L]
    x_row = dims[0] * item
    zero = one + item
    widest = 0
    total = 0  # the parameters, all arrays end to end (the updates' shares)
    for layer in range(L):
        widest = max(widest, dims[layer + 1])
        total += (dims[layer] + 1) * dims[layer + 1]
    scratch = at[_AT_DBS] + part * widest * item
    sq_at = view(at[_AT_SQ], (1,), losses)
    u0, u1 = share(total, part, parts)
    if parts > shares:  # pragma: no cover - the caller's bug: threads with no share
        return -1
    n_slots = 0
    if table[0, _S1W] != 0:
        n_slots = 2 if table[0, _S2W] != 0 else 1
    t = t0
    k = 0
    loss = 0.0
    for lo in range(0, n, batch):
        m = batch if n - lo > batch else n - lo
        for piece in range(part, shares, parts):
            r0, r1 = share(m, piece, shares)
            for i in range(r0, r1):
                r = order[lo + i]
                copy_bytes(xb + i * x_row, X + r * x_row, x_row)
                copy_bytes(tb + i * t_row, T + r * t_row, t_row)
            if r1 > r0:
                _forward_rows(table, dims, zs, zo, xb, fns, alpha, kind, item, one,
                              r0, r1 - r0)  # fmt: skip
        if not _barrier(sync, parts):
            return -1
        grad = ds + do[L - 1] * item
        if part == 0:
            last = zs + zo[L - 1] * item
            b, db = table[L - 1, _B], table[L - 1, _GB]
            args = (ptr(last), ptr(b), ptr(tb), ptr(grad), ptr(db), m, k_out,
                    grad_scale, clip)  # fmt: skip
            loss = call_f64(fns[_LOSS], args) * loss_scale
        if l2 > 0.0 and part == parts - 1:
            sq = 0.0
            for layer in range(L):
                size = dims[layer] * dims[layer + 1]
                sq += call_f64(fns[_SUM_SQ], (ptr(table[layer, _W]), size))
            sq_at[0] = sq
        if not _barrier(sync, parts):
            return -1
        # backward
        for layer in range(L - 1, -1, -1):
            d_in = dims[layer]
            d = dims[layer + 1]
            dy = ds + do[layer] * item
            if layer < L - 1 and shares > 1:
                # this hidden layer's bias gradient: its columns, all rows
                c0, c1 = d * part // parts, d * (part + 1) // parts
                args = (ptr(dy), ptr(table[layer, _GB]), m, d, c0, c1)
                call_void(fns[_COLUMN_SUM], args)
            h_in, x_in, dx = xb, 0, 0
            if layer > 0:
                h_in = zs + zo[L + layer - 1] * item
                x_in = zs + zo[layer - 1] * item  # its input; h_in: its output
                dx = ds + do[layer - 1] * item
            for piece in range(part, shares, parts):
                # gW's rows (each element sums all m rows); one column: whole
                g0, g1 = share(d_in, piece, shares)
                if d == 1:
                    g0, g1 = 0, d_in if piece == 0 else 0
                if g1 > g0:
                    gemm_lda_at(kind, h_in + g0 * item, d_in, dy,
                                table[layer, _GW] + g0 * d * item, g1 - g0, d, m, one,
                                zero, True, False)  # fmt: skip
                r0, r1 = share(m, piece, shares)
                if layer == 0 or r1 <= r0:
                    continue
                rows = r1 - r0
                at_dx = dx + r0 * d_in * item
                gemm_at(kind, dy + r0 * d * item, table[layer, _W], at_dx, rows, d_in,
                        d, one, zero, False, True)  # fmt: skip
                # whole, the pass sums the bias gradient too; in shares, each
                # share's sum goes to the thread's scratch row and the columns'
                # sums are taken after the barrier
                db = table[layer - 1, _GB] if shares == 1 else scratch
                args = (ptr(at_dx), ptr(x_in + r0 * d_in * item),
                        ptr(h_in + r0 * d_in * item), ptr(at_dx), ptr(db), rows, d_in,
                        alpha)  # fmt: skip
                call_void(fns[_ACT_BACKWARD], args)
            if layer > 0 and not _barrier(sync, parts):
                return -1
        if not _barrier(sync, parts):
            return -1
        # L2 on the weights, then the updates, each part its range of parameters
        if part == 0 and l2 > 0.0:
            loss += 0.5 * l2 * sq_at[0] / m
        t += 1
        start = 0  # the array's first parameter, counting all arrays end to end
        for layer in range(L):
            row = table[layer]
            for col in range(2):  # the weights (_W), then the bias (_B)
                size = dims[layer + 1] * (dims[layer] if col == _W else 1)
                p0 = max(u0, start) - start
                p1 = min(u1, start + size) - start
                start += size
                if p1 <= p0:
                    continue
                span = p1 - p0
                n1 = span if n_slots > 0 else 0
                n2 = span if n_slots > 1 else 0
                slot = _S1W + 2 * col  # their gradient is at col + 2
                decay = l2 / m if col == _W else 0.0  # L2 on the weights only
                off = p0 * item
                p, g = row[col] + off, row[col + 2] + off
                s1 = row[slot] + off if n1 > 0 else 0
                s2 = row[slot + 1] + off if n2 > 0 else 0
                args = (ptr(p), ptr(g), ptr(s1), ptr(s2), n1, n2, span, t, hp, decay)
                call_void(fns[_UPDATE], args)
        if not _barrier(sync, parts):
            return -1
        if part == 0:
            losses[k] = loss
        k += 1
    return t


@jit
def forward(x, n, table, dims, work, out, fns, alpha, kind, item, one, check, block):
    """``z_l = h_{l-1} W_l + b_l``, ``h_l = f(z_l)`` (in place) for the layers of
    ``table`` (columns W and b of :data:`.abi.LAYER_COLUMNS`) on the ``n`` rows at the
    address ``x``, ``block`` rows at a time through the whole network (so that a
    block's activations stay in cache between a product and its bias and
    activation): the hidden layers' rows of a block in the workspace at ``work``
    (``min(n, block)`` rows of every hidden layer), the last layer's into ``out``,
    which then goes through the output kernel (0: none); the arrays at ``x``,
    ``work`` and ``out`` are C-contiguous, of the dtype.
    ``fns``: :data:`.abi.FORWARD_FNS` (``mlp_cfuncs.forward_makers``); ``kind``,
    ``item``, ``one``: the dtype, as for :func:`epoch`. With ``check``, each
    block's rows are first checked finite (the C kernel ``all_finite``, while they
    come into cache for the product): returns 0 at the first block with a NaN or an
    infinity (the blocks before it computed), else 1 (one call where a one-row
    prediction paid two)."""
    L = table.shape[0]
    zero = one + item
    for r0 in range(0, n, block):
        m = block if n - r0 > block else n - r0
        h = x + r0 * dims[0] * item
        if check and call_i64(fns[_F_ALL_FINITE], (ptr(h), m * dims[0])) == 0:
            return 0
        rows_out = out + r0 * dims[L] * item
        start = work
        for layer in range(L):
            d = dims[layer + 1]
            b = ptr(table[layer, _B])
            z = rows_out if layer == L - 1 else start
            gemm_at(kind, h, table[layer, _W], z, m, d, dims[layer], one, zero,
                    False, False)  # fmt: skip
            if layer < L - 1:
                call_void(fns[_F_BIAS_ACT], (ptr(z), b, ptr(z), m, d, alpha))
                start += m * d * item
                h = z
            else:
                call_void(fns[_F_BIAS], (ptr(z), b, ptr(z), m, d, 0.0))
        if fns[_F_OUTPUT] != 0:
            call_void(fns[_F_OUTPUT], (ptr(rows_out), m, dims[L]))
    return 1
