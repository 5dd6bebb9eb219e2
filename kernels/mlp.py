"""Whole-network kernels for MLPs: a training epoch and a forward pass in one call.

A step of the module-by-module path (``Linear`` / activation / loss / optimizer,
each a kernel called from Python) spends tens of microseconds in Python; for small
networks that is most of the time. These kernels run the same kernels in the same
order from inside one compiled loop over all batches, so their results are
bit-identical to the module path and the Python overhead is paid once per epoch.

A network is ``L`` linear layers with one hidden activation between them; its
arrays come as tuples (one entry per layer). One kernel is compiled per (hidden
activation, loss, optimizer) that is used, on first use.
"""

import math

from ._config import jit, jit_bound
from .activations import ACTIVATIONS
from .linear import linear_backward, linear_forward
from .losses import (
    poisson_exp,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    softmax_cross_entropy_dense,
    squared_error,
)
from .optimizers import adam_update, scale_inplace, sgd_update, sum_squares
from .softmax import softmax_forward

LOSSES = {
    "softmax_cross_entropy": softmax_cross_entropy[0],
    "softmax_cross_entropy_dense": softmax_cross_entropy_dense[0],
    "sigmoid_binary_cross_entropy": sigmoid_binary_cross_entropy[0],
    "squared_error": squared_error[0],
    "poisson_exp": poisson_exp[0],
}

# The serial kernels, as plain globals: a call through a tuple item
# (``adam_update[0](...)``) types as Numba's experimental first-class function and
# warns on every first compilation.
_adam_update = adam_update[0]
_sgd_update = sgd_update[0]
_softmax_serial = softmax_forward[0]

# Placeholders bound per compiled copy by jit_bound: never called as None.
_act_fwd = _act_bwd = _loss = _update = None
_SAVES_X = False


@jit
def _adam(p, g, s1, s2, t, hp, l2):
    """One Adam step (``hp`` = lr, beta1, beta2, eps, eps_placement, decay), the
    arithmetic of ``fastnet.optim.Adam._update`` to the bit."""
    lr, b1, b2, eps = hp[0], hp[1], hp[2], hp[3]
    # float exponents: Python's float ** int is C pow(), which these match
    correction = math.sqrt(1 - b2 ** float(t))
    step_size = lr * correction / (1 - b1 ** float(t))
    eps_hat = eps * correction if hp[4] == 0.0 else eps
    dt = p.dtype.type
    _adam_update(
        p, g, s1, s2, dt(step_size), dt(b1), dt(b2), dt(eps_hat), dt(l2), dt(hp[5])
    )


@jit
def _sgd(p, g, s1, s2, t, hp, l2):
    """One SGD step (``hp`` = lr, momentum, nesterov), as ``fastnet.optim.SGD``."""
    dt = p.dtype.type
    _sgd_update(p, g, s1, dt(hp[0]), dt(hp[1]), hp[2] != 0.0, dt(l2))


OPTIMIZERS = {"adam": _adam, "sgd": _sgd}


@jit
def _gather_rows(src, order, start, dst):
    """``dst[i] = src[order[start + i]]`` for the rows of ``dst`` (2-D arrays).

    Element by element: a row assignment ``dst[i] = src[r]`` would compile Numba's
    broadcast checks and their formatted messages into every epoch kernel (about
    3 s of a cold first fit).
    """
    for i in range(dst.shape[0]):
        r = order[start + i]
        for j in range(dst.shape[1]):
            dst[i, j] = src[r, j]


