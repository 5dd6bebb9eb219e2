"""``Softmax`` over the last axis."""

from .. import kernels
from .._runtime.checks import as_float_array, check_shape
from .base import Module


class Softmax(Module):
    r""":math:`p = e^{x - \max x} / \sum e^{x - \max x}` along the last axis.

    Backward is the full Jacobian-vector product
    :math:`dx = p \odot (dy - \sum_k dy_k p_k)`, not the diagonal :math:`p(1-p)`.

    Tangents: :math:`t_p = p \odot (t_x - \sum_k t_{x,k} p_k)` (the Jacobian is
    symmetric, so this is the backward applied to :math:`t_x`), and the backward's
    :math:`t_{dx} = t_p \odot (dy - s) + p \odot (t_{dy} - t_s)`,
    :math:`s = \sum_k dy_k p_k`, :math:`t_s = \sum_k (t_{dy,k} p_k + dy_k t_{p,k})`.
    """

    _transient = ("_p", "_tx")

    def __init__(self):
        super().__init__()
        self._p = None
        self._tx = None

    def forward(self, x, train=True):
        x = as_float_array(x, "Softmax input")
        if x.ndim == 0:
            raise ValueError("Softmax input must have at least one axis, got a scalar")
        out = self._buffer("y", x.shape, x.dtype, fresh=not train)
        if x.size:
            rows = x.reshape(-1, x.shape[-1])
            kernels.pick(kernels.softmax_forward, x.size)(rows, out.reshape(rows.shape))
        self._p = out
        return out

    def backward(self, dy):
        self._require_forward(self._p)
        p = self._p
        dy = as_float_array(dy, "Softmax output gradient", p.dtype)
        check_shape(dy, p.shape, "Softmax output gradient")
        dx = self._buffer("dx", p.shape, p.dtype)
        if p.size:
            rows = p.reshape(-1, p.shape[-1])
            kernel = kernels.pick(kernels.softmax_backward, p.size)
            kernel(dy.reshape(rows.shape), rows, dx.reshape(rows.shape))
        return dx

    def tangent_forward(self, tx, *, tparams=None):
        self._require_forward(self._p)
        p = self._p
        self._tx = tx = self._check_tangent(tx, p.shape, p.dtype, "input tangent")
        if tx is None:
            return None
        ty = self._buffer("ty", p.shape, p.dtype)
        self._tx = tx = self._unaliased(tx, ty)
        if p.size:
            self._rows_backward(tx, ty)
        return ty

    def tangent_backward(self, dy, ddy, hgrads=None, need_dx=True):
        self._require_forward(self._p)
        p = self._p
        dy, ddy = self._check_tangent_grads(dy, ddy, p.shape, p.dtype)
        if not need_dx:
            return None, None
        ddx = self._buffer("ddx", p.shape, p.dtype)
        ddy = self._unaliased(ddy, ddx)
        dx = None
        if dy is not None:
            dx = self._buffer("dx", p.shape, p.dtype)
            dy = self._unaliased(self._unaliased(dy, dx), ddx)
            ddy = self._unaliased(ddy, dx)
        if not p.size:
            return dx, ddx
        if dy is None or self._tx is None:  # Gauss-Newton, or no input tangent
            if dy is not None:
                self._rows_backward(dy, dx)
            self._rows_backward(ddy, ddx)
            return dx, ddx
        rows = p.reshape(-1, p.shape[-1])
        kernel = kernels.pick(kernels.softmax_backward_tangent, p.size)
        kernel(
            dy.reshape(rows.shape),
            rows,
            ddy.reshape(rows.shape),
            self._tx.reshape(rows.shape),
            dx.reshape(rows.shape),
            ddx.reshape(rows.shape),
        )
        return dx, ddx

    def _rows_backward(self, dy, out):
        rows = self._p.reshape(-1, self._p.shape[-1])
        kernel = kernels.pick(kernels.softmax_backward, rows.size)
        kernel(dy.reshape(rows.shape), rows, out.reshape(rows.shape))
