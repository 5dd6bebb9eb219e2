"""The network behind an estimator: fastnet's modules over its ``coefs_`` and
``intercepts_``, and its output's loss."""

import operator

import numpy as np

from .. import kernels
from ..nn.activations import ESTIMATOR_ACTIVATIONS
from ..nn.dropout import Dropout
from ..nn.linear import Linear
from ..nn.losses import (
    MSELoss,
    PoissonLoss,
    SigmoidBinaryCrossEntropy,
    SoftmaxCrossEntropy,
)
from ..training.loop import parameter_names

#: ``out_activation_`` -> the fused training loss of that output layer
OUTPUT_LOSSES = {
    "softmax": SoftmaxCrossEntropy,
    "logistic": SigmoidBinaryCrossEntropy,
    "identity": MSELoss,
    "exp": PoissonLoss,
}


class MLPNetwork:
    """``Linear`` layers sharing an estimator's arrays, the hidden activations
    (from the registry, ``fastnet.nn.activations.ESTIMATOR_ACTIVATIONS``), dropout
    after each hidden layer while training, and the output's fused loss.

    ``settings``: ``(activation, dropout, out_activation_)``; ``dropout_seed``
    seeds the dropout masks (only drawn with dropout, so that other fits consume
    the estimator's random state exactly as scikit-learn does).
    """

    def __init__(self, coefs, intercepts, settings, dropout_seed=None):
        activation, dropout, out_activation = settings
        check_weights(coefs, intercepts)
        self.settings = settings
        self.linears = [Linear.from_params(*_own(W, b)) for W, b in
                        zip(coefs, intercepts, strict=True)]  # fmt: skip
        act = ESTIMATOR_ACTIVATIONS[activation]
        self.hidden = [act() for _ in self.linears[:-1]]
        self.dropout = []
        if dropout > 0:
            rng = np.random.default_rng(dropout_seed)
            self.dropout = [Dropout(dropout, random_state=rng) for _ in self.hidden]
        #: the chain without dropout (what ``fastnet.training.loop`` compiles)
        pairs = zip(self.linears[:-1], self.hidden, strict=True)
        self.modules = [m for pair in pairs for m in pair]
        self.modules.append(self.linears[-1])
        #: the weights, then the biases (what the estimator's ``coefs_`` and
        #: ``intercepts_`` hold)
        self.arrays = [lin.params["W"] for lin in self.linears] + [
            lin.params["b"] for lin in self.linears
        ]
        # the log-losses report scikit-learn's clipped value (the gradient is exact)
        clip = {"clip": True} if out_activation in ("softmax", "logistic") else {}
        self.loss = OUTPUT_LOSSES[out_activation](**clip)
        self.out_activation = out_activation
        self._forward = None

    def serves(self, coefs, intercepts, settings):
        """Whether this network is over exactly ``coefs`` and ``intercepts`` (the
        same objects) with ``settings`` (every prediction asks: identity tests in
        C, no list built)."""
        mine, n = self.arrays, len(self.linears)
        return (
            settings == self.settings
            and len(coefs) == n
            and len(intercepts) == n
            and all(map(operator.is_, coefs, mine[:n]))
            and all(map(operator.is_, intercepts, mine[n:]))
        )

    def parameters(self):
        """``(params, grads)`` under the names the optimizer keeps its state by
        (``fastnet.training.loop.parameter_names``)."""
        params, grads = {}, {}
        names = parameter_names(len(self.linears))
        for lin, (w_name, b_name) in zip(self.linears, names, strict=True):
            params[w_name], params[b_name] = lin.params["W"], lin.params["b"]
            grads[w_name], grads[b_name] = lin.grads["W"], lin.grads["b"]
        return params, grads

    def logits(self, X, train):
        """The last layer's pre-activation for ``X`` (C-contiguous, its dtype)."""
        h = X
        last = len(self.linears) - 1
        for i, lin in enumerate(self.linears):
            h = lin.forward(h)
            if i < last:
                h = self.hidden[i].forward(h)
                if train and self.dropout:
                    h = self.dropout[i].forward(h, train=True)
        return h

    def backward(self, grad):
        """Back through every layer from the last one's output gradient ``grad``,
        filling each ``Linear``'s gradients."""
        for i in range(len(self.linears) - 1, -1, -1):
            grad = self.linears[i].backward(grad)
            if i > 0:
                if self.dropout:
                    grad = self.dropout[i - 1].backward(grad)
                grad = self.hidden[i - 1].backward(grad)

    def loss_and_grads(self, X, target, weights, loss_scale, grad_scale):
        """Forward, fused loss, backward; the loss times ``loss_scale``, the
        gradient scaled by ``grad_scale`` before it goes back."""
        z = self.logits(X, train=True)
        loss = self.loss.forward_prepared(z, target, weights)
        grad = self.loss.backward()
        if grad_scale != 1.0:
            kernels.scale_inplace(grad.reshape(-1), grad.dtype.type(grad_scale))
        self.backward(grad)
        return loss * loss_scale

    def compiled_forward(self):
        """The whole forward pass as one kernel call
        (``fastnet._runtime.mlp.CompiledForward``), made on first use."""
        if self._forward is None:
            from .._runtime.mlp import CompiledForward

            hidden = self.hidden[0] if self.hidden else None
            self._forward = CompiledForward(self.linears, hidden, self.out_activation)
        return self._forward


def check_weights(coefs, intercepts):
    """A ``ValueError`` naming the estimator's attribute unless ``coefs`` and
    ``intercepts`` (its ``coefs_`` and ``intercepts_``, perhaps assigned by a user)
    are layers the kernels can take: 2-D weights and 1-D biases of one float dtype
    (float32 or float64 throughout: scikit-learn computes a mix in the wider type,
    fastnet's kernels in one), each bias as wide as its weights' outputs, each
    layer's inputs the previous layer's outputs."""
    if len(coefs) != len(intercepts) or not coefs:
        raise ValueError(
            f"coefs_ has {len(coefs)} arrays and intercepts_ {len(intercepts)}; "
            "they need one per layer, at least one"
        )
    dtype = np.asarray(coefs[0]).dtype
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        W, b = np.asarray(W), np.asarray(b)
        for name, a in ((f"coefs_[{i}]", W), (f"intercepts_[{i}]", b)):
            if a.dtype != dtype or dtype not in (np.float32, np.float64):
                raise ValueError(
                    f"{name} is {a.dtype} where coefs_[0] is {dtype}: coefs_ and "
                    "intercepts_ must be all float32 or all float64 (fastnet's "
                    "kernels compute in one dtype; convert them with astype)"
                )
        if W.ndim != 2 or b.shape != (W.shape[1:2]):
            raise ValueError(
                f"coefs_[{i}] has shape {W.shape} and intercepts_[{i}] {b.shape}; "
                "a layer needs weights (inputs, outputs) and biases (outputs,)"
            )
        if i and W.shape[0] != np.shape(coefs[i - 1])[1]:
            raise ValueError(
                f"coefs_[{i}] takes {W.shape[0]} inputs but coefs_[{i - 1}] gives "
                f"{np.shape(coefs[i - 1])[1]} outputs"
            )


def _own(W, b):
    """Writeable C-contiguous ``W`` and ``b``, copied only where needed (unpickled
    memmaps are read-only; the optimizer updates in place)."""
    if not (W.flags.c_contiguous and W.flags.writeable):
        W = np.array(W, order="C")
    if not (b.flags.c_contiguous and b.flags.writeable):
        b = np.array(b, order="C")
    return W, b
