r"""Fused losses: one pass computes the loss and writes its gradient.

Every loss takes per-sample weights ``w`` of shape ``(n,)``, or an empty array for
none, and normalises by :math:`W = \sum_i w_i` (``n`` when unweighted), as
scikit-learn's weighted losses do. Each returns the loss as a float64 and writes the
gradient with respect to its first argument into ``grad``; sums accumulate in
float64 whatever the dtype of the arrays.

Every loss takes ``(z, target, w, grad, eps)``. For the cross-entropies, ``eps > 0``
reports the loss as scikit-learn's ``log_loss`` and ``binary_log_loss`` do, with each
probability clipped to ``[eps, 1 - eps]`` (eps: the dtype's machine epsilon there):
each term :math:`-\log p` becomes :math:`\min(\max(-\log p, -\log(1-\epsilon)),
-\log\epsilon)`. Only the reported value is clipped: the gradient stays the exact
``p − t``, as scikit-learn's is. ``eps = 0`` reports the exact loss (PyTorch's).
The regression losses have no probabilities and ignore ``eps``.

Each kernel is a (serial, parallel) pair over rows; see ``kernels._config.jit_twins``.
"""

import math

from numba import prange

from ._config import jit, jit_twins
from .softmax import row_exp, row_max


@jit
def _weight_total(w, n):
    r""":math:`W = \sum_i w_i`, or ``n`` when ``w`` is empty."""
    if w.size == 0:
        return float(n)
    total = 0.0
    for i in range(w.size):
        total += w[i]
    return total


@jit
def _clip_bounds(eps):
    r"""``(lo, hi)``: the bounds of a clipped :math:`-\log p`, :math:`p \in [\epsilon,
    1 - \epsilon]`; ``(0, inf)`` for ``eps = 0`` (no clipping)."""
    if eps > 0.0:
        return -math.log1p(-eps), -math.log(eps)
    return 0.0, math.inf


@jit
def _clipped(v, lo, hi):
    r""":math:`-\log p` (``v``) with ``p`` clipped: ``min(max(v, lo), hi)``, where a
    NaN stays NaN (a diverged fit must still see it)."""
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


@jit
def _clipped_binary_log_loss(p, t, eps):
    r""":math:`-(t\log p + (1 - t)\log(1 - p))`, ``p`` clipped to ``[eps, 1 - eps]``
    first and a term whose factor is 0 left out (``xlogy``): scikit-learn's
    ``binary_log_loss`` of one element."""
    p = min(max(p, eps), 1.0 - eps)
    loss = 0.0
    if t != 0.0:
        loss -= t * math.log(p)
    if t != 1.0:
        loss -= (1.0 - t) * math.log(1.0 - p)
    return loss


@jit
def _row_logsumexp(z, i):
    r"""``(m, s)``: :math:`\log\sum_k e^{z_{ik}} = m + \log s`, ``m`` the row max."""
    m = row_max(z, i)
    s = 0.0
    for j in range(z.shape[1]):
        s += math.exp(z[i, j] - m)
    return m, s


@jit
def _row_cross_entropy(z, t, i, lse, lo, hi):
    r"""``(row, mass)``: :math:`\sum_k t_{ik}(\mathrm{lse} - z_{ik})` over the classes
    with :math:`t_{ik} \neq 0` (each :math:`-\log p` clipped to ``[lo, hi]``), and
    :math:`\sum_k t_{ik}`.

    A function of its own, not a loop inside the ``prange`` body: an accumulator that
    one branch of an inner loop leaves unchanged becomes, on Python 3.12+, a pair of
    SSA copies that refer to each other, and Numba's parfor reduction analysis stops
    at that cycle (``AssertionError: unexpected cycle in lookup()``, numba#10132).
    """
    row = 0.0
    mass = 0.0
    for j in range(z.shape[1]):
        if t[i, j] != 0.0:
            row += t[i, j] * _clipped(lse - z[i, j], lo, hi)
            mass += t[i, j]
    return row, mass


