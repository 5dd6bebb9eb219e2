"""Whole-network kernels for MLPs: a training epoch and a forward pass in one call.

A step of the module-by-module path (``Linear`` / activation / loss / optimizer,
each a kernel called from Python) spends tens of microseconds in Python; for small
networks that is most of the time. These kernels run the same kernels in the same
order from inside one compiled loop over all batches, so their results are
bit-identical to the module path and the Python overhead is paid once per epoch.

Compiled once per dtype, whatever the network and the target (rows of bytes that
the loss kernel reads as labels or numbers): the layers come as
a table of array addresses (:data:`LAYER_COLUMNS`) with their widths in ``dims``, so
depth is data; the hidden activation, the loss and the optimizer come as addresses
of small C-callable kernels (:func:`callbacks`, compiled per setting on first use).
A new activation, loss or optimizer compiles those few small kernels, not a network.
"""

import math

import numpy as np
from numba import carray, types

from ._config import cfunc, jit, jit_inline
from .activations import ACTIVATIONS
from .ffi import call_f64, call_void, view
from .linear import linear_backward, linear_forward
from .losses import (
    poisson_exp,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    softmax_cross_entropy_dense,
    squared_error,
)
from .optimizers import adam_update, sgd_update, sum_squares
from .softmax import softmax_forward

#: columns of the epoch's layer table: addresses of each layer's weights, bias,
#: their gradients, and the optimizer's first and second slot for each (0: none)
LAYER_COLUMNS = ("W", "b", "gW", "gb", "s1W", "s2W", "s1b", "s2b")
_W, _B, _GW, _GB, _S1W, _S2W, _S1B, _S2B = range(8)
#: output of the forward kernel: 0 identity, 1 softmax, 2 logistic
OUT_KINDS = {"identity": 0, "softmax": 1, "logistic": 2}

# the serial kernels, as plain globals (a call through a tuple item types as Numba's
# experimental first-class function and warns on every first compilation)
_adam_update = adam_update[0]
_sgd_update = sgd_update[0]
_softmax_serial = softmax_forward[0]
_logistic_serial = ACTIVATIONS["logistic"].forward[0]


@jit_inline
def _gather_rows(src, order, start, dst):
    """``dst[i] = src[order[start + i]]`` for the rows of ``dst`` (2-D arrays).

    Element by element: a row assignment ``dst[i] = src[r]`` would compile Numba's
    broadcast checks and their formatted messages into the kernel (about 3 s of a
    cold first fit).
    """
    for i in range(dst.shape[0]):
        r = order[start + i]
        for j in range(dst.shape[1]):
            dst[i, j] = src[r, j]


@jit_inline
def _offsets(dims, rows, hidden_too):
    """Where each layer's ``rows x width`` block starts in a flat workspace: one
    block per layer, plus one per hidden layer after them when ``hidden_too``."""
    L = dims.shape[0] - 1
    n_blocks = 2 * L - 1 if hidden_too else L
    out = np.empty(n_blocks + 1, np.int64)
    out[0] = 0
    for i in range(n_blocks):
        out[i + 1] = out[i] + rows * dims[i % L + 1]
    return out


