"""``Einsum``: an einsum equation as a module, usable in a ``Graph``."""

import numpy as np

from .._runtime.checks import FLOAT_DTYPES
from .base import Module
from .einsum_plan import einsum, einsum_vjp


class Einsum(Module):
    r"""``forward(*xs)`` = ``fastnet.einsum(equation, *xs)``; ``backward(dy)`` returns
    one gradient per input (a tuple), from :func:`fastnet.einsum_vjp`.

    Learned weights enter as ``Graph.param`` nodes, e.g. a bilinear layer
    ``g.add(Einsum("bi,ij,bj->b"), x, g.param("W", w0), y)``.

    Tangents: an einsum is linear in each operand, so by the product rule
    :math:`t_y = \sum_i \mathrm{einsum}(x_1, \dots, t_i, \dots, x_n)`, and the
    tangent of operand ``i``'s gradient is the VJP of :math:`t_{dy}` plus, for every
    other operand ``j``, operand ``i``'s VJP of ``dy`` with :math:`x_j` replaced by
    :math:`t_j` (the cross terms of a bilinear form).
    """

    _transient = ("_xs", "_txs")

    def __init__(self, equation):
        super().__init__()
        if not isinstance(equation, str):
            raise TypeError(f"Einsum equation must be a string, got {equation!r}")
        self.equation = equation
        self._xs = None
        self._txs = None

    def forward(self, *xs, train=True):
        y = einsum(self.equation, *xs)
        self._xs = xs
        return y

    def backward(self, dy):
        self._require_forward(self._xs)
        return einsum_vjp(self.equation, self._xs, dy)

    def tangent_forward(self, *txs, tparams=None):
        self._require_forward(self._xs)
        xs = self._xs
        if len(txs) != len(xs):
            raise ValueError(
                f"Einsum tangent_forward got {len(txs)} tangents for {len(xs)} operands"
            )
        self._txs = txs = tuple(
            self._check_tangent(t, np.shape(x), _dtype(x), f"operand {i} tangent")
            for i, (t, x) in enumerate(zip(txs, xs, strict=True))
        )
        ty = None
        for i, t in enumerate(txs):
            if t is None:
                continue
            term = einsum(self.equation, *xs[:i], t, *xs[i + 1 :])
            ty = term if ty is None else np.add(ty, term, out=ty)
        return ty

    def tangent_backward(self, dy, ddy, hgrads=None, need_dx=True):
        self._require_forward(self._xs, self._txs)
        xs, txs = self._xs, self._txs
        dxs = (None,) * len(xs) if dy is None else einsum_vjp(self.equation, xs, dy)
        ddxs = list(einsum_vjp(self.equation, xs, ddy))
        if dy is not None:
            for j, t in enumerate(txs):
                if t is None:
                    continue
                cross = einsum_vjp(self.equation, (*xs[:j], t, *xs[j + 1 :]), dy)
                for i, g in enumerate(cross):
                    if i != j:
                        ddxs[i] = np.add(ddxs[i], g, out=ddxs[i])
        return tuple(dxs), tuple(ddxs)

    def __repr__(self):
        return f"Einsum({self.equation!r})"


def _dtype(x):
    dt = np.asarray(x).dtype
    return dt if dt in FLOAT_DTYPES else np.dtype(np.float64)
