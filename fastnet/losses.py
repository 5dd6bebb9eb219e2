"""Loss modules: ``forward(pred, target, sample_weight=None) -> float`` and
``backward() -> d pred``.

Each wraps one fused kernel of ``fastnet.kernels.losses`` that computes the loss and
its gradient in one pass; ``backward`` returns that gradient (a reused buffer).
Per-sample weights normalise by their sum, as scikit-learn's weighted losses do.
"""

import numpy as np

from . import kernels
from ._checks import as_float_array, check_ndim, check_shape


class Loss:
    """Validates ``pred``, ``target`` and ``sample_weight``, then runs the kernel."""

    kernel = None  # (serial, parallel) pair from fastnet.kernels

    def __init__(self):
        self._grad = None
        self._grad_shape = None
        self._no_weights = {}

    def __call__(self, pred, target, sample_weight=None):
        return self.forward(pred, target, sample_weight)

    def forward(self, pred, target, sample_weight=None):
        name = type(self).__name__
        z = as_float_array(pred, f"{name} pred")
        check_ndim(z, self.pred_ndims, f"{name} pred")
        if z.shape[0] == 0:
            raise ValueError(
                f"{name} needs at least one sample, got pred of shape {z.shape}"
            )
        z2 = z.reshape(z.shape[0], -1)
        if z2.shape[1] == 0:
            raise ValueError(
                f"{name} needs at least one output, got pred of shape {z.shape}"
            )
        t = self._target(target, z, z2)
        w = self._weights(sample_weight, z.shape[0], z.dtype)
        if (
            self._grad is None
            or self._grad.shape != z2.shape
            or self._grad.dtype != z.dtype
        ):
            self._grad = np.empty(z2.shape, z.dtype)
        self._grad_shape = z.shape
        return float(kernels.pick(self.kernel, z.size)(z2, t, w, self._grad))

    def backward(self):
        """The gradient of the last ``forward``'s loss with respect to ``pred``."""
        if self._grad_shape is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._grad.reshape(self._grad_shape)

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

    def _float_target(self, target, z, z2, low=None, high=None):
        name = f"{type(self).__name__} target"
        t = as_float_array(target, name, z.dtype)
        check_shape(t, z.shape, name)
        if not np.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or infinity")
        if low is not None and (t < low).any():
            raise ValueError(f"{name} must be >= {low}, got a minimum of {t.min()}")
        if high is not None and (t > high).any():
            raise ValueError(f"{name} must be <= {high}, got a maximum of {t.max()}")
        return t.reshape(z2.shape)


class SoftmaxCrossEntropy(Loss):
    r"""Softmax of the logits ``pred`` (n, k) and cross-entropy, fused.

    ``target``: integer labels of shape ``(n,)`` in ``[0, k)``, or probabilities /
    one-hot rows of shape ``(n, k)``.

    .. math:: L = \frac1W\sum_i w_i\,(\mathrm{logsumexp}(z_i) - z_{i y_i}),\qquad
              \partial L/\partial z_i = w_i (p_i - y_i) / W
    """

    pred_ndims = (2,)

    def forward(self, pred, target, sample_weight=None):
        t = np.asarray(target)
        self.kernel = (
            kernels.softmax_cross_entropy
            if t.ndim == 1
            else kernels.softmax_cross_entropy_dense
        )
        return super().forward(pred, t, sample_weight)

    def _target(self, target, z, z2):
        if target.ndim != 1:
            return self._float_target(target, z, z2, low=0.0)
        n, k = z.shape
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


class SigmoidBinaryCrossEntropy(Loss):
    r"""Logistic sigmoid of ``pred`` and binary cross-entropy, fused (multi-label).

    ``pred`` and ``target`` of shape ``(n,)`` or ``(n, k)``, targets in [0, 1]; summed
    over outputs, weighted mean over samples.

    .. math:: \ell = \max(z,0) - z t + \log(1 + e^{-|z|}),\qquad
              \partial L/\partial z = w_i(\sigma(z) - t)/W
    """

    pred_ndims = (1, 2)
    kernel = kernels.sigmoid_binary_cross_entropy

    def _target(self, target, z, z2):
        return self._float_target(target, z, z2, low=0.0, high=1.0)


class MSELoss(Loss):
    r"""Mean squared error :math:`\mathrm{mean}((p - t)^2)`; gradient
    :math:`2 (p - t) / \mathrm{size}` (weighted: rows scaled by :math:`w_i / W`)."""

    pred_ndims = (1, 2)
    kernel = kernels.squared_error

    def _target(self, target, z, z2):
        return self._float_target(target, z, z2)


class PoissonLoss(Loss):
    r"""Half Poisson deviance of :math:`\mu = e^{z}` against counts ``t >= 0``, mean
    over elements; gradient :math:`(e^{z} - t) / \mathrm{size}`. ``pred`` is the
    log-rate."""

    pred_ndims = (1, 2)
    kernel = kernels.poisson_exp

    def _target(self, target, z, z2):
        return self._float_target(target, z, z2, low=0.0)
