"""Whole-network kernels for MLPs: a training epoch and a forward pass in one call.

A step of the module-by-module path (``Linear`` / activation / loss / optimizer,
each a kernel called from Python) spends tens of microseconds in Python; for small
networks that is most of the time. These kernels run the same arithmetic in the same
order from inside one compiled loop over all batches, so their results are
bit-identical to the module path and the Python overhead is paid once per epoch.

Compiled once, whatever the network, the dtype and the target: every array crosses
as an address (:mod:`.ffi`), the layers' as a table (:data:`LAYER_COLUMNS`) with
their widths in ``dims``, so depth is data; the dtype is data too (its BLAS letter
and item size; BLAS takes the matrix products, rows move as bytes); everything
elementwise is a small C-callable kernel per setting and dtype (:func:`callbacks`,
compiled on first use): the bias plus the activation in one pass over each product,
the activation's backward plus the bias gradient, the loss, the optimizer update.
A new activation, loss, optimizer or dtype compiles those few small kernels, never
a network (measured in ``bench/startup.py``).

The epoch and the forward are C functions too (``_epoch_c``, ``_forward_c``, called
through ``ctypes`` by ``fastnet._runtime.native``), so every kernel a fit or a
prediction
runs is plain machine code, which ``fastnet._runtime.native`` keeps as object files and
loads in later processes without Numba.
"""

import functools
import math

import numpy as np
from numba import carray, types

from .._runtime import native as _native
from ._config import cfunc, fresh_compilation, inlined, jit, jit_inline
from .activations import ACTIVATIONS
from .blas import gemm_at
from .ffi import call_f64, call_i64, call_void, copy_bytes, ptr
from .losses import (
    poisson_exp,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    softmax_cross_entropy_dense,
    squared_error,
)
from .optimizers import adam_update, sgd_update, sum_squares
from .softmax import softmax_forward
from .util import all_finite

LAYER_COLUMNS = _native.LAYER_COLUMNS
_W, _B, _GW, _GB, _S1W, _S2W, _S1B, _S2B = range(8)
OUT_KINDS = _native.OUT_KINDS
block_offsets = _native.block_offsets
dtype_args = _native.dtype_args
#: the epoch's C kernels, in the order of :func:`callbacks`' array
EPOCH_FNS = ("bias_act", "act_backward", "loss", "update", "sum_sq")
#: the forward's C kernels, in the order of :func:`forward_callbacks`' array
FORWARD_FNS = ("bias_act", "bias", "output", "all_finite")

# the serial kernels, as plain globals (a call through a tuple item types as Numba's
# experimental first-class function and warns on every first compilation)
# (inlined copies: each C kernel compiles as one function)
_adam_update = inlined(adam_update[0])
_sgd_update = inlined(sgd_update[0])
_softmax_serial = inlined(softmax_forward[0])
_logistic_serial = inlined(ACTIVATIONS["logistic"].forward[0])


