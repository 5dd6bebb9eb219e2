"""The estimators' L-BFGS solver (``solver='lbfgs'``).

Mirrors ``BaseMultilayerPerceptron._fit_lbfgs`` and ``_loss_grad_lbfgs`` of
scikit-learn 1.9 (``sklearn/neural_network/_multilayer_perceptron.py``): the same
packed layout of the weights (coefficients, then intercepts, as float64), the same
``scipy.optimize.minimize`` call and options, the same result check. The loss and
its gradient come from fastnet's modules; for a multi-output squared error the
gradient is that of the loss L-BFGS minimises (scikit-learn's #8349).
"""

import numpy as np
import scipy.optimize

from .. import kernels
from ..training.loop import module_shares
from ._compat import check_optimize_result


def fit_lbfgs(est, X, y, sample_weight):
    """scikit-learn's ``_fit_lbfgs`` for ``est`` (its weights initialised, ``y``
    encoded)."""
    packed = pack(est)
    est._network()
    target, weights = est._targets(y, X.shape[0], X.dtype, sample_weight)

    def objective(packed):
        return packed_loss_grad(est, packed, X, target, weights)

    # the full batch's products in the shares of a step of all the rows, BLAS at
    # one thread: the same bits for any n_threads (OpenBLAS's threads round
    # otherwise)
    with module_shares(est._network().modules, X.shape[0]):
        minimize(est, objective, packed)


def pack(est):
    """``est``'s weights as scikit-learn's packed float64 vector (coefficients,
    then intercepts), its layout set in ``_coef_indptr`` / ``_intercept_indptr``
    (code in the wild reads them)."""
    est._coef_indptr, est._intercept_indptr = [], []
    start = 0
    for W in est.coefs_:
        est._coef_indptr.append((start, start + W.size, W.shape))
        start += W.size
    for b in est.intercepts_:
        est._intercept_indptr.append((start, start + b.size))
        start += b.size
    arrays = [*est.coefs_, *est.intercepts_]
    return np.concatenate([a.reshape(-1) for a in arrays]).astype(np.float64)


def minimize(est, objective, packed):
    """scikit-learn's ``scipy.optimize.minimize`` call on ``objective`` (``packed
    -> (loss, packed gradient)``) from ``packed``, with its options and result
    check; sets ``n_iter_``, ``loss_`` and the weights. The one copy of the call:
    the local fit and ``fastnet.dask.fit_distributed`` both run it."""
    options = {"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol}
    if est.verbose is True or est.verbose >= 1:
        options["disp"] = True
    opt_res = scipy.optimize.minimize(
        objective, packed, method="L-BFGS-B", jac=True, options=options
    )
    est.n_iter_ = check_optimize_result("lbfgs", opt_res, est.max_iter)
    est.loss_ = np.float64(opt_res.fun)
    copy_packed(est, opt_res.x)


def copy_packed(est, packed):
    """Copy a vector in scikit-learn's packed layout (coefs, then intercepts)
    into the model's own arrays."""
    lo = 0
    for a in [*est.coefs_, *est.intercepts_]:
        np.copyto(a, packed[lo : lo + a.size].reshape(a.shape), casting="same_kind")
        lo += a.size


def packed_loss_grad(est, packed, X, target, weights):
    """L-BFGS's objective at ``packed``: scikit-learn's loss with its L2 term, and
    the gradient packed as float64 (prepared ``target`` / ``weights``)."""
    net = est._network()
    copy_packed(est, packed)
    sw_sum = float(weights.sum()) if weights.size else float(X.shape[0])
    loss = est._loss_and_grads(X, target, weights, lbfgs=True)
    loss += 0.5 * est.alpha * est._squared_weights() / sw_sum
    grads = [lin.grads["W"] for lin in net.linears]
    for W, g in zip(est.coefs_, grads, strict=True):
        kernels.axpy(g.reshape(-1), g.dtype.type(est.alpha / sw_sum), W.reshape(-1))
    grads += [lin.grads["b"] for lin in net.linears]
    return loss, np.concatenate([g.reshape(-1) for g in grads]).astype(np.float64)


def loss_grad(est, packed, X, y, sample_weight):
    """scikit-learn's ``_loss_grad_lbfgs``: ``(loss, packed gradient)`` at the
    weights ``packed`` for ``X`` and the 2-D encoded targets ``y``."""
    est._network()
    if hasattr(X, "toarray"):
        X = X.toarray()
    X = np.ascontiguousarray(X, dtype=est.coefs_[0].dtype)
    target, weights = est._targets(y, X.shape[0], X.dtype, sample_weight)
    return packed_loss_grad(est, packed, X, target, weights)
