"""The estimators' stochastic solvers (``'sgd'``, ``'adam'``).

Mirrors ``BaseMultilayerPerceptron._fit_stochastic`` of scikit-learn 1.9
(``sklearn/neural_network/_multilayer_perceptron.py``), step for step, so that a
diff against upstream stays mechanical: the optimizer made or kept, the validation
split, the batch size, the shuffles (the same draws from the same random state), the
loss curve, the stopping rules and their messages. What differs is where the
arithmetic runs (an epoch in one compiled call, or the modules batch by batch, from
fastnet's shared training-loop core ``fastnet.training.loop``), the callbacks
(``fastnet.callbacks``), and a fit whose weights become non-finite, which stops at
once keeping the last finite weights (scikit-learn trains on through NaN).
"""

import warnings

import numpy as np
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import gen_batches

from .._runtime.threads import resolve_threads
from ..optim import SGD, Adam, InverseScaling
from ..training import callbacks as cb
from ..training.loop import (
    Batches,
    LastFinite,
    compiled_epoch,
    module_shares,
    parameter_names,
)

#: scikit-learn's error for weights that became NaN or infinite (its tests match it)
NON_FINITE_WEIGHTS = (
    "Solver produced non-finite parameter weights. The input data may contain large"
    " values and need to be preprocessed."
)


def fit_stochastic(est, X, y, sample_weight, incremental):
    """scikit-learn's ``_fit_stochastic`` for the estimator ``est`` (whose
    ``coefs_`` / ``intercepts_`` are initialised and whose ``y`` is encoded)."""
    _ensure_optimizer(est, incremental)
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    train, val = _split(est, X, y, sample_weight)
    X_train, y_train, sample_weight_train = train
    X_train = np.ascontiguousarray(X_train)
    n_samples = X_train.shape[0]
    batch_size = _batch_size(est, n_samples)
    target, weights = est._targets(y_train, n_samples, X_train.dtype,
                                   sample_weight_train)  # fmt: skip
    callbacks = cb.check_callbacks(est.callbacks, "callbacks")
    state = cb.FitState(sample_order=np.arange(n_samples, dtype=int))
    est.n_iter_ = 0
    cb.call(callbacks, "on_fit_begin", est, state)  # may restore a checkpoint
    _rename_legacy_state(est._optimizer, len(est.coefs_))
    run = _epoch_runner(est, X_train, target, weights, batch_size, callbacks, state)
    try:
        _epochs(est, run, n_samples, val, incremental, callbacks, state)
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=3)
    finally:
        cb.call(callbacks, "on_fit_end", est, state)
    if est.early_stopping:
        for dst, src in zip(est.coefs_, est._best_coefs, strict=True):
            np.copyto(dst, src)
        for dst, src in zip(est.intercepts_, est._best_intercepts, strict=True):
            np.copyto(dst, src)


def _ensure_optimizer(est, incremental):
    """A new optimizer, unless ``partial_fit`` goes on with the one it has."""
    if incremental and hasattr(est, "_optimizer"):
        return
    if est.solver == "sgd":
        schedule = (
            InverseScaling(est.power_t) if est.learning_rate == "invscaling" else None
        )
        est._optimizer = SGD(
            est.learning_rate_init,
            est.momentum,
            est.nesterovs_momentum and est.momentum > 0,
            schedule=schedule,
        )
    else:
        est._optimizer = Adam(
            est.learning_rate_init,
            est.beta_1,
            est.beta_2,
            est.epsilon,
            eps_placement="sklearn",
        )


def legacy_parameter_names(n_layers):
    """fastnet 0.1.0's names of the optimizer's state, ``(W name, b name)`` of each
    layer (``W0``, ``b0``), as pickles and checkpoints made then hold it; the fit
    renames them to today's (:func:`~fastnet.training.loop.parameter_names`)."""
    return [(f"W{i}", f"b{i}") for i in range(n_layers)]


