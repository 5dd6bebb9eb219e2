"""The whole-network kernels' C functions (``kernels/mlp.py``'s epoch and forward, and
the small kernels they call through their ``fns`` arrays), and their makers.

Every C function's parameters are :mod:`.abi`'s spec for it (``C_FUNCTIONS``; a
maker refuses a template whose parameters differ), and its Numba signature is
derived from that spec (:func:`signature`). This module only makes kernels:
:func:`makers` (and :func:`epoch_makers`, :func:`forward_makers`) give each one's
name and a function that compiles it (or loads it from Numba's cache);
``fastnet._runtime`` looks each up in its native cache first, and compiles, keeps
and saves it where it is not there.
"""

import functools
import math

from numba import carray, types

from . import abi
from ._config import cfunc, inlined, jit_inline
from .activations import ACTIVATIONS
from .linear import column_sum
from .losses import (
    poisson_exp,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    softmax_cross_entropy_dense,
    squared_error,
)
from .mlp import epoch, forward
from .optimizers import adam_update, sgd_update, sum_squares
from .softmax import softmax_forward
from .util import all_finite

_N_COLUMNS = len(abi.LAYER_COLUMNS)
_N_EPOCH_FNS = len(abi.EPOCH_FNS)
_N_FORWARD_FNS = len(abi.FORWARD_FNS)
_HP_SIZE = abi.HP_SIZE
_N_AT = len(abi.EPOCH_AT.params)
_N_SYNC = len(abi.SYNC)

# the serial kernels, as plain globals (a call through a tuple item types as Numba's
# experimental first-class function and warns on every first compilation)
# (inlined copies: each C kernel compiles as one function)
_adam_update = inlined(adam_update[0])
_sgd_update = inlined(sgd_update[0])
_softmax_serial = inlined(softmax_forward[0])
_logistic_serial = inlined(ACTIVATIONS["logistic"].forward[0])


# Placeholders bound per compiled copy: never called as None.
_kernel = None
_saves_x = False


