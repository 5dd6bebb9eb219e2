"""Run an MLP's epoch in ``kernels.epoch_kernel`` for the estimators and the Trainer.

The compiled epoch calls the same kernels in the same order as the module path, so
it is a pure speed-up: Python runs once per epoch instead of once per step.
"""

import numpy as np

from . import kernels
from .optim import SGD, Adam

#: which fused kernel computes each loss module's loss
LOSS_KERNELS = {
    "SoftmaxCrossEntropy": "softmax_cross_entropy",
    "SigmoidBinaryCrossEntropy": "sigmoid_binary_cross_entropy",
    "MSELoss": "squared_error",
    "PoissonLoss": "poisson_exp",
}


def fused_epoch(
    linears,
    hidden,
    names,
    loss,
    optimizer,
    X,
    target,
    batch,
    l2=0.0,
    loss_scale=1.0,
    grad_scale=1.0,
    eps_placement=None,
):
    """A function ``epoch(order)`` returning the epoch's sum of batch loss × batch
    rows, for a network of ``linears`` with the activation module ``hidden`` between
    them; or None when the optimizer has no compiled form (AdamW, clipping, its own
    weight decay).

    ``names``: the optimizer's parameter names, one ``(W name, b name)`` per layer.
    ``l2``: scikit-learn's L2, ``l2 / batch weight`` on the weights only.
    """
    if isinstance(optimizer, Adam):
        if optimizer.decoupled or optimizer.weight_decay or optimizer.clip_norm:
            return None
        kind = "adam"
    elif isinstance(optimizer, SGD):
        if optimizer.weight_decay or optimizer.clip_norm:
            return None
        kind = "sgd"
    else:
        return None
    if target.dtype.kind == "f" and type(loss).__name__ == "SoftmaxCrossEntropy":
        loss_name = "softmax_cross_entropy_dense"
    else:
        loss_name = LOSS_KERNELS[type(loss).__name__]
    activation = hidden.kernel_name if hidden is not None else "identity"
    alpha = hidden.alpha if hidden is not None else 0.0
    kernel = kernels.epoch_kernel(activation, loss_name, kind)
    dt = X.dtype
    empty = np.empty(0, dt)

    def slots(name, p):
        values = list(optimizer._slots(name, p).values())
        return values + [empty] * (2 - len(values))

    Ws = tuple(lin.params["W"] for lin in linears)
    bs = tuple(lin.params["b"] for lin in linears)
    gWs = tuple(lin.grads["W"] for lin in linears)
    gbs = tuple(lin.grads["b"] for lin in linears)
    sW = [slots(w, p) for (w, _), p in zip(names, Ws, strict=True)]
    sb = [slots(b, p) for (_, b), p in zip(names, bs, strict=True)]
    zs = tuple(np.empty((batch, lin.n_out), dt) for lin in linears)
    hs = tuple(np.empty((batch, lin.n_out), dt) for lin in linears[:-1])
    ds = tuple(np.empty((batch, lin.n_out), dt) for lin in linears)
    xb = np.empty((batch, *X.shape[1:]), dt)
    tb = np.empty((batch, *target.shape[1:]), target.dtype)
    n = X.shape[0]
    sizes = np.minimum(batch, n - np.arange(0, n, batch))  # rows per batch
    losses = np.empty(sizes.shape[0])
    sklearn_eps = (
        eps_placement or getattr(optimizer, "eps_placement", "torch")
    ) == "sklearn"

    def epoch(order):
        if kind == "adam":
            o = optimizer
            hp = np.array([o.lr, o.beta1, o.beta2, o.eps, float(sklearn_eps), 1.0])
        else:
            hp = np.array([optimizer.lr, optimizer.momentum, float(optimizer.nesterov)])
        optimizer.t = kernel(
            X,
            target,
            empty,
            order,
            batch,
            Ws,
            bs,
            gWs,
            gbs,
            zs,
            hs or (empty.reshape(0, 0),),
            ds,
            xb,
            tb,
            empty,
            tuple(s[0] for s in sW),
            tuple(s[1] for s in sW),
            tuple(s[0] for s in sb),
            tuple(s[1] for s in sb),
            hp,
            optimizer.t,
            alpha,
            l2,
            grad_scale,
            loss_scale,
            losses,
        )
        total = 0.0  # summed as the module path sums, batch by batch
        for value, m in zip(losses, sizes, strict=True):
            total += float(value) * int(m)
        return total

    return epoch