def _rename_legacy_state(optimizer, n_layers):
    """Optimizer state under fastnet 0.1.0's parameter names (``W0``, ``b0``: in
    pickles and checkpoints made then) moved to today's (``0.W``, ``0.b``)."""
    state = getattr(optimizer, "state", None)
    if not state:
        return
    for names, olds in zip(
        parameter_names(n_layers), legacy_parameter_names(n_layers), strict=True
    ):
        for old, new in zip(olds, names, strict=True):
            if old in state and new not in state:
                state[new] = state.pop(old)


def _split(est, X, y, sample_weight):
    """``((X, y, sample_weight) to train on, (X, y, sample_weight) to validate
    on)``: scikit-learn's split with early stopping (the validation part None
    without)."""
    if not est.early_stopping:
        return (X, y, sample_weight), (None, None, None)
    stratify = y if is_classifier(est) and est.n_outputs_ == 1 else None
    arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
    parts = train_test_split(
        *arrays,
        random_state=est._random_state,
        test_size=est.validation_fraction,
        stratify=stratify,
    )
    X_train, X_val, y_train, y_val = parts[:4]
    sample_weight_train, sample_weight_val = parts[4:] or [None, None]
    if X_val.shape[0] < 2:
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' "
            "or the size of your dataset."
        )
    if is_classifier(est):
        y_val = est._label_binarizer.inverse_transform(y_val)
    return (X_train, y_train, sample_weight_train), (X_val, y_val, sample_weight_val)


def _batch_size(est, n_samples):
    if est.batch_size == "auto":
        return min(200, n_samples)
    if est.batch_size > n_samples:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than "
            "sample size. It is going to be clipped",
            stacklevel=4,
        )
    return int(np.clip(est.batch_size, 1, n_samples))


def _epoch_runner(est, X, target, weights, batch_size, callbacks, state):
    """A function ``run(order)`` training one epoch over the rows ``order`` and
    returning the sum of batch loss times batch rows: the compiled epoch where it
    applies (no dropout, no sample weights, no batch hook), else the modules batch
    by batch (the same arithmetic)."""
    net = est._network()
    params, grads = net.parameters()
    compiled = None
    if not net.dropout and not cb.wants_batches(callbacks):
        loss_scale, grad_scale = est._loss_scales(lbfgs=False)
        compiled = compiled_epoch(
            net.modules, net.loss, est._optimizer, X, target, weights,
            batch_size, l2=est.alpha, loss_scale=loss_scale, grad_scale=grad_scale,
            # the last call's workspace, where it serves (fits never overlap); only
            # that part is kept between calls, never the data
            reuse=est.__dict__.get("_fn_fused_state"),
            threads=resolve_threads(est.n_threads),
        )  # fmt: skip
        est._fn_fused_state = None if compiled is None else compiled.state
    if compiled is not None:
        # shuffles of a checked order keep it valid
        compiled.check(state.sample_order)
        return lambda order: compiled(order, checked=True)
    batches = Batches(X, target, weights)
    coef_names = [w for w, _ in parameter_names(len(est.coefs_))]

    def run(order):
        with module_shares(net.modules, batch_size):
            return _module_epoch(order)

    def _module_epoch(order):
        total = 0.0
        for k, batch_slice in enumerate(gen_batches(X.shape[0], batch_size)):
            xb, tb, wb = batches.gather(order[batch_slice])
            m = xb.shape[0]
            sw_sum = float(wb.sum()) if wb.size else float(m)
            loss = est._loss_and_grads(xb, tb, wb)
            loss += 0.5 * est.alpha * est._squared_weights() / sw_sum
            decay = dict.fromkeys(coef_names, est.alpha / sw_sum)
            est._optimizer.step(params, grads, weight_decay=decay)
            total += loss * m
            if callbacks:
                state.batch, state.batch_rows, state.batch_loss = k, m, loss
                cb.call(callbacks, "on_batch_end", est, state)
        return total

    return run


