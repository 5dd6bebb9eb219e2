"""``Dropout``: inverted dropout, seeded, the identity at inference."""

import numbers

from .. import kernels
from .._runtime.checks import as_float_array, check_shape, make_generator
from .base import Module


class Dropout(Module):
    r"""Zero each element with probability ``p`` while training and scale the rest
    by :math:`1/(1-p)`; with ``train=False`` (or ``p == 0``) the identity.

    Draws come from ``numpy.random.default_rng(random_state)``; its state is
    ``self.rng.bit_generator.state``, saved and restored by training checkpoints.
    Backward: :math:`dx = dy\,[u \ge p]/(1-p)` with the same draws.

    Tangents: dropout is linear in ``x`` for a fixed mask, so the tangent of the
    forward applies the last forward's mask to :math:`t_x`, and the tangent of the
    backward is the backward of :math:`t_{dy}` (no second-order term).
    """

    _transient = ("_u", "_shape")

    def __init__(self, p=0.5, random_state=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
            raise ValueError(f"Dropout p must be a number in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = make_generator(random_state)
        self._u = None
        self._shape = None

    def forward(self, x, train=True):
        x = as_float_array(x, "Dropout input")
        self._shape = x.shape
        if not train or self.p == 0.0:
            self._u = None
            return x
        u = self._buffer("u", x.shape, x.dtype)
        self.rng.random(out=u.reshape(-1), dtype=x.dtype)
        out = self._buffer("y", x.shape, x.dtype)
        kernel = kernels.pick(kernels.dropout_forward, x.size)
        kernel(x.reshape(-1), u.reshape(-1), self.p, out.reshape(-1))
        self._u = u
        return out

    def backward(self, dy):
        self._require_forward(self._shape)
        dy = as_float_array(dy, "Dropout output gradient")
        check_shape(dy, self._shape, "Dropout output gradient")
        if self._u is None:
            return dy
        u = self._u
        dy = dy.astype(u.dtype, copy=False)
        dx = self._buffer("dx", u.shape, u.dtype)
        kernel = kernels.pick(kernels.dropout_backward, u.size)
        kernel(dy.reshape(-1), u.reshape(-1), self.p, dx.reshape(-1))
        return dx

    def tangent_forward(self, tx, *, tparams=None):
        self._require_forward(self._shape)
        dtype = self._u.dtype if self._u is not None else None
        tx = self._check_tangent(tx, self._shape, dtype, "input tangent")
        return tx if tx is None else self._masked(tx, "ty", kernels.dropout_forward)

    def tangent_backward(self, dy, ddy, hgrads=None, need_dx=True):
        self._require_forward(self._shape)
        dtype = self._u.dtype if self._u is not None else None
        dy, ddy = self._check_tangent_grads(dy, ddy, self._shape, dtype)
        if not need_dx:
            return None, None
        dx = None if dy is None else self._masked(dy, "dx", kernels.dropout_backward)
        return dx, self._masked(ddy, "ddx", kernels.dropout_backward)

    def _masked(self, t, key, twins):
        """``t`` through the last forward's mask into the buffer ``key`` (``t``
        itself at inference or with ``p == 0``)."""
        if self._u is None:
            return t
        u = self._u
        out = self._buffer(key, u.shape, u.dtype)
        t = self._unaliased(t, out)
        kernels.pick(twins, u.size)(
            t.reshape(-1), u.reshape(-1), self.p, out.reshape(-1)
        )
        return out

    def __repr__(self):
        return f"Dropout(p={self.p})"