@jit
def epoch(
    X,
    T,
    w,
    order,
    batch,
    table,
    dims,
    zs,
    ds,
    xb,
    tb,
    wb,
    hp,
    t0,
    alpha,
    l2,
    grad_scale,
    loss_scale,
    losses,
    fns,
    saves_x,
):
    """Train one epoch over the rows ``order`` in batches of ``batch``.

    ``T``: the targets as rows of bytes (uint8, one row per sample), gathered into
    ``tb`` and handed to the loss kernel, which reads them as int64 labels or as
    numbers of the dtype.

    Per batch: gather rows; ``z_l = h_{l-1} W_l + b_l``, ``h_l = f(z_l)``; the fused
    loss of the last ``z`` (times ``loss_scale``, its gradient times
    ``grad_scale``); backward through every layer; one optimizer update per
    array with L2 ``l2 / (sum of batch weights)`` on the weights only (``l2`` = 0:
    none). Writes each batch's loss to ``losses`` (loss plus the L2 term
    ``l2/2 ||W||² / W``); returns the optimizer's step count after the epoch.

    ``table`` (L, 8): the layers' array addresses (:data:`LAYER_COLUMNS`); ``dims``
    (L + 1): the widths, input first. ``zs``: ``batch`` rows of every layer's
    pre-activation, then of every hidden activation; ``ds``: of every layer's
    gradient. ``fns``: addresses of the activation's forward and backward, the loss
    and the optimizer update (:func:`callbacks`); ``saves_x``: the activation's
    backward reads its input (else its output). ``hp``: the optimizer's
    hyperparameters (6 values); ``w``: sample weights or empty.
    """
    n = order.shape[0]
    L = table.shape[0]
    k_out = dims[L]
    zo = _offsets(dims, batch, True)
    do = _offsets(dims, batch, False)
    n_slots = 0
    if table[0, _S1W] != 0:
        n_slots = 2 if table[0, _S2W] != 0 else 1
    t = t0
    k = 0
    for lo in range(0, n, batch):
        m = min(batch, n - lo)
        x = xb[:m]
        tt = tb[:m]
        ww = wb[:m] if w.size > 0 else wb
        _gather_rows(X, order, lo, x)
        _gather_rows(T.reshape(T.shape[0], -1), order, lo, tt.reshape(m, -1))
        sw_sum = float(m)
        if w.size > 0:
            sw_sum = 0.0
            for i in range(m):
                ww[i] = w[order[lo + i]]
                sw_sum += ww[i]
        # forward
        h = x
        for layer in range(L):
            d = dims[layer + 1]
            z = zs[zo[layer] : zo[layer] + m * d].reshape(m, d)
            W = view(table[layer, _W], (dims[layer], d), X)
            b = view(table[layer, _B], (d,), X)
            linear_forward(h, W, b, z)
            if layer < L - 1:
                a = zs[zo[L + layer] : zo[L + layer] + m * d].reshape(m, d)
                call_void(fns[0], (z, a, m * d, alpha))
                h = a
        last = zs[zo[L - 1] : zo[L - 1] + m * k_out].reshape(m, k_out)
        grad = ds[do[L - 1] : do[L - 1] + m * k_out].reshape(m, k_out)
        loss = call_f64(fns[2], (last, tt, ww, grad, m, k_out, ww.shape[0]))
        loss *= loss_scale
        if grad_scale != 1.0:
            g = grad.reshape(-1)
            factor = g.dtype.type(grad_scale)
            for i in range(g.shape[0]):
                g[i] *= factor
        # backward
        for layer in range(L - 1, -1, -1):
            d_in = dims[layer]
            d = dims[layer + 1]
            dy = ds[do[layer] : do[layer] + m * d].reshape(m, d)
            if layer > 0:
                h_in = zs[zo[L + layer - 1] : zo[L + layer - 1] + m * d_in]
                dx = ds[do[layer - 1] : do[layer - 1] + m * d_in].reshape(m, d_in)
            else:
                h_in = x.reshape(-1)
                dx = ds[:0].reshape(0, d_in)  # the input needs no gradient
            W = view(table[layer, _W], (d_in, d), X)
            gW = view(table[layer, _GW], (d_in, d), X)
            gb = view(table[layer, _GB], (d,), X)
            linear_backward(dy, h_in.reshape(m, d_in), W, dx, gW, gb)
            if layer > 0:
                lo_s = zo[layer - 1] if saves_x else zo[L + layer - 1]
                saved = zs[lo_s : lo_s + m * d_in]
                call_void(fns[1], (dx, saved, dx, m * d_in, alpha))
        # L2 on the weights, then the updates
        if l2 > 0.0:
            sq = 0.0
            for layer in range(L):
                size = dims[layer] * dims[layer + 1]
                sq += sum_squares(view(table[layer, _W], (size,), X))
            loss += 0.5 * l2 * sq / sw_sum
        t += 1
        decay = l2 / sw_sum
        for layer in range(L):
            size = dims[layer] * dims[layer + 1]
            _update(fns[3], table[layer], _W, size, n_slots, t, hp, decay, X)
            _update(fns[3], table[layer], _B, dims[layer + 1], n_slots, t, hp, 0.0, X)
        losses[k] = loss
        k += 1
    return t