@jit
def _row_softmax_tangent(z, dz, i, scale, out):
    r"""``out[i] = scale * p ⊙ (dz[i] - p · dz[i])``, :math:`p = \mathrm{softmax}(z_i)`:
    row ``i`` of :math:`(\mathrm{diag}(p) - p p^\top)\,dz`, scaled."""
    m, s = _row_logsumexp(z, i)
    inv = 1.0 / s
    d = 0.0
    for j in range(z.shape[1]):
        d += math.exp(z[i, j] - m) * inv * dz[i, j]
    for j in range(z.shape[1]):
        out[i, j] = scale * math.exp(z[i, j] - m) * inv * (dz[i, j] - d)


def _softmax_cross_entropy(z, y, w, grad, eps):
    r"""Softmax cross-entropy with integer labels ``y`` (0 <= y < k), from logits ``z``.

    .. math:: L = \frac1W \sum_i w_i \big(\mathrm{logsumexp}(z_i) - z_{i y_i}\big),
              \qquad \frac{\partial L}{\partial z_i} = \frac{w_i}{W}(p_i - e_{y_i})

    with :math:`p_i = \mathrm{softmax}(z_i)`: the ``p − y`` gradient, exact and
    finite for logits of any finite size (log-sum-exp with the row max taken out).
    ``eps > 0``: each row's term clipped as scikit-learn's ``log_loss``.
    """
    n, k = z.shape
    total = _weight_total(w, n)
    lo, hi = _clip_bounds(eps)
    loss = 0.0
    for i in prange(n):
        scale = (w[i] if w.size > 0 else 1.0) / total
        zy = z[i, y[i]]  # read before grad (which may be z) is written
        m, s = row_exp(z, i, grad)  # grad[i] = e^(z[i] - m): one exp an element
        loss += scale * _clipped(m + math.log(s) - zy, lo, hi)
        inv = 1.0 / s
        for j in range(k):
            grad[i, j] = scale * grad[i, j] * inv
        grad[i, y[i]] -= scale
    return loss


def _softmax_cross_entropy_tangent(z, y, w, dz, out):
    r"""Hessian-vector product of :func:`_softmax_cross_entropy` in ``z``: per row,

    .. math:: \frac{\partial^2 L}{\partial z_i^2}\,dz_i
              = \frac{w_i}{W}\big(\mathrm{diag}(p_i) - p_i p_i^\top\big)\,dz_i
              = \frac{w_i}{W}\, p_i \odot (dz_i - p_i \cdot dz_i)

    (the labels ``y`` do not enter). Arguments: the loss's ``(z, y, w)``, then the
    direction ``dz``, then ``out``.
    """
    n = z.shape[0]
    total = _weight_total(w, n)
    for i in prange(n):
        scale = (w[i] if w.size > 0 else 1.0) / total
        _row_softmax_tangent(z, dz, i, scale, out)


def _softmax_cross_entropy_dense(z, t, w, grad, eps):
    r"""Softmax cross-entropy with probability (or one-hot) targets ``t`` (n, k).

    .. math:: L = \frac1W \sum_i w_i \sum_k t_{ik}
              \big(\mathrm{logsumexp}(z_i) - z_{ik}\big),
              \qquad \frac{\partial L}{\partial z_{ik}}
              = \frac{w_i}{W}\Big(p_{ik} \sum_l t_{il} - t_{ik}\Big)

    which is ``p − t`` when the rows of ``t`` sum to 1. Classes with ``t = 0`` add
    nothing to the loss, even where ``z = -inf`` (as ``xlogy`` would). ``eps > 0``:
    each :math:`-\log p_{ik}` clipped as scikit-learn's ``log_loss``.
    """
    n, k = z.shape
    total = _weight_total(w, n)
    lo, hi = _clip_bounds(eps)
    loss = 0.0
    for i in prange(n):
        scale = (w[i] if w.size > 0 else 1.0) / total
        m, s = _row_logsumexp(z, i)
        row, mass = _row_cross_entropy(z, t, i, m + math.log(s), lo, hi)
        loss += scale * row
        inv = 1.0 / s
        for j in range(k):
            grad[i, j] = scale * (math.exp(z[i, j] - m) * inv * mass - t[i, j])
    return loss


