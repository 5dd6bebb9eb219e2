"""``Linear``: the affine layer ``y = x @ W + b``."""

import numpy as np
from sklearn.utils import check_random_state

from .. import kernels
from .._checks import (
    as_float_array,
    check_float_dtype,
    check_ndim,
    check_positive_int,
    check_shape,
)
from .base import Module


class Linear(Module):
    r"""Affine layer :math:`Y = X W + b` with ``W`` of shape ``(n_in, n_out)``.

    Parameters ``"W"`` and ``"b"`` are initialised as scikit-learn's MLP does
    (Glorot uniform): both drawn from :math:`U(-a, a)`,
    :math:`a = \sqrt{6 / (n_{in} + n_{out})}`, from ``random_state``.

    Backward: :math:`dX = dY W^\top`, :math:`dW = X^\top dY`, :math:`db = \sum_i dY_i`.
    """

    _transient = ("_x",)

    def __init__(self, n_in, n_out, dtype=np.float32, random_state=None):
        super().__init__()
        self.n_in = check_positive_int(n_in, "n_in")
        self.n_out = check_positive_int(n_out, "n_out")
        self.dtype = check_float_dtype(dtype)
        rng = check_random_state(random_state)
        bound = np.sqrt(6.0 / (self.n_in + self.n_out))
        w = rng.uniform(-bound, bound, (self.n_in, self.n_out))
        b = rng.uniform(-bound, bound, self.n_out)
        self.params = {"W": w.astype(self.dtype), "b": b.astype(self.dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x = None

    @classmethod
    def from_params(cls, W, b):
        """A layer over the given arrays (shared, not copied): ``W`` (n_in, n_out)
        and ``b`` (n_out,), C-contiguous float32 or float64 of one dtype."""
        W, b = np.asarray(W), np.asarray(b)
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ValueError(
                f"Linear.from_params needs W (n_in, n_out) and b (n_out,); got shapes "
                f"{W.shape} and {b.shape}"
            )
        layer = cls(W.shape[0], W.shape[1], dtype=W.dtype, random_state=0)
        layer.params = {"W": W, "b": b}
        layer._check_params()
        return layer

    def forward(self, x, train=True):
        x = as_float_array(x, "Linear input", self.dtype)
        check_ndim(x, (2,), "Linear input")
        if x.shape[1] != self.n_in:
            raise ValueError(
                f"Linear input has shape {x.shape}, expected (n, {self.n_in})"
            )
        self._check_params()
        out = self._buffer("y", (x.shape[0], self.n_out), self.dtype, fresh=not train)
        x = self._unaliased(x, out)
        kernels.linear_forward(x, self.params["W"], self.params["b"], out)
        self._x = x
        return out

    def backward(self, dy):
        self._require_forward(self._x)
        dy = as_float_array(dy, "Linear output gradient", self.dtype)
        check_shape(dy, (self._x.shape[0], self.n_out), "Linear output gradient")
        self._check_params()
        dx = self._buffer("dx", self._x.shape, self.dtype)
        dy = self._unaliased(dy, dx)
        kernels.linear_backward(
            dy, self._x, self.params["W"], dx, self.grads["W"], self.grads["b"]
        )
        return dx

    def _check_params(self):
        # Parameters can be replaced by the user (or a loader) and the kernel
        # trusts their shapes, so they are checked on every call. Parameters may be
        # read-only (inference from a memory map); gradients are written.
        for name, shape in (("W", (self.n_in, self.n_out)), ("b", (self.n_out,))):
            for arr, store in (
                (self.params[name], "params"),
                (self.grads[name], "grads"),
            ):
                ok = (
                    isinstance(arr, np.ndarray)
                    and arr.shape == shape
                    and arr.dtype == self.dtype
                    and arr.flags.c_contiguous
                    and (arr.flags.writeable or store == "params")
                )
                if not ok:
                    raise ValueError(
                        f"Linear {store}[{name!r}] must be a C-contiguous {self.dtype} "
                        f"array of shape {shape}; got "
                        f"{getattr(arr, 'dtype', type(arr).__name__)} "
                        f"{getattr(arr, 'shape', '')}"
                    )

    def __repr__(self):
        return f"Linear({self.n_in}, {self.n_out}, dtype={self.dtype.name})"