@jit_inline
def _update(fn, row, col, size, n_slots, t, hp, l2, like):
    """The optimizer's update (C kernel ``fn``) of the array in column ``col`` of a
    layer's table ``row`` (weights or bias), its gradient and slots beside it."""
    grad, slot = (_GW, _S1W) if col == _W else (_GB, _S1B)
    n1 = size if n_slots > 0 else 0
    n2 = size if n_slots > 1 else 0
    args = (
        view(row[col], (size,), like),
        view(row[grad], (size,), like),
        view(row[slot], (n1,), like),
        view(row[slot + 1], (n2,), like),
        n1,
        n2,
        size,
        t,
        hp,
        l2,
    )
    call_void(fn, args)


@jit
def forward(x, table, dims, work, out, fn_act, alpha, out_kind):
    """``z_l = h_{l-1} W_l + b_l``, ``h_l = f(z_l)`` (in place) for the layers of
    ``table`` (columns W and b of :data:`LAYER_COLUMNS`), the hidden layers' rows in
    the flat ``work``, the last layer's into ``out``, which then goes through the
    output (:data:`OUT_KINDS`). ``fn_act``: the activation's forward
    (:func:`callbacks`)."""
    n = x.shape[0]
    L = table.shape[0]
    h = x
    start = 0
    for layer in range(L):
        d = dims[layer + 1]
        W = view(table[layer, _W], (dims[layer], d), x)
        b = view(table[layer, _B], (d,), x)
        if layer < L - 1:
            z = work[start : start + n * d].reshape(n, d)
            start += n * d
            linear_forward(h, W, b, z)
            call_void(fn_act, (z, z, n * d, alpha))
            h = z
        else:
            linear_forward(h, W, b, out)
    if out_kind == 1:
        _softmax_serial(out, out)
    elif out_kind == 2:
        flat = out.reshape(-1)
        _logistic_serial(flat, 0.0, flat)


# -- the C-callable kernels -------------------------------------------------------
# Placeholders bound per compiled copy: never called as None.
_kernel = None


def _act_forward_c(x, out, n, alpha):
    _kernel(carray(x, (n,)), alpha, carray(out, (n,)))


def _act_backward_c(dy, saved, dx, n, alpha):
    _kernel(carray(dy, (n,)), carray(saved, (n,)), alpha, carray(dx, (n,)))


def _loss_labels_c(z, t, w, grad, m, k, nw):
    return _kernel(
        carray(z, (m, k)), carray(t, (m,)), carray(w, (nw,)), carray(grad, (m, k))
    )


def _loss_dense_c(z, t, w, grad, m, k, nw):
    return _kernel(
        carray(z, (m, k)), carray(t, (m, k)), carray(w, (nw,)), carray(grad, (m, k))
    )


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


def _made(key, make):
    if key not in _CFUNCS:
        _CFUNCS[key] = make()  # kept: its address is valid while it lives
    return _CFUNCS[key].address


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


def callbacks(activation, loss, optimizer, dtype):
    """Addresses (int64 array) of this setting's C-callable kernels for
    :func:`epoch`: the activation's forward and backward, the loss (None: 0), the
    optimizer's update (None: 0). Each is compiled (or loaded from the cache) on
    first use in a process."""
    nb = types.float32 if np.dtype(dtype) == np.float32 else types.float64
    name = np.dtype(dtype).name
    act = ACTIVATIONS[activation]
    out = [
        _made(
            ("act_forward", activation, name),
            lambda: cfunc(
                _act_forward_c,
                f"c_{activation}_forward_{name}",
                _sig(nb, "p", "p", "i", "f"),
                _kernel=act.forward[0],
            ),
        ),
        _made(
            ("act_backward", activation, name),
            lambda: cfunc(
                _act_backward_c,
                f"c_{activation}_backward_{name}",
                _sig(nb, "p", "p", "p", "i", "f"),
                _kernel=act.backward[0],
            ),
        ),
        0,
        0,
    ]
    if loss is not None:
        kernel, template = LOSSES[loss]
        target = "l" if template is _loss_labels_c else "p"
        out[2] = _made(
            ("loss", loss, name),
            lambda: cfunc(
                template,
                f"c_{loss}_{name}",
                _sig(nb, "p", target, "p", "p", "i", "i", "i", ret=types.float64),
                _kernel=kernel,
            ),
        )
    if optimizer is not None:
        out[3] = _made(
            ("update", optimizer, name),
            lambda: cfunc(
                OPTIMIZERS[optimizer],
                f"c_{optimizer}_{name}",
                _sig(nb, "p", "p", "p", "p", "i", "i", "i", "i", "h", "f"),
            ),
        )
    return np.array(out, dtype=np.int64)
