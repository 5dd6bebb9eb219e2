"""Loss modules: ``forward(pred, target, sample_weight=None) -> float`` and
``backward() -> d pred``.

Each wraps one fused kernel of ``fastnet.kernels.losses`` that computes the loss and
its gradient in one pass; ``backward`` returns that gradient (a reused buffer).
Per-sample weights normalise by their sum, as scikit-learn's weighted losses do.

A training loop checks the values of its targets and weights once with
:meth:`Loss.prepare` and then calls :meth:`Loss.forward_prepared` per batch, which
checks only shapes and dtypes (cheap, and allocation-free) before the kernel.
"""

import numpy as np

from .. import kernels
from .._runtime.checks import as_float_array, check_ndim, check_shape


class Loss:
    """Validates ``pred``, ``target`` and ``sample_weight``, then runs the kernel."""

    #: the name in ``fastnet.kernels`` of its (serial, parallel) kernel pair
    kernel = None
    #: the name of the kernel pair of the gradient's tangent (the Hessian in
    #: ``pred`` times a direction), ``(pred, target, weights, dz, out)``
    tangent_kernel = None
    pred_ndims = (1, 2)
    #: report the loss with probabilities clipped (the log-losses' ``clip``)
    clip = False

    def __init__(self):
        self._grad = {}
        self._last = None
        self._no_weights = {}
        self._inputs = None

    def __getstate__(self):
        # settings only: buffers and the last gradient are rebuilt by forward
        state = self.__dict__.copy()
        state.update(_grad={}, _last=None, _no_weights={}, _inputs=None)
        return state

    def __call__(self, pred, target, sample_weight=None):
        return self.forward(pred, target, sample_weight)

    def forward(self, pred, target, sample_weight=None):
        z = self._check_pred(pred)
        t, w = self.prepare(target, z.shape, z.dtype, sample_weight)
        return self.forward_prepared(z, t, w)

    def prepare(self, target, pred_shape, dtype, sample_weight=None):
        """Check ``target`` and ``sample_weight`` for predictions of ``pred_shape``.

        Returns ``(target, weights)`` as the kernel takes them (an empty weight
        array when there are none); rows can be taken from both for minibatches.
        """
        dtype = np.dtype(dtype)
        t = self._target(np.asarray(target), tuple(pred_shape), dtype)
        return t, self._weights(sample_weight, pred_shape[0], dtype)

    def forward_prepared(self, pred, target, weights):
        """The loss of ``pred`` against a target from :meth:`prepare` (or its rows)."""
        z = pred
        name = type(self).__name__
        if not (isinstance(z, np.ndarray) and z.flags.c_contiguous and z.ndim):
            raise ValueError(f"{name} pred must be a C-contiguous array")
        n = z.shape[0]
        z2 = z.reshape(n, -1)
        want = (n,) if target.ndim == 1 and target.dtype.kind == "i" else z2.shape
        if (
            target.shape != want
            or target.dtype.kind not in "if"
            or (target.dtype.kind == "f" and target.dtype != z.dtype)
            or not target.flags.c_contiguous
            or weights.shape not in ((0,), (n,))
            or weights.dtype != z.dtype
        ):
            raise ValueError(
                f"{name}: prepared target {target.dtype}{target.shape} / weights "
                f"{weights.dtype}{weights.shape} do not fit pred {z.dtype}{z.shape}"
            )
        grad = self._grad.get((z2.shape, z.dtype))
        if grad is None:
            grad = self._grad[(z2.shape, z.dtype)] = np.empty(z2.shape, z.dtype)
        kernel = self._kernel_for(target)
        eps = self.clip_eps(z.dtype)
        loss = float(kernels.pick(kernel, z.size)(z2, target, weights, grad, eps))
        self._last = (grad, z.shape)
        self._inputs = (z2, target, weights)
        return loss

    def clip_eps(self, dtype):
        """The kernels' ``eps`` for predictions of ``dtype``: its machine epsilon
        where this loss reports clipped probabilities, else 0 (exact)."""
        return float(np.finfo(dtype).eps) if self.clip else 0.0

    def backward(self):
        """The gradient of the last ``forward``'s loss with respect to ``pred``."""
        if self._last is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        grad, shape = self._last
        return grad.reshape(shape)

    def tangent_backward(self, dz):
        """The tangent of :meth:`backward` along ``dz``: the Hessian of the last
        ``forward``'s loss with respect to ``pred``, times ``dz`` (a reused buffer).
        Every loss here is convex in ``pred``, so this Hessian is positive
        semi-definite."""
        if self._last is None or getattr(self, "_inputs", None) is None:
            raise RuntimeError(
                f"{type(self).__name__}.tangent_backward called before forward"
            )
        z2, target, weights = self._inputs
        shape = self._last[1]
        name = f"{type(self).__name__} pred tangent"
        dz = as_float_array(dz, name, z2.dtype)
        check_shape(dz, shape, name)
        out = self._grad.get(("tangent", z2.shape, z2.dtype))
        if out is None:
            out = self._grad[("tangent", z2.shape, z2.dtype)] = np.empty_like(z2)
        if np.may_share_memory(dz, out):
            dz = dz.copy()
        kernel = self._tangent_kernel_for(target)
        kernels.pick(kernel, z2.size)(z2, target, weights, dz.reshape(z2.shape), out)
        return out.reshape(shape)

    def _kernel_for(self, target):
        # by name: the kernels (and Numba) load on first use, not at import
        return getattr(kernels, self.kernel)

    def _tangent_kernel_for(self, target):
        return getattr(kernels, self.tangent_kernel)

    def _check_pred(self, pred):
        name = type(self).__name__
        z = as_float_array(pred, f"{name} pred")
        check_ndim(z, self.pred_ndims, f"{name} pred")
        if z.shape[0] == 0:
            raise ValueError(
                f"{name} needs at least one sample, got pred of shape {z.shape}"
            )
        if z.size == 0:
            raise ValueError(
                f"{name} needs at least one output, got pred of shape {z.shape}"
            )
        return z

    def _weights(self, sample_weight, n, dtype):
        if sample_weight is None:
            if dtype not in self._no_weights:
                self._no_weights[dtype] = np.empty(0, dtype)
            return self._no_weights[dtype]
        w = as_float_array(sample_weight, "sample_weight", dtype)
        check_shape(w, (n,), "sample_weight")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("sample_weight must be finite and non-negative")
        if w.sum() <= 0:
            raise ValueError("sample_weight must have a positive sum")
        return w

    def _float_target(self, target, shape, dtype, low=None, high=None):
        name = f"{type(self).__name__} target"
        t = as_float_array(target, name, dtype)
        check_shape(t, shape, name)
        if not np.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or infinity")
        if low is not None and (t < low).any():
            raise ValueError(f"{name} must be >= {low}, got a minimum of {t.min()}")
        if high is not None and (t > high).any():
            raise ValueError(f"{name} must be <= {high}, got a maximum of {t.max()}")
        return t.reshape(shape[0], -1)