def _epoch(
    X,
    T,
    w,
    order,
    batch,
    Ws,
    bs,
    gWs,
    gbs,
    zs,
    hs,
    ds,
    xb,
    tb,
    wb,
    s1W,
    s2W,
    s1b,
    s2b,
    hp,
    t0,
    alpha,
    l2,
    grad_scale,
    loss_scale,
    losses,
):
    """Train one epoch over the rows ``order`` in batches of ``batch``.

    Per batch: gather rows; ``z_l = h_{l-1} W_l + b_l``, ``h_l = f(z_l)``; the fused
    loss of the last ``z`` (times ``loss_scale``, its gradient times
    ``grad_scale``); backward through every layer; one optimizer update per
    array with L2 ``l2 / (sum of batch weights)`` on the weights only (``l2`` = 0:
    none). Writes each batch's loss to ``losses`` (loss plus the L2 term
    ``l2/2 ||W||² / W``); returns the optimizer's step count after the epoch.
    """
    n = order.shape[0]
    L = len(Ws)
    t = t0
    k = 0
    for lo in range(0, n, batch):
        m = min(batch, n - lo)
        x = xb[:m]
        tt = tb[:m]
        ww = wb[:m] if w.size > 0 else wb
        _gather_rows(X, order, lo, x)
        _gather_rows(T.reshape(T.shape[0], -1), order, lo, tt.reshape(m, -1))
        if w.size > 0:
            for i in range(m):
                ww[i] = w[order[lo + i]]
        sw_sum = float(m)
        if w.size > 0:
            sw_sum = 0.0
            for i in range(m):
                sw_sum += ww[i]
        # forward
        h = x
        for layer in range(L):
            z = zs[layer][:m]
            linear_forward(h, Ws[layer], bs[layer], z)
            if layer < L - 1:
                a = hs[layer][:m]
                _act_fwd(z.reshape(-1), alpha, a.reshape(-1))
                h = a
        last = zs[L - 1][:m]
        grad = ds[L - 1][:m]
        loss = _loss(last, tt, ww, grad) * loss_scale
        if grad_scale != 1.0:
            scale_inplace(grad.reshape(-1), grad.dtype.type(grad_scale))
        # backward
        for layer in range(L - 1, -1, -1):
            dy = ds[layer][:m]
            h_in = x if layer == 0 else hs[layer - 1][:m]
            dx = ds[layer - 1][:m] if layer > 0 else ds[0][:0]
            linear_backward(dy, h_in, Ws[layer], dx, gWs[layer], gbs[layer])
            if layer > 0:
                saved = zs[layer - 1][:m] if _SAVES_X else hs[layer - 1][:m]
                _act_bwd(dx.reshape(-1), saved.reshape(-1), alpha, dx.reshape(-1))
        # L2 on the weights, then the updates
        if l2 > 0.0:
            sq = 0.0
            for layer in range(L):
                sq += sum_squares(Ws[layer].reshape(-1))
            loss += 0.5 * l2 * sq / sw_sum
        t += 1
        decay = l2 / sw_sum
        for layer in range(L):
            _update(
                Ws[layer].reshape(-1),
                gWs[layer].reshape(-1),
                s1W[layer],
                s2W[layer],
                t,
                hp,
                decay,
            )
        for layer in range(L):
            _update(bs[layer], gbs[layer], s1b[layer], s2b[layer], t, hp, 0.0)
        losses[k] = loss
        k += 1
    return t


_EPOCHS = {}


def epoch_kernel(activation, loss, optimizer):
    """The compiled epoch for this (hidden activation, loss, optimizer)."""
    key = (activation, loss, optimizer)
    if key not in _EPOCHS:
        act = ACTIVATIONS[activation]
        _EPOCHS[key] = jit_bound(
            _epoch,
            f"epoch_{activation}_{loss}_{optimizer}",
            _act_fwd=act.forward[0],
            _act_bwd=act.backward[0],
            _SAVES_X=act.saves == "x",
            _loss=LOSSES[loss],
            _update=OPTIMIZERS[optimizer],
        )
    return _EPOCHS[key]


def _forward(x, Ws, bs, zs, alpha, out_kind):
    """``z_l = h_{l-1} W_l + b_l``, ``h_l = f(z_l)``; the last ``z`` then goes through
    the output: 0 identity, 1 softmax, 2 logistic. Returns the last buffer."""
    L = len(Ws)
    h = x
    for layer in range(L):
        z = zs[layer]
        linear_forward(h, Ws[layer], bs[layer], z)
        if layer < L - 1:
            _act_fwd(z.reshape(-1), alpha, z.reshape(-1))
        h = z
    out = zs[L - 1]
    if out_kind == 1:
        _softmax_serial(out, out)
    elif out_kind == 2:
        _logistic(out.reshape(-1), 0.0, out.reshape(-1))
    return out


_FORWARDS = {}
OUT_KINDS = {"identity": 0, "softmax": 1, "logistic": 2}


def forward_kernel(activation):
    """The compiled whole-network forward pass for this hidden activation."""
    if activation not in _FORWARDS:
        _FORWARDS[activation] = jit_bound(
            _forward,
            f"forward_{activation}",
            _act_fwd=ACTIVATIONS[activation].forward[0],
            _logistic=ACTIVATIONS["logistic"].forward[0],
        )
    return _FORWARDS[activation]


_logistic = None