def _softmax_cross_entropy_dense_tangent(z, t, w, dz, out):
    r"""Hessian-vector product of :func:`_softmax_cross_entropy_dense` in ``z``:

    .. math:: \frac{w_i}{W} \Big(\sum_l t_{il}\Big)
              \big(\mathrm{diag}(p_i) - p_i p_i^\top\big)\,dz_i

    (the gradient is :math:`\frac{w_i}{W}(p_i \sum_l t_{il} - t_i)`, ``t`` constant).
    """
    n, k = z.shape
    total = _weight_total(w, n)
    for i in prange(n):
        mass = 0.0
        for j in range(k):
            mass += t[i, j]
        scale = (w[i] if w.size > 0 else 1.0) / total * mass
        _row_softmax_tangent(z, dz, i, scale, out)


def _sigmoid_binary_cross_entropy(z, t, w, grad, eps):
    r"""Binary cross-entropy of :math:`\sigma(z)` against targets ``t`` in [0, 1],
    summed over the ``k`` outputs (multi-label), weighted mean over rows.

    .. math:: \ell(z, t) = \max(z, 0) - z t + \log(1 + e^{-|z|}),
              \qquad \frac{\partial L}{\partial z_{ik}}
              = \frac{w_i}{W}(\sigma(z_{ik}) - t_{ik})

    The log-sigmoid form never takes ``log(0)`` and never overflows. ``eps > 0``:
    scikit-learn's ``binary_log_loss`` of :math:`p = \sigma(z)` rounded to the
    dtype (its ``1 - p`` loses the digits of a ``p`` near 1, which on unscaled
    data moves the loss by 1e-4 relative), clipped to ``[eps, 1 - eps]``.
    """
    n, k = z.shape
    total = _weight_total(w, n)
    clip = eps > 0.0
    loss = 0.0
    for i in prange(n):
        scale = (w[i] if w.size > 0 else 1.0) / total
        row = 0.0
        for j in range(k):
            v = z[i, j]
            e = math.exp(-abs(v))  # in (0, 1]: no overflow for any z
            sig = 1.0 / (1.0 + e) if v >= 0.0 else e / (1.0 + e)
            if clip:
                grad[i, j] = sig  # rounded to the dtype, as scikit-learn's p is
                row += _clipped_binary_log_loss(grad[i, j], t[i, j], eps)
            else:
                row += max(v, 0.0) - v * t[i, j] + math.log1p(e)
            grad[i, j] = scale * (sig - t[i, j])
        loss += scale * row
    return loss


def _sigmoid_binary_cross_entropy_tangent(z, t, w, dz, out):
    r"""Hessian-vector product of :func:`_sigmoid_binary_cross_entropy` in ``z``
    (diagonal: each output's loss depends on its own logit only):

    .. math:: \frac{w_i}{W}\,\sigma(z_{ik})\,(1 - \sigma(z_{ik}))\,dz_{ik}

    computed as :math:`e/(1+e)^2`, :math:`e = e^{-|z|}`, which never overflows.
    """
    n, k = z.shape
    total = _weight_total(w, n)
    for i in prange(n):
        scale = (w[i] if w.size > 0 else 1.0) / total
        for j in range(k):
            e = math.exp(-abs(z[i, j]))
            q = 1.0 + e
            out[i, j] = scale * e / (q * q) * dz[i, j]


