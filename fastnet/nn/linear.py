"""``Linear``: the affine layer ``y = x @ W + b``."""

import numpy as np
from sklearn.utils import check_random_state

from .. import kernels
from .._runtime.checks import (
    as_float_array,
    check_float_dtype,
    check_ndim,
    check_positive_int,
    check_shape,
)
from .._runtime.pool import in_shares
from .base import Module


class Linear(Module):
    r"""Affine layer :math:`Y = X W + b` with ``W`` of shape ``(n_in, n_out)``.

    Parameters ``"W"`` and ``"b"`` are initialised as scikit-learn's MLP does
    (Glorot uniform): both drawn from :math:`U(-a, a)`,
    :math:`a = \sqrt{6 / (n_{in} + n_{out})}`, from ``random_state``.

    Backward: :math:`dX = dY W^\top`, :math:`dW = X^\top dY`, :math:`db = \sum_i dY_i`.

    Tangents (for Hessian-vector products): :math:`T_Y = T_X W + X T_W + t_b`, and
    the backward's :math:`T_{dX} = T_{dY} W^\top + dY T_W^\top`,
    :math:`T_{dW} = X^\top T_{dY} + T_X^\top dY`, :math:`T_{db} = \sum_i T_{dY,i}`.
    """

    _transient = ("_x", "_tx", "_tw")
    #: training products in this many shares of rows (``kernels.linear.share``) on
    #: fastnet's pool, as the compiled epoch computes them on its threads (its
    #: shares: by the network, the batch and the process's cores): set by the fits
    #: that train this layer by modules, so both paths give the same bits; 1: whole
    shares = 1

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
        self._tx = None
        self._tw = None

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
        W, b = self.params["W"], self.params["b"]
        if train and self.shares > 1:
            forward = kernels.linear_forward_share
            in_shares(
                lambda part: forward(x, W, b, out, part, self.shares), self.shares
            )
        else:
            kernels.linear_forward(x, W, b, out)
        self._x = x
        return out

    def backward(self, dy):
        self._require_forward(self._x)
        dy = as_float_array(dy, "Linear output gradient", self.dtype)
        check_shape(dy, (self._x.shape[0], self.n_out), "Linear output gradient")
        self._check_params()
        dx = self._buffer("dx", self._x.shape, self.dtype)
        dy = self._unaliased(dy, dx)
        x, W, dW, db = self._x, self.params["W"], self.grads["W"], self.grads["b"]
        if self.shares > 1:
            backward = kernels.linear_backward_share
            in_shares(
                lambda part: backward(dy, x, W, dx, dW, part, self.shares), self.shares
            )
            if db.size:
                kernels.column_sum(dy, db)
        else:
            kernels.linear_backward(dy, x, W, dx, dW, db)
        return dx

    def tangent_forward(self, tx, *, tparams):
        self._require_forward(self._x)
        x = self._x
        tx = self._check_tangent(tx, x.shape, self.dtype, "input tangent")
        tw, tb = self._param_tangents(tparams)
        self._check_params()
        out = self._buffer("ty", (x.shape[0], self.n_out), self.dtype)
        tx_ = self._empty() if tx is None else self._unaliased(tx, out)
        kernels.linear_forward_tangent(x, self.params["W"], tx_, tw, tb, out)
        self._tx, self._tw = tx_, tw
        return out

    def tangent_backward(self, dy, ddy, hgrads, need_dx=True):
        self._require_forward(self._x, self._tw)
        x, shape = self._x, (self._x.shape[0], self.n_out)
        dy, ddy = self._check_tangent_grads(dy, ddy, shape, self.dtype)
        hw, hb = self._param_tangents(hgrads, "hgrads", writeable=True)
        self._check_params()
        dx = ddx = self._empty()
        if need_dx:
            if dy is not None:
                dx = self._buffer("dx", x.shape, self.dtype)
            ddx = self._buffer("ddx", x.shape, self.dtype)
        dy_ = self._empty(self.n_out) if dy is None else self._unaliased(dy, dx)
        ddy = self._unaliased(ddy, ddx)
        kernels.linear_backward_tangent(
            dy_, x, self.params["W"], ddy, self._tx, self._tw, dx, ddx, hw, hb
        )
        if not need_dx:
            return None, None
        return (None if dy is None else dx), ddx

    def _empty(self, width=None):
        """A (0, width) array: the kernels' marker for an absent operand."""
        width = self.n_in if width is None else width
        return self._buffer(f"empty{width}", (0, width), self.dtype)

    def _param_tangents(self, arrays, what="tparams", writeable=False):
        """``(arrays["W"], arrays["b"])``, checked: the kernels trust their shapes."""
        if arrays is None or set(arrays) != {"W", "b"}:
            got = None if arrays is None else sorted(arrays)
            raise ValueError(f"Linear {what} must have the keys ['W', 'b'], got {got}")
        out = []
        for pname, shape in (("W", (self.n_in, self.n_out)), ("b", (self.n_out,))):
            arr = arrays[pname]
            if not writeable:
                arr = as_float_array(arr, f"Linear {what}[{pname!r}]", self.dtype)
            ok = (
                isinstance(arr, np.ndarray)
                and arr.shape == shape
                and arr.dtype == self.dtype
                and arr.flags.c_contiguous
                and (arr.flags.writeable or not writeable)
            )
            if not ok:
                raise ValueError(
                    f"Linear {what}[{pname!r}] must be a C-contiguous {self.dtype} "
                    f"array of shape {shape}; got "
                    f"{getattr(arr, 'dtype', type(arr).__name__)} "
                    f"{getattr(arr, 'shape', '')}"
                )
            out.append(arr)
        return out

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