@jit
def epoch(
    X,
    T,
    t_row,
    order,
    batch,
    table,
    dims,
    zs,
    zo,
    ds,
    do,
    xb,
    tb,
    hp,
    t0,
    alpha,
    l2,
    grad_scale,
    loss_scale,
    losses,
    fns,
    saves_x,
    kind,
    item,
    one,
):
    """Train one epoch over the rows ``order`` in batches of ``batch``.

    Addresses (``int64``): ``X`` (rows of ``dims[0]`` numbers), ``T`` (the targets
    as rows of ``t_row`` bytes, which the loss kernel reads as int64 labels or as
    numbers), the workspaces ``zs`` (every layer's pre-activation, then every hidden
    activation, ``batch`` rows each, at the element offsets ``zo``), ``ds`` (every
    layer's gradient, offsets ``do``), ``xb`` and ``tb`` (a batch of gathered rows),
    and ``one`` (the numbers 1 and 0 in the dtype, BLAS's scalars). ``kind``: the
    dtype's BLAS letter code; ``item``: its size in bytes.

    Per batch: gather rows; ``z_l = h_{l-1} W_l``, then ``z_l += b_l``,
    ``h_l = f(z_l)`` in one pass; the last layer's bias, the fused loss (times
    ``loss_scale``), its gradient times ``grad_scale`` and the last bias's gradient
    in one C kernel; backward through every layer, each activation's backward
    in the pass that sums its layer's bias gradient; one optimizer update per array
    with L2 ``l2 / batch rows`` on the weights only (``l2`` = 0: none). Writes each
    batch's loss to ``losses`` (loss plus the L2 term ``l2/2 ||W||² / rows``);
    returns the optimizer's step count after the epoch.

    ``table`` (L, 8): the layers' array addresses (:data:`LAYER_COLUMNS`); ``dims``
    (L + 1): the widths, input first. ``fns``: addresses of the C kernels
    (:data:`EPOCH_FNS`, :func:`callbacks`); ``saves_x``: the activation's backward
    reads its input (else its output, and the activation overwrites its input).
    ``hp``: the optimizer's hyperparameters (6 values).
    """
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
                # the activation: a block of its own when the backward reads the
                # input, else the pre-activation's block, overwritten
                a = zs + (zo[L + layer] if saves_x else zo[layer]) * item
                call_void(fns[0], (ptr(z), ptr(table[layer, _B]), ptr(a), m, d, alpha))
                h = a
        last = zs + zo[L - 1] * item
        grad = ds + do[L - 1] * item
        b, db = table[L - 1, _B], table[L - 1, _GB]
        args = (ptr(last), ptr(b), ptr(tb), ptr(grad), ptr(db), m, k_out, grad_scale)
        loss = call_f64(fns[2], args) * loss_scale
        # backward
        for layer in range(L - 1, -1, -1):
            d_in = dims[layer]
            d = dims[layer + 1]
            dy = ds + do[layer] * item
            h_in = xb
            if layer > 0:
                h_in = zs + (zo[L + layer - 1] if saves_x else zo[layer - 1]) * item
                dx = ds + do[layer - 1] * item
                gemm_at(kind, dy, table[layer, _W], dx, m, d_in, d, one, zero,
                        False, True)  # fmt: skip
            gemm_at(kind, h_in, dy, table[layer, _GW], d_in, d, m, one, zero,
                    True, False)  # fmt: skip
            if layer > 0:
                saved = zs + zo[layer - 1] * item if saves_x else h_in
                db = table[layer - 1, _GB]
                args = (ptr(dx), ptr(saved), ptr(dx), ptr(db), m, d_in, alpha)
                call_void(fns[1], args)
        # L2 on the weights, then the updates
        if l2 > 0.0:
            sq = 0.0
            for layer in range(L):
                size = dims[layer] * dims[layer + 1]
                sq += call_f64(fns[4], (ptr(table[layer, _W]), size))
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
                call_void(fns[3], args)
        losses[k] = loss
        k += 1
    return t


@jit
def forward(x, n, table, dims, work, out, fns, alpha, kind, item, one, check):
    """``z_l = h_{l-1} W_l + b_l``, ``h_l = f(z_l)`` (in place) for the layers of
    ``table`` (columns W and b of :data:`LAYER_COLUMNS`) on the ``n`` rows at the
    address ``x``, the hidden layers' rows in the workspace at ``work``, the last
    layer's into ``out``, which then goes through the output kernel (0: none); the
    arrays at ``x``, ``work`` and ``out`` are C-contiguous, of the dtype.
    ``fns``: :data:`FORWARD_FNS` (:func:`forward_callbacks`); ``kind``, ``item``,
    ``one``: the dtype, as for :func:`epoch`. With ``check``, first the finiteness
    of ``x`` (the C kernel ``all_finite``): returns 0, computing nothing, where an
    element is NaN or infinite; else 1 (one call where a one-row prediction paid
    two)."""
    if check and call_i64(fns[3], (ptr(x), n * dims[0])) == 0:
        return 0
    L = table.shape[0]
    zero = one + item
    h = x
    start = work
    for layer in range(L):
        d = dims[layer + 1]
        b = ptr(table[layer, _B])
        z = out if layer == L - 1 else start
        gemm_at(kind, h, table[layer, _W], z, n, d, dims[layer], one, zero,
                False, False)  # fmt: skip
        if layer < L - 1:
            call_void(fns[0], (ptr(z), b, ptr(z), n, d, alpha))
            start += n * d * item
            h = z
        else:
            call_void(fns[1], (ptr(z), b, ptr(z), n, d, 0.0))
    if fns[2] != 0:
        call_void(fns[2], (ptr(out), n, dims[L]))
    return 1


