"""``Softmax`` over the last axis."""

from .. import kernels
from .._checks import as_float_array, check_shape
from .base import Module


class Softmax(Module):
    r""":math:`p = e^{x - \max x} / \sum e^{x - \max x}` along the last axis.

    Backward is the full Jacobian-vector product
    :math:`dx = p \odot (dy - \sum_k dy_k p_k)`, not the diagonal :math:`p(1-p)`.
    """

    _transient = ("_p",)

    def __init__(self):
        super().__init__()
        self._p = None

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
