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
"""

from . import abi
from ._config import jit
from .blas import gemm_at
from .ffi import call_f64, call_i64, call_void, copy_bytes, ptr

# the layer table's columns, the fns arrays' entries (:mod:`.abi`), as constants
_W, _B, _GW, _GB, _S1W, _S2W, _S1B, _S2B = range(len(abi.LAYER_COLUMNS))
_BIAS_ACT, _ACT_BACKWARD, _LOSS, _UPDATE, _SUM_SQ = range(len(abi.EPOCH_FNS))
_F_BIAS_ACT, _F_BIAS, _F_OUTPUT, _F_ALL_FINITE = range(len(abi.FORWARD_FNS))
_AT_X, _AT_T, _AT_ZS, _AT_DS, _AT_XB, _AT_TB, _AT_ONE = range(len(abi.EPOCH_AT.params))


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
):
    """Train one epoch over the rows ``order`` in batches of ``batch``.

    ``at``: addresses (int64, :data:`.abi.EPOCH_AT`): ``X`` (rows of ``dims[0]``
    numbers), ``T`` (the targets as rows of ``t_row`` bytes, which the loss kernel
    reads as int64 labels or as numbers), the workspaces ``zs`` (every layer's
    pre-activation, then every hidden layer's activation, ``batch`` rows each, at
    the element offsets ``zo``: :func:`.abi.block_offsets` with ``hidden_too``),
    ``ds`` (every layer's gradient, offsets ``do``), ``xb`` and ``tb`` (a batch
    of gathered rows), and ``one`` (the numbers 1 and 0 in the dtype, BLAS's
    scalars). ``kind``: the dtype's BLAS letter code; ``item``: its
    size in bytes.

    Per batch: gather rows; ``z_l = h_{l-1} W_l``, then ``z_l += b_l``,
    ``h_l = f(z_l)`` in one pass; the last layer's bias, the fused loss (times
    ``loss_scale``; its probabilities clipped by ``clip``, 0: exact, see
    ``kernels.losses``), its gradient times ``grad_scale`` and the last bias's gradient
    in one C kernel; backward through every layer, each activation's backward
    in the pass that sums its layer's bias gradient; one optimizer update per array
    with L2 ``l2 / batch rows`` on the weights only (``l2`` = 0: none). Writes each
    batch's loss to ``losses`` (loss plus the L2 term ``l2/2 ||W||² / rows``);
    returns the optimizer's step count after the epoch.

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
    n_slots = 0
    if table[0, _S1W] != 0:
        n_slots = 2 if table[0, _S2W] != 0 else 1
    t = t0
    k = 0
    for lo in range(0, n, batch):
        m = batch if n - lo > batch else n - lo
        for i in range(m):
            r = order[lo + i]
            copy_bytes(xb + i * x_row, X + r * x_row, x_row)
            copy_bytes(tb + i * t_row, T + r * t_row, t_row)
        # forward
        h = xb
        for layer in range(L):
            d = dims[layer + 1]
            z = zs + zo[layer] * item
            gemm_at(kind, h, table[layer, _W], z, m, d, dims[layer], one, zero,
                    False, False)  # fmt: skip
            if layer < L - 1:
                # the activation in a block of its own: the backward reads the
                # input or the output, as its kernel needs
                a = zs + zo[L + layer] * item
                args = (ptr(z), ptr(table[layer, _B]), ptr(a), m, d, alpha)
                call_void(fns[_BIAS_ACT], args)
                h = a
        last = zs + zo[L - 1] * item
        grad = ds + do[L - 1] * item
        b, db = table[L - 1, _B], table[L - 1, _GB]
        args = (ptr(last), ptr(b), ptr(tb), ptr(grad), ptr(db), m, k_out, grad_scale,
                clip)  # fmt: skip
        loss = call_f64(fns[_LOSS], args) * loss_scale
        # backward
        for layer in range(L - 1, -1, -1):
            d_in = dims[layer]
            d = dims[layer + 1]
            dy = ds + do[layer] * item
            h_in = xb
            if layer > 0:
                h_in = zs + zo[L + layer - 1] * item
                dx = ds + do[layer - 1] * item
                gemm_at(kind, dy, table[layer, _W], dx, m, d_in, d, one, zero,
                        False, True)  # fmt: skip
            gemm_at(kind, h_in, dy, table[layer, _GW], d_in, d, m, one, zero,
                    True, False)  # fmt: skip
            if layer > 0:
                x_in = zs + zo[layer - 1] * item  # its input; h_in: its output
                db = table[layer - 1, _GB]
                args = (ptr(dx), ptr(x_in), ptr(h_in), ptr(dx), ptr(db), m, d_in,
                        alpha)  # fmt: skip
                call_void(fns[_ACT_BACKWARD], args)
        # L2 on the weights, then the updates
        if l2 > 0.0:
            sq = 0.0
            for layer in range(L):
                size = dims[layer] * dims[layer + 1]
                sq += call_f64(fns[_SUM_SQ], (ptr(table[layer, _W]), size))
            loss += 0.5 * l2 * sq / m
        t += 1
        for layer in range(L):
            row = table[layer]
            for col in range(2):  # the weights (_W), then the bias (_B)
                size = dims[layer + 1] * (dims[layer] if col == _W else 1)
                n1 = size if n_slots > 0 else 0
                n2 = size if n_slots > 1 else 0
                slot = _S1W + 2 * col  # their gradient is at col + 2
                decay = l2 / m if col == _W else 0.0  # L2 on the weights only
                p, g, s1, s2 = row[col], row[col + 2], row[slot], row[slot + 1]
                args = (ptr(p), ptr(g), ptr(s1), ptr(s2), n1, n2, size, t, hp, decay)
                call_void(fns[_UPDATE], args)
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