# -- the C-callable kernels -------------------------------------------------------
# Placeholders bound per compiled copy: never called as None.
_kernel = None


def _epoch_c(X, T, t_row, order, n, batch, table, L, dims, zs, zo, ds, do, xb, tb,
             hp, t0, alpha, l2, grad_scale, loss_scale, losses, fns, saves_x, kind,
             item, one):  # fmt: skip
    """:func:`epoch` as a C function: its arrays as addresses (``order``: ``n``
    int64; ``table``: ``L`` rows; ``hp``, ``losses``: float64), ``saves_x`` as 0/1.
    The address of every C kernel ``fastnet._runtime.native`` calls it with."""
    n_zo = 2 * L if saves_x else L + 1  # block_offsets' length
    return _kernel(X, T, t_row, carray(order, (n,)), batch, carray(table, (L, 8)),
                   carray(dims, (L + 1,)), zs, carray(zo, (n_zo,)), ds,
                   carray(do, (L + 1,)), xb, tb, carray(hp, (6,)), t0, alpha, l2,
                   grad_scale, loss_scale, carray(losses, ((n + batch - 1) // batch,)),
                   carray(fns, (5,)), saves_x != 0, kind, item, one)  # fmt: skip


def _forward_c(x, n, work, out, check, table, L, dims, fns, alpha, kind, item, one):
    """:func:`forward` as a C function (``table``: ``L`` rows of W and b); the
    arguments that change from call to call first."""
    return _kernel(x, n, carray(table, (L, 2)), carray(dims, (L + 1,)), work, out,
                   carray(fns, (4,)), alpha, kind, item, one, check != 0)  # fmt: skip


def _all_finite_c(x, n):
    """``kernels.util.all_finite`` over the ``n`` numbers at ``x``, as 1 or 0."""
    return 1 if _kernel(carray(x, (n,))) else 0


def _bias_act_c(z, b, out, m, d, alpha):
    """``z += b``, ``out = f(z)`` (``out`` may be ``z``): the activation's
    ``bias_forward``."""
    _kernel(carray(z, (m, d)), carray(b, (d,)), alpha, carray(out, (m, d)))


def _act_backward_c(dy, saved, dz, db, m, d, alpha):
    """``dz = dy * f'(saved)`` (``dz`` may be ``dy``), ``db = dz.sum(0)``: the
    activation's ``bias_backward``."""
    shape = (m, d)
    _kernel(carray(dy, shape), carray(saved, shape), alpha, carray(dz, shape),
            carray(db, (d,)))  # fmt: skip


def _sum_sq_c(p, n):
    return _kernel(carray(p, (n,)))


def _softmax_out_c(z, m, k):
    """Softmax over each row, in place."""
    out = carray(z, (m, k))
    _softmax_serial(out, out)


def _logistic_out_c(z, m, k):
    """The logistic function of every element, in place."""
    flat = carray(z, (m * k,))
    _logistic_serial(flat, 0.0, flat)


def _loss_labels_c(z, b, t, grad, db, m, k, factor):
    """The last layer's ``z += b``; the loss of ``z`` against the labels ``t``, its
    gradient into ``grad``; then ``grad *= factor`` and ``db = grad.sum(0)``."""
    logits, g = carray(z, (m, k)), carray(grad, (m, k))
    _add_bias(logits, carray(b, (k,)))
    loss = _kernel(logits, carray(t, (m,)), carray(z, (0,)), g)
    _scale_colsum(g, carray(db, (k,)), factor)
    return loss


def _loss_dense_c(z, b, t, grad, db, m, k, factor):
    """:func:`_loss_labels_c` with targets ``t`` of the shape of ``z``."""
    logits, g = carray(z, (m, k)), carray(grad, (m, k))
    _add_bias(logits, carray(b, (k,)))
    loss = _kernel(logits, carray(t, (m, k)), carray(z, (0,)), g)
    _scale_colsum(g, carray(db, (k,)), factor)
    return loss


@jit_inline
def _add_bias(z, b):
    """``z += b`` (``Linear``'s forward after its product)."""
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] += b[j]


@jit_inline
def _scale_colsum(g, db, factor):
    """``g *= factor`` unless ``factor`` is 1, then ``db = g.sum(0)`` in row order
    (``Linear``'s ``column_sum``), in one pass."""
    f = g.dtype.type(factor)
    for j in range(db.shape[0]):  # a loop: a slice assignment compiles broadcasting
        db[j] = 0.0
    for i in range(g.shape[0]):
        for j in range(g.shape[1]):
            if factor != 1.0:
                g[i, j] *= f
            db[j] += g[i, j]


def _adam_c(p, g, s1, s2, n1, n2, n, t, hp, l2):
    """One Adam step (``hp`` = lr, beta1, beta2, eps, eps_placement, decay), the
    arithmetic of ``fastnet.optim.Adam._update`` to the bit."""
    h = carray(hp, (6,))
    lr, b1, b2, eps = h[0], h[1], h[2], h[3]
    # float exponents: Python's float ** int is C pow(), which these match
    correction = math.sqrt(1 - b2 ** float(t))
    step_size = lr * correction / (1 - b1 ** float(t))
    eps_hat = eps * correction if h[4] == 0.0 else eps
    param = carray(p, (n,))
    dt = param.dtype.type
    _adam_update(
        param,
        carray(g, (n,)),
        carray(s1, (n1,)),
        carray(s2, (n2,)),
        dt(step_size),
        dt(b1),
        dt(b2),
        dt(eps_hat),
        dt(l2),
        dt(h[5]),
    )


def _sgd_c(p, g, s1, s2, n1, n2, n, t, hp, l2):
    """One SGD step (``hp`` = lr, momentum, nesterov), as ``fastnet.optim.SGD``."""
    h = carray(hp, (6,))
    param = carray(p, (n,))
    dt = param.dtype.type
    _sgd_update(
        param,
        carray(g, (n,)),
        carray(s1, (n1,)),
        dt(h[0]),
        dt(h[1]),
        h[2] != 0.0,
        dt(l2),
    )


LOSSES = {
    "softmax_cross_entropy": (softmax_cross_entropy[0], _loss_labels_c),
    "softmax_cross_entropy_dense": (softmax_cross_entropy_dense[0], _loss_dense_c),
    "sigmoid_binary_cross_entropy": (sigmoid_binary_cross_entropy[0], _loss_dense_c),
    "squared_error": (squared_error[0], _loss_dense_c),
    "poisson_exp": (poisson_exp[0], _loss_dense_c),
}
OPTIMIZERS = {"adam": _adam_c, "sgd": _sgd_c}

_CFUNCS = {}


def _made(name, make):
    """The address of the C kernel ``name``: this process's, or loaded from the
    native cache (``fastnet._runtime.native``) without Numba's machinery, or
    ``make()``'s
    compilation (which loads it from Numba's cache where it is there, and writes
    the native cache after a fresh compilation)."""
    address = _native.lookup(name)
    if address is None:
        address = _native.wait_for(name)  # a background helper's, where it has one
    if address is None:
        if _native.refresh(name):  # its file is missing or damaged: write it again
            with fresh_compilation():
                compiled = make()
        else:
            compiled = make()
        # kept: its address is valid while it lives; where two threads compile one
        # kernel at once, the first stored is the one every caller gets
        _CFUNCS.setdefault(name, compiled)
        address = _native.save(name, _CFUNCS[name])
    return address


def _sig(dtype, *kinds, ret=types.void):
    """A C signature: 'p' a pointer to ``dtype``, 'l' to int64, 'h' to float64,
    'i' int64, 'f' float64."""
    ptr = types.CPointer(dtype)
    of = {
        "p": ptr,
        "l": types.CPointer(types.int64),
        "h": types.CPointer(types.float64),
        "i": types.int64,
        "f": types.float64,
    }
    return ret(*[of[k] for k in kinds])


def _numba_dtype(dtype):
    name = _native.dtype_name(dtype)
    return (types.float32 if name == "float32" else types.float64), name


def _bias_act(name, activation, nb):
    return lambda: cfunc(
        _bias_act_c,
        name,
        _sig(nb, "p", "p", "p", "i", "i", "f"),
        _kernel=inlined(ACTIVATIONS[activation].bias_forward[0]),
    )


def _epoch_makers(activation, loss, optimizer, dtype):
    """``(name, make)`` of each of a setting's epoch C kernels (the order of
    :data:`EPOCH_FNS`); ``make()`` compiles it."""
    nb, _ = _numba_dtype(dtype)
    act = ACTIVATIONS[activation]
    kernel, template = LOSSES[loss]
    target = "l" if template is _loss_labels_c else "p"
    n_act, n_back, n_loss, n_update, n_sq = names = _native.epoch_names(
        activation, loss, optimizer, dtype
    )
    makes = [
        _bias_act(n_act, activation, nb),
        lambda: cfunc(
            _act_backward_c,
            n_back,
            _sig(nb, "p", "p", "p", "p", "i", "i", "f"),
            _kernel=inlined(act.bias_backward[0]),
        ),
        lambda: cfunc(
            template,
            n_loss,
            _sig(nb, "p", "p", target, "p", "p", "i", "i", "f", ret=types.float64),
            _kernel=inlined(kernel),
        ),
        lambda: cfunc(
            OPTIMIZERS[optimizer],
            n_update,
            _sig(nb, "p", "p", "p", "p", "i", "i", "i", "i", "h", "f"),
        ),
        lambda: cfunc(
            _sum_sq_c,
            n_sq,
            _sig(nb, "p", "i", ret=types.float64),
            _kernel=inlined(sum_squares),
        ),
    ]
    return list(zip(names, makes, strict=True))


def callbacks(activation, loss, optimizer, dtype):
    """Addresses (int64 array, :data:`EPOCH_FNS`) of this setting's C-callable
    kernels for :func:`epoch`: the bias plus the hidden activation, the activation's
    backward plus the bias gradient, the loss (with the last layer's bias before it,
    and its gradient's scale and bias gradient after), the optimizer's update, and
    the sum of squares. Each is compiled (or loaded from a cache) on first use in a
    process; their names are ``fastnet._runtime.native.epoch_names``."""
    return _made_all(_epoch_makers(activation, loss, optimizer, dtype))


def _made_all(makers):
    """:func:`_made` of each ``(name, make)`` (a None name: 0), as an int64 array;
    a background helper's kernels last, so that this process compiles its own
    while the helper finishes them."""
    out = np.zeros(len(makers), dtype=np.int64)
    order = sorted(
        range(len(makers)), key=lambda i: _native.in_background(makers[i][0])
    )
    for i in order:
        name, make = makers[i]
        if name is not None:
            out[i] = _made(name, make)
    return out


def _forward_makers(activation, out_kind, dtype):
    """``(name, make)`` of each of a forward pass's C kernels (the order of
    :data:`FORWARD_FNS`; ``(None, None)`` for an identity output)."""
    nb, d = _numba_dtype(dtype)
    n_act, n_bias, n_out, _ = names = _native.forward_names(activation, out_kind, dtype)
    out = None
    if OUT_KINDS[out_kind]:
        template = _softmax_out_c if out_kind == "softmax" else _logistic_out_c
        out = lambda: cfunc(template, n_out, _sig(nb, "p", "i", "i"))  # noqa: E731
    makes = [
        _bias_act(n_act, activation, nb),
        _bias_act(n_bias, "identity", nb),
        out,
        _all_finite_maker(d),
    ]
    return list(zip(names, makes, strict=True))


def forward_callbacks(activation, out_kind, dtype):
    """Addresses (int64 array, :data:`FORWARD_FNS`) of the C-callable kernels for
    :func:`forward`: the bias plus the hidden activation, the last layer's bias, the
    output activation (``out_kind`` of :data:`OUT_KINDS`; identity: 0), and the
    finiteness check."""
    return _made_all(_forward_makers(activation, out_kind, dtype))


def epoch_kernel():
    """The address of :func:`epoch` as a C function (``_epoch_c``): one for every
    network, dtype and setting."""
    i, f = "i", "f"
    kinds = [i, i, i, "l", i, i, "l", i, "l", i, "l", i, "l", i, i, "h", i,
             f, f, f, f, "h", "l", i, i, i, i]  # fmt: skip
    sig = _sig(types.float64, *kinds, ret=types.int64)
    return _made(
        "c_epoch", lambda: cfunc(_epoch_c, "c_epoch", sig, _kernel=inlined(epoch))
    )


def forward_kernel():
    """The address of :func:`forward` as a C function (``_forward_c``)."""
    sig = _sig(types.float64, "i", "i", "i", "i", "i", "l", "i", "l", "l", "f", "i",
               "i", "i", ret=types.int64)  # fmt: skip
    return _made(
        "c_forward",
        lambda: cfunc(_forward_c, "c_forward", sig, _kernel=inlined(forward)),
    )


def _all_finite_maker(d):
    name = f"c_all_finite_{d}"
    nb = types.float32 if d == "float32" else types.float64
    return lambda: cfunc(
        _all_finite_c,
        name,
        _sig(nb, "p", "i", ret=types.int64),
        _kernel=inlined(all_finite),
    )


def all_finite_kernel(dtype):
    """The address of ``all_finite`` for ``dtype`` as a C function
    (``_all_finite_c``)."""
    _, name = _numba_dtype(dtype)
    return _made(f"c_all_finite_{name}", _all_finite_maker(name))


@functools.cache
def makers():
    """``{name: make}`` for every C kernel of this module: the epoch and the
    forward, and each setting's kernels for every activation of
    :data:`ACTIVATIONS`, every loss, optimizer, output and dtype (what
    ``fastnet compile`` compiles ahead of time)."""
    found = {}
    for dtype in ("float32", "float64"):
        for activation in ACTIVATIONS:
            for loss in LOSSES:
                for optimizer in OPTIMIZERS:
                    found.update(_epoch_makers(activation, loss, optimizer, dtype))
            for out_kind in OUT_KINDS:
                found.update(_forward_makers(activation, out_kind, dtype))
    found.pop(None, None)
    found["c_epoch"] = epoch_kernel
    found["c_forward"] = forward_kernel
    return found


def compile_named(name):
    """Compile (or load) the C kernel ``name`` (a key of :func:`makers`); its
    address."""
    make = makers().get(name)
    if make is None:
        raise ValueError(f"no C kernel {name!r}")
    if name in ("c_epoch", "c_forward"):
        return make()
    return _made(name, make)