def _squared_error(p, t, w, grad, eps):
    r"""Mean squared error over all ``n * k`` elements.

    .. math:: L = \frac{1}{W k} \sum_i w_i \sum_j (p_{ij} - t_{ij})^2,
              \qquad \frac{\partial L}{\partial p_{ij}}
              = \frac{2 w_i}{W k}(p_{ij} - t_{ij})

    Unweighted, this is ``mean((p − t)²)`` with gradient ``2 (p − t) / size``.
    ``eps`` is not used.
    """
    n, k = p.shape
    total = _weight_total(w, n) * k
    loss = 0.0
    for i in prange(n):
        scale = (w[i] if w.size > 0 else 1.0) / total
        row = 0.0
        for j in range(k):
            d = p[i, j] - t[i, j]
            row += d * d
            grad[i, j] = 2.0 * scale * d
        loss += scale * row
    return loss


def _squared_error_tangent(p, t, w, dz, out):
    r"""Hessian-vector product of :func:`_squared_error` in ``p``:
    :math:`\frac{2 w_i}{W k}\,dz_{ij}` (a constant diagonal)."""
    n, k = p.shape
    total = _weight_total(w, n) * k
    for i in prange(n):
        scale = (w[i] if w.size > 0 else 1.0) / total
        for j in range(k):
            out[i, j] = 2.0 * scale * dz[i, j]


def _poisson_exp(z, t, w, grad, eps):
    r"""Half Poisson deviance of :math:`\mu = e^{z}` against counts ``t >= 0``, mean
    over all ``n * k`` elements (the regressor's ``loss='poisson'``, exp output).

    .. math:: \ell = t \log(t / \mu) - t + \mu = e^{z} - t z + t\log t - t,
              \qquad \frac{\partial L}{\partial z_{ij}}
              = \frac{w_i}{W k}(e^{z_{ij}} - t_{ij})

    with :math:`0 \log 0 = 0`; the loss is 0 exactly when :math:`\mu = t`. ``eps``
    is not used (scikit-learn does not clip it either).
    """
    n, k = z.shape
    total = _weight_total(w, n) * k
    loss = 0.0
    for i in prange(n):
        scale = (w[i] if w.size > 0 else 1.0) / total
        row = 0.0
        for j in range(k):
            mu = math.exp(z[i, j])
            y = t[i, j]
            row += mu - y * z[i, j] - y
            if y > 0.0:
                row += y * math.log(y)
            grad[i, j] = scale * (mu - y)
        loss += scale * row
    return loss


def _poisson_exp_tangent(z, t, w, dz, out):
    r"""Hessian-vector product of :func:`_poisson_exp` in ``z``:
    :math:`\frac{w_i}{W k}\,e^{z_{ij}}\,dz_{ij}` (diagonal)."""
    n, k = z.shape
    total = _weight_total(w, n) * k
    for i in prange(n):
        scale = (w[i] if w.size > 0 else 1.0) / total
        for j in range(k):
            out[i, j] = scale * math.exp(z[i, j]) * dz[i, j]


softmax_cross_entropy = jit_twins(_softmax_cross_entropy)
softmax_cross_entropy_dense = jit_twins(_softmax_cross_entropy_dense)
sigmoid_binary_cross_entropy = jit_twins(_sigmoid_binary_cross_entropy)
squared_error = jit_twins(_squared_error)
poisson_exp = jit_twins(_poisson_exp)

# The tangents of the gradients (Hessian-vector products in the logits), each
# ``(z, target, w, dz, out)``: the loss's arguments, the direction, the output.
softmax_cross_entropy_tangent = jit_twins(_softmax_cross_entropy_tangent)
softmax_cross_entropy_dense_tangent = jit_twins(_softmax_cross_entropy_dense_tangent)
sigmoid_binary_cross_entropy_tangent = jit_twins(_sigmoid_binary_cross_entropy_tangent)
squared_error_tangent = jit_twins(_squared_error_tangent)
poisson_exp_tangent = jit_twins(_poisson_exp_tangent)