def _epoch_c(t_row, order, n, batch, table, L, dims, at, zo, do, hp, t0, alpha, l2,
             grad_scale, loss_scale, clip, losses, fns, kind, item, part, parts,
             shares, sync):  # fmt: skip
    """:func:`epoch` as a C function (its parameters: :data:`.abi.EPOCH`): its
    arrays as addresses (``order``: ``n`` int64; ``table``: ``L`` rows; ``at``:
    :data:`.abi.EPOCH_AT`; ``hp``, ``losses``: float64; ``sync``:
    :data:`.abi.SYNC`)."""
    n_zo = 2 * L  # block_offsets' length, with the hidden layers' blocks
    return _kernel(t_row, carray(order, (n,)), batch,
                   carray(table, (L, _N_COLUMNS)), carray(dims, (L + 1,)),
                   carray(at, (_N_AT,)), carray(zo, (n_zo,)), carray(do, (L + 1,)),
                   carray(hp, (_HP_SIZE,)), t0, alpha, l2, grad_scale, loss_scale, clip,
                   carray(losses, ((n + batch - 1) // batch,)),
                   carray(fns, (_N_EPOCH_FNS,)), kind, item, part, parts, shares,
                   carray(sync, (_N_SYNC,)))  # fmt: skip


def _forward_c(x, n, work, out, check, block, table, L, dims, fns, alpha, kind,
               item, one):  # fmt: skip
    """:func:`forward` as a C function (its parameters: :data:`.abi.FORWARD`;
    ``table``: ``L`` rows of W and b)."""
    return _kernel(x, n, carray(table, (L, 2)), carray(dims, (L + 1,)), work, out,
                   carray(fns, (_N_FORWARD_FNS,)), alpha, kind, item, one,
                   check != 0, block)  # fmt: skip


def _all_finite_c(x, n):
    """``kernels.util.all_finite`` over the ``n`` numbers at ``x``, as 1 or 0."""
    return 1 if _kernel(carray(x, (n,))) else 0


def _bias_act_c(z, b, out, m, d, alpha):
    """``z += b``, ``out = f(z)`` (``out`` may be ``z``): the activation's
    ``bias_forward``."""
    _kernel(carray(z, (m, d)), carray(b, (d,)), alpha, carray(out, (m, d)))


def _act_backward_c(dy, x, y, dz, db, m, d, alpha):
    """``dz = dy * f'(saved)`` (``dz`` may be ``dy``), ``db = dz.sum(0)``: the
    activation's ``bias_backward``; ``saved`` is its input ``x`` or its output
    ``y``, as its registry entry says (``_saves_x``, bound per activation)."""
    shape = (m, d)
    saved = x if _saves_x else y
    _kernel(carray(dy, shape), carray(saved, shape), alpha, carray(dz, shape),
            carray(db, (d,)))  # fmt: skip


def _sum_sq_c(p, n):
    return _kernel(carray(p, (n,)))


def _column_sum_c(x, db, m, d, lo, hi):
    """``db[j] = x[:, j].sum()`` for the columns ``lo <= j < hi`` of ``x`` (m, d),
    each in row order from 0: the arithmetic of the activations' fused
    ``bias_backward`` sum, element for element (an epoch's threads each take
    columns of a bias gradient whose rows they computed apart)."""
    rows, sums = carray(x, (m, d)), carray(db, (d,))
    _kernel(rows[:, lo:hi], sums[lo:hi])


def _softmax_out_c(z, m, k):
    """Softmax over each row, in place."""
    out = carray(z, (m, k))
    _softmax_serial(out, out)


def _logistic_out_c(z, m, k):
    """The logistic function of every element, in place."""
    flat = carray(z, (m * k,))
    _logistic_serial(flat, 0.0, flat)


def _loss_labels_c(z, b, t, grad, db, m, k, factor, eps):
    """The last layer's ``z += b``; the loss of ``z`` against the labels ``t`` (its
    probabilities clipped by ``eps``: ``kernels.losses``), its gradient into
    ``grad``; then ``grad *= factor`` and ``db = grad.sum(0)``."""
    logits, g = carray(z, (m, k)), carray(grad, (m, k))
    _add_bias(logits, carray(b, (k,)))
    loss = _kernel(logits, carray(t, (m,)), carray(z, (0,)), g, eps)
    _scale_colsum(g, carray(db, (k,)), factor)
    return loss


def _loss_dense_c(z, b, t, grad, db, m, k, factor, eps):
    """:func:`_loss_labels_c` with targets ``t`` of the shape of ``z``."""
    logits, g = carray(z, (m, k)), carray(grad, (m, k))
    _add_bias(logits, carray(b, (k,)))
    loss = _kernel(logits, carray(t, (m, k)), carray(z, (0,)), g, eps)
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
    h = carray(hp, (_HP_SIZE,))
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
    h = carray(hp, (_HP_SIZE,))
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


#: loss name -> (its serial kernel, the C kernel's template, its spec)
LOSSES = {
    "softmax_cross_entropy": (
        softmax_cross_entropy[0],
        _loss_labels_c,
        abi.LOSS_LABELS,
    ),
    "softmax_cross_entropy_dense": (
        softmax_cross_entropy_dense[0],
        _loss_dense_c,
        abi.LOSS_DENSE,
    ),
    "sigmoid_binary_cross_entropy": (
        sigmoid_binary_cross_entropy[0],
        _loss_dense_c,
        abi.LOSS_DENSE,
    ),
    "squared_error": (squared_error[0], _loss_dense_c, abi.LOSS_DENSE),
    "poisson_exp": (poisson_exp[0], _loss_dense_c, abi.LOSS_DENSE),
}
OPTIMIZERS = {"adam": _adam_c, "sgd": _sgd_c}
#: the C functions of this module and their specs (a test compares them)
C_FUNCTIONS = {
    "_epoch_c": abi.EPOCH,
    "_forward_c": abi.FORWARD,
    "_all_finite_c": abi.ALL_FINITE,
    "_bias_act_c": abi.BIAS_ACT,
    "_act_backward_c": abi.ACT_BACKWARD,
    "_sum_sq_c": abi.SUM_SQ,
    "_column_sum_c": abi.COLUMN_SUM,
    "_softmax_out_c": abi.OUTPUT,
    "_logistic_out_c": abi.OUTPUT,
    "_loss_labels_c": abi.LOSS_LABELS,
    "_loss_dense_c": abi.LOSS_DENSE,
    "_adam_c": abi.UPDATE,
    "_sgd_c": abi.UPDATE,
}


def signature(spec, dtype=types.float64):
    """The Numba signature of the C kernel ``spec`` (:class:`.abi.CKernel`), its
    'p' parameters pointers to the Numba type ``dtype``."""
    of = {
        "p": types.CPointer(dtype),
        "l": types.CPointer(types.int64),
        "h": types.CPointer(types.float64),
        "i": types.int64,
        "f": types.float64,
    }
    returns = types.void if spec.returns is None else of[spec.returns]
    return returns(*[of[kind] for kind in spec.kinds])


def _maker(template, name, spec, dtype=types.float64, **consts):
    """A function compiling ``template`` as the C kernel ``name`` of ``spec``, with
    ``consts`` bound as globals; a ``TypeError`` at once where the template's
    parameters are not the spec's."""
    code = template.__code__
    if code.co_varnames[: code.co_argcount] != spec.names:
        raise TypeError(f"{template.__name__}'s parameters are not {spec.names}")
    return lambda: cfunc(template, name, signature(spec, dtype), **consts)


def _numba_dtype(dtype):
    name = abi.dtype_name(dtype)
    return (types.float32 if name == "float32" else types.float64), name


def _bias_act(name, activation, nb):
    kernel = ACTIVATIONS[activation].bias_forward[0]
    return _maker(_bias_act_c, name, abi.BIAS_ACT, nb, _kernel=inlined(kernel))


def epoch_makers(activation, loss, optimizer, dtype):
    """``(name, make)`` of each of a setting's epoch C kernels (the order of
    :data:`.abi.EPOCH_FNS`; their names :func:`.abi.epoch_names`): the bias plus
    the hidden activation, the activation's backward plus the bias gradient, the
    loss (with the last layer's bias before it, and its gradient's scale and bias
    gradient after), the optimizer's update, and the sum of squares. ``make()``
    compiles it (or loads it from Numba's cache)."""
    nb, _ = _numba_dtype(dtype)
    act = ACTIVATIONS[activation]
    kernel, template, loss_spec = LOSSES[loss]
    n_act, n_back, n_loss, n_update, n_sq, n_sum = names = abi.epoch_names(
        activation, loss, optimizer, dtype
    )
    back = inlined(act.bias_backward[0])
    makes = [
        _bias_act(n_act, activation, nb),
        _maker(
            _act_backward_c,
            n_back,
            abi.ACT_BACKWARD,
            nb,
            _kernel=back,
            _saves_x=act.saves == "x",
        ),
        _maker(template, n_loss, loss_spec, nb, _kernel=inlined(kernel)),
        _maker(OPTIMIZERS[optimizer], n_update, abi.UPDATE, nb),
        _maker(_sum_sq_c, n_sq, abi.SUM_SQ, nb, _kernel=inlined(sum_squares)),
        _maker(_column_sum_c, n_sum, abi.COLUMN_SUM, nb, _kernel=inlined(column_sum)),
    ]
    return list(zip(names, makes, strict=True))


def forward_makers(activation, out_kind, dtype):
    """``(name, make)`` of each of a forward pass's C kernels (the order of
    :data:`.abi.FORWARD_FNS`; ``(None, None)`` for an identity output): the bias
    plus the hidden activation, the last layer's bias, the output activation
    (``out_kind`` of :data:`.abi.OUT_KINDS`), and the finiteness check."""
    nb, _ = _numba_dtype(dtype)
    n_act, n_bias, n_out, _ = names = abi.forward_names(activation, out_kind, dtype)
    out = None
    if abi.OUT_KINDS[out_kind]:
        template = _softmax_out_c if out_kind == "softmax" else _logistic_out_c
        out = _maker(template, n_out, abi.OUTPUT, nb)
    makes = [
        _bias_act(n_act, activation, nb),
        _bias_act(n_bias, "identity", nb),
        out,
        all_finite_maker(dtype)[1],
    ]
    return list(zip(names, makes, strict=True))


def epoch_maker():
    """``(name, make)`` of :func:`epoch` as a C function (``_epoch_c``): one for
    every network, dtype and setting."""
    spec = abi.EPOCH
    return spec.name, _maker(_epoch_c, spec.name, spec, _kernel=inlined(epoch))


def forward_maker():
    """``(name, make)`` of :func:`forward` as a C function (``_forward_c``)."""
    spec = abi.FORWARD
    return spec.name, _maker(_forward_c, spec.name, spec, _kernel=inlined(forward))


def all_finite_maker(dtype):
    """``(name, make)`` of ``all_finite`` for ``dtype`` as a C function
    (``_all_finite_c``)."""
    nb, _ = _numba_dtype(dtype)
    name = abi.all_finite_name(dtype)
    kernel = inlined(all_finite)
    return name, _maker(_all_finite_c, name, abi.ALL_FINITE, nb, _kernel=kernel)


@functools.cache
def makers():
    """``{name: make}`` for every C kernel of this module: the epoch and the
    forward, and each setting's kernels for every activation of
    :data:`ACTIVATIONS`, every loss, optimizer, output and dtype (what
    ``fastnet compile`` compiles ahead of time)."""
    found = dict([epoch_maker(), forward_maker()])
    for dtype in ("float32", "float64"):
        for activation in ACTIVATIONS:
            for loss in LOSSES:
                for optimizer in OPTIMIZERS:
                    found.update(epoch_makers(activation, loss, optimizer, dtype))
            for out_kind in abi.OUT_KINDS:
                found.update(forward_makers(activation, out_kind, dtype))
    found.pop(None, None)
    return found