def _epochs(est, run, n_samples, val, incremental, callbacks, state):
    """scikit-learn's epoch loop from ``est.n_iter_`` to ``max_iter``."""
    # without early stopping, the weights after the last epoch that left them
    # finite (with it, the best ones are restored instead)
    weights = [*est.coefs_, *est.intercepts_]
    finite = None if est.early_stopping else LastFinite(weights)
    if _stopped_before(est):
        state.stop_reason = "no improvement"
        return
    for _ in range(est.n_iter_, est.max_iter):
        if est.shuffle:
            state.sample_order = shuffled(state.sample_order, est._random_state)
        cb.call(callbacks, "on_epoch_begin", est, state)
        accumulated_loss = run(state.sample_order)
        if finite is not None and not finite.keep(weights):
            # scikit-learn trains on through NaN to max_iter and then raises; stop
            # now and keep usable weights. (With early stopping it keeps going
            # too and restores the best weights: so does fastnet.)
            finite.restore(weights)
            del est._optimizer  # its state diverged with the weights
            raise ValueError(
                f"{NON_FINITE_WEIGHTS} Training stopped in iteration "
                f"{est.n_iter_ + 1}; the model keeps the last finite weights "
                "(from before that iteration). A lower learning_rate_init "
                "may also help."
            )
        est.n_iter_ += 1
        # np.float64, as scikit-learn's (its batch losses are NumPy scalars)
        est.loss_ = np.float64(accumulated_loss / n_samples)
        est.t_ += n_samples
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        est._update_no_improvement_count(est.early_stopping, *val)
        est._optimizer.epoch_end(est.n_iter_ - 1, est.t_, est.loss_)
        state.epoch, state.loss = est.n_iter_, est.loss_
        if _stopping(est):
            state.stop_reason = "no improvement"
        # callbacks see every epoch, the last one too
        asked = cb.call(callbacks, "on_epoch_end", est, state)
        if state.stop_reason is not None or asked or incremental:
            if asked and state.stop_reason is None:
                state.stop_reason = "callback"
            break
        if est.n_iter_ == est.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )


def _stopped_before(est):
    """Whether a resumed fit (``n_iter_`` set by a checkpoint; every other fit
    starts at 0) resumes from the epoch that stopped it: checkpoints are written
    after the stopping rule's check, and a count above ``n_iter_no_change`` is left
    only where the rule stopped the fit (it resets the count otherwise). Such a fit
    trains no epoch more. (A warm start after a stop is not this: it starts at 0
    and, as scikit-learn's, trains an epoch before it checks again.)"""
    return est.n_iter_ > 0 and est._no_improvement_count > est.n_iter_no_change


def _stopping(est):
    """scikit-learn's stopping rule after an epoch: True to stop."""
    if est._no_improvement_count <= est.n_iter_no_change:
        return False
    what = "Validation score" if est.early_stopping else "Training loss"
    msg = (
        f"{what} did not improve more than tol={est.tol:f} for "
        f"{est.n_iter_no_change} consecutive epochs."
    )
    if _trigger_stopping(est, msg):
        return True
    est._no_improvement_count = 0
    return False


def _trigger_stopping(est, msg):
    """scikit-learn's rule: 'adaptive' SGD divides the rate by 5 until 1e-6."""
    if est.solver != "sgd" or est.learning_rate != "adaptive":
        if est.verbose:
            print(msg + " Stopping.")
        return True
    if est._optimizer.lr <= 1e-6:
        if est.verbose:
            print(msg + " Learning rate too small. Stopping.")
        return True
    est._optimizer.lr /= 5.0
    if est.verbose:
        print(f"{msg} Setting learning rate to {est._optimizer.lr:f}")
    return False


def shuffled(idx, random_state):
    """``sklearn.utils.shuffle(idx, random_state=random_state)``: the same draws
    and the same result, without its validation of arguments (which cost more
    than a small epoch).

    scikit-learn shuffles ``arange(n)`` and indexes ``idx`` with it; the same swaps
    made on a copy of ``idx`` give that result without the index pass."""
    order = idx.copy()
    random_state.shuffle(order)
    return order