class _LogLoss(Loss):
    """A cross-entropy: ``clip=True`` reports its value as scikit-learn's
    ``log_loss`` does, each probability clipped to ``[eps, 1 - eps]`` (``eps`` the
    dtype's machine epsilon), so that a hopeless row adds at most ``-log(eps)``;
    the gradient stays the exact ``p − t`` either way. The default, ``False``,
    reports the exact value, as PyTorch's losses do."""

    def __init__(self, clip=False):
        super().__init__()
        if not isinstance(clip, (bool, np.bool_)):
            raise TypeError(f"clip must be True or False, got {clip!r}")
        self.clip = bool(clip)


class SoftmaxCrossEntropy(_LogLoss):
    r"""Softmax of the logits ``pred`` (n, k) and cross-entropy, fused.

    ``target``: integer labels of shape ``(n,)`` in ``[0, k)``, or probabilities /
    one-hot rows of shape ``(n, k)``.

    .. math:: L = \frac1W\sum_i w_i\,(\mathrm{logsumexp}(z_i) - z_{i y_i}),\qquad
              \partial L/\partial z_i = w_i (p_i - y_i) / W

    Hessian-vector product (:meth:`Loss.tangent_backward`), per row:
    :math:`\frac{w_i}{W}(\mathrm{diag}(p_i) - p_i p_i^\top)\,dz_i` (times the row's
    target mass for probability rows).
    """

    pred_ndims = (2,)

    def _kernel_for(self, target):
        if target.dtype.kind == "i":
            return kernels.softmax_cross_entropy
        return kernels.softmax_cross_entropy_dense

    def _tangent_kernel_for(self, target):
        if target.dtype.kind == "i":
            return kernels.softmax_cross_entropy_tangent
        return kernels.softmax_cross_entropy_dense_tangent

    def _target(self, target, shape, dtype):
        if target.ndim != 1:
            return self._float_target(target, shape, dtype, low=0.0)
        n, k = shape
        check_shape(target, (n,), "SoftmaxCrossEntropy labels")
        if target.dtype.kind == "f" and np.array_equal(target, np.round(target)):
            target = target.astype(np.int64)
        if target.dtype.kind not in "iu":
            raise TypeError(
                "SoftmaxCrossEntropy labels must be integers in [0, k), got dtype "
                f"{target.dtype}"
            )
        if n and (target.min() < 0 or target.max() >= k):
            raise ValueError(
                f"SoftmaxCrossEntropy labels must lie in [0, {k}) for {k} classes; got "
                f"values from {target.min()} to {target.max()}"
            )
        return np.ascontiguousarray(target, dtype=np.int64)


class SigmoidBinaryCrossEntropy(_LogLoss):
    r"""Logistic sigmoid of ``pred`` and binary cross-entropy, fused (multi-label).

    ``pred`` and ``target`` of shape ``(n,)`` or ``(n, k)``, targets in [0, 1]; summed
    over outputs, weighted mean over samples.

    .. math:: \ell = \max(z,0) - z t + \log(1 + e^{-|z|}),\qquad
              \partial L/\partial z = w_i(\sigma(z) - t)/W

    Hessian-vector product: :math:`\frac{w_i}{W}\sigma(z)(1 - \sigma(z))\,dz`.
    """

    kernel = "sigmoid_binary_cross_entropy"
    tangent_kernel = "sigmoid_binary_cross_entropy_tangent"

    def _target(self, target, shape, dtype):
        return self._float_target(target, shape, dtype, low=0.0, high=1.0)


class MSELoss(Loss):
    r"""Mean squared error :math:`\mathrm{mean}((p - t)^2)`; gradient
    :math:`2 (p - t) / \mathrm{size}` (weighted: rows scaled by :math:`w_i / W`);
    Hessian-vector product :math:`2\,dz / \mathrm{size}`."""

    kernel = "squared_error"
    tangent_kernel = "squared_error_tangent"

    def _target(self, target, shape, dtype):
        return self._float_target(target, shape, dtype)


class PoissonLoss(Loss):
    r"""Half Poisson deviance of :math:`\mu = e^{z}` against counts ``t >= 0``, mean
    over elements; gradient :math:`(e^{z} - t) / \mathrm{size}`, Hessian-vector
    product :math:`e^{z} dz / \mathrm{size}`. ``pred`` is the log-rate."""

    kernel = "poisson_exp"
    tangent_kernel = "poisson_exp_tangent"

    def _target(self, target, shape, dtype):
        return self._float_target(target, shape, dtype, low=0.0)
