"""scikit-learn drop-ins: ``MLPClassifier`` and ``MLPRegressor``.

They subclass scikit-learn's own classes, so parameters, fitted attributes, input
validation, error messages, label handling, ``partial_fit`` bookkeeping and the
stopping rules are scikit-learn's, version for version. What changes is where the
arithmetic runs: every forward pass, loss, backward pass and optimizer update goes
through fastnet's compiled kernels (the modules of ``fastnet.nn`` over the
estimator's own ``coefs_`` / ``intercepts_`` arrays).

Beyond scikit-learn: ``activation='gelu'`` and ``'leaky_relu'``, ``n_threads``,
``dropout``; Poisson targets checked for negatives; the L-BFGS gradient of a
multi-output squared error consistent with its loss (scikit-learn #8349); a
stochastic fit whose weights become non-finite stops at once and keeps the last
finite weights (then raises scikit-learn's error); and a fast path for predicting a
single well-formed row.

Threads: inference (``predict``, ``predict_proba``, ``predict_log_proba``,
``score``) of a fitted estimator is thread-safe and runs concurrently (per-call
arrays, kernels without the GIL). ``fit`` / ``partial_fit`` own the estimator while
they run: a prediction or a fit from another thread meanwhile raises
``RuntimeError``; a fit waits for the predictions already running.
"""

import itertools
import warnings
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import scipy.optimize
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import gen_batches

from .. import kernels
from .._runtime import native as _native
from .._runtime.mlp import fused_epoch, layer_table, network_dims
from .._runtime.native import address
from .._runtime.threads import FitGuard, thread_limit
from ..nn import (
    GELU,
    Dropout,
    Identity,
    LeakyReLU,
    Linear,
    ReLU,
    Sigmoid,
    Tanh,
)
from ..nn.losses import (
    MSELoss,
    PoissonLoss,
    SigmoidBinaryCrossEntropy,
    SoftmaxCrossEntropy,
)
from ..optim import SGD, Adam, InverseScaling
from ._compat import Interval, StrOptions, validate_data
from ._compat import SkMLPClassifier as _SkClassifier
from ._compat import SkMLPRegressor as _SkRegressor
from ._compat import check_optimize_result as _check_optimize_result

#: ``activation=`` name -> hidden-layer module factory.
HIDDEN_ACTIVATIONS = {
    "identity": Identity,
    "logistic": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "gelu": GELU,
    "leaky_relu": LeakyReLU,
}
#: ``out_activation_`` -> the fused training loss of that output layer
OUTPUT_LOSSES = {
    "softmax": SoftmaxCrossEntropy,
    "logistic": SigmoidBinaryCrossEntropy,
    "identity": MSELoss,
    "exp": PoissonLoss,
}
#: scikit-learn's error for weights that became NaN or infinite (its tests match it)
NON_FINITE_WEIGHTS = (
    "Solver produced non-finite parameter weights. The input data may contain large"
    " values and need to be preprocessed."
)


class _FastnetMLP:
    """The compiled forward/backward/update machinery shared by both estimators."""

    _extra_constraints: ClassVar[dict] = {
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    # -- the network over coefs_ / intercepts_ ----------------------------------------
    def _network(self):
        """Linear layers sharing this estimator's arrays, hidden activations, dropout.

        Rebuilt whenever ``coefs_`` / ``intercepts_`` were replaced (warm starts,
        L-BFGS unpacking, users assigning them) or ``activation``, ``dropout`` or the
        output activation changed (``set_params`` after a fit).
        """
        net = getattr(self, "_fn_net", None)
        arrays = [*self.coefs_, *self.intercepts_]
        settings = (self.activation, self.dropout, self.out_activation_)
        if (
            net is not None
            and net["settings"] == settings
            and len(net["arrays"]) == len(arrays)
            and all(a is b for a, b in zip(net["arrays"], arrays, strict=True))
        ):
            return net
        linears = []
        for W, b in zip(self.coefs_, self.intercepts_, strict=True):
            # own, writeable, C-contiguous copies where needed (unpickled memmaps
            # are read-only; the optimizer updates in place)
            W = (
                W
                if W.flags.c_contiguous and W.flags.writeable
                else np.array(W, order="C")
            )
            b = (
                b
                if b.flags.c_contiguous and b.flags.writeable
                else np.array(b, order="C")
            )
            linears.append(Linear.from_params(W, b))
        self.coefs_ = [lin.params["W"] for lin in linears]
        self.intercepts_ = [lin.params["b"] for lin in linears]
        act = HIDDEN_ACTIVATIONS[self.activation]
        hidden = [act() for _ in linears[:-1]]
        drops = []
        if self.dropout > 0:
            # (drawn only with dropout: other fits consume the random state exactly
            # as scikit-learn does, so they reproduce its shuffles and splits)
            rng = np.random.default_rng(self._dropout_seed())
            drops = [Dropout(self.dropout, random_state=rng) for _ in linears[:-1]]
        net = {
            "settings": settings,
            "arrays": [*self.coefs_, *self.intercepts_],
            "linears": linears,
            "hidden": hidden,
            "dropout": drops,
            "loss": OUTPUT_LOSSES[self.out_activation_](),
        }
        self._fn_net = net
        return net

    def _dropout_seed(self):
        rs = getattr(self, "_random_state", None)
        return None if rs is None else rs.randint(2**31)

    def _logits(self, X, train):
        """The last layer's pre-activation for ``X`` (C-contiguous, fitted dtype)."""
        net = self._network()
        h = X
        last = len(net["linears"]) - 1
        for i, lin in enumerate(net["linears"]):
            h = lin.forward(h)
            if i < last:
                h = net["hidden"][i].forward(h)
                if train and net["dropout"]:
                    h = net["dropout"][i].forward(h, train=True)
        return h

    def _backward(self, grad):
        net = self._network()
        last = len(net["linears"]) - 1
        for i in range(last, -1, -1):
            grad = net["linears"][i].backward(grad)
            if i > 0:
                if net["dropout"]:
                    grad = net["dropout"][i - 1].backward(grad)
                grad = net["hidden"][i - 1].backward(grad)

    def _loss_scales(self, lbfgs):
        """(loss factor, gradient factor) from fastnet's loss kernels to scikit-learn's
        objective: half the mean squared error; Poisson summed over outputs."""
        k = self.n_outputs_
        if self.out_activation_ == "identity":
            # scikit-learn's stochastic solvers step along k/2 times fastnet's MSE
            # gradient (its issue #8349); L-BFGS gets the true gradient of its loss.
            return 0.5, (0.5 if lbfgs else 0.5 * k)
        if self.out_activation_ == "exp":
            return float(k), float(k)
        return 1.0, 1.0

    def _loss_and_grads(self, X, target, weights, lbfgs=False):
        """Forward, fused loss, backward: scikit-learn's loss (L2 not included)."""
        net = self._network()
        z = self._logits(X, train=True)
        loss = net["loss"].forward_prepared(z, target, weights)
        grad = net["loss"].backward()
        loss_scale, grad_scale = self._loss_scales(lbfgs)
        if grad_scale != 1.0:
            kernels.scale_inplace(grad.reshape(-1), grad.dtype.type(grad_scale))
        self._backward(grad)
        return loss * loss_scale

    def _targets(self, y, n, dtype, sample_weight):
        """(target, weights) for the fused loss, checked once per fit."""
        y = np.asarray(y)
        if self.out_activation_ == "softmax":
            y = y.argmax(axis=1)  # class indices from scikit-learn's one-hot rows
        else:
            y = y.reshape(n, -1)
        loss = self._network()["loss"]
        return loss.prepare(y, (n, self.n_outputs_), dtype, sample_weight)

    # -- fitting ---------------------------------------------------------------
    def _fit(self, X, y, sample_weight=None, incremental=False):
        if self.solver == "lbfgs" and self.dropout > 0:
            raise ValueError(
                "dropout needs a stochastic solver ('sgd' or 'adam'); L-BFGS needs a "
                "deterministic loss"
            )
        with self._guard().writing(), thread_limit(self.n_threads):
            return super()._fit(X, y, sample_weight, incremental)

    def predict(self, X):
        """As scikit-learn's, under the fit guard (see the module docstring)."""
        with self._guard().reading():
            return super().predict(X)

    def score(self, X, y, sample_weight=None):
        """As scikit-learn's, under the fit guard (see the module docstring)."""
        with self._guard().reading():
            return super().score(X, y, sample_weight=sample_weight)

    def _guard(self):
        """This estimator's :class:`~fastnet._runtime.threads.FitGuard` (made on first
        use,
        never pickled): predictions from many threads at once, never during a fit
        in another thread."""
        guard = self.__dict__.get("_fn_guard")
        if guard is None:  # dict.setdefault is atomic: one guard even under a race
            guard = self.__dict__.setdefault("_fn_guard", FitGuard())
        return guard

    def _validate_input(self, X, y, incremental, reset):
        X, y = super()._validate_input(X, y, incremental, reset)
        if hasattr(X, "toarray"):  # sparse input: the kernels work on dense rows
            X = X.toarray()
        return self._in_fitted_dtype(np.ascontiguousarray(X), incremental), y

    def _in_fitted_dtype(self, X, incremental):
        """``X`` in the dtype of the weights a ``partial_fit`` or warm start goes on
        training (scikit-learn computes such a mix in the wider type; the kernels
        take one dtype): float32 data for float64 weights trains in float64."""
        coefs = getattr(self, "coefs_", None)
        if coefs and (incremental or self.warm_start) and X.dtype != coefs[0].dtype:
            return X.astype(coefs[0].dtype)
        return X

    def _init_coef(self, fan_in, fan_out, dtype):
        self._fn_net = None
        return super()._init_coef(fan_in, fan_out, dtype)

    def _fit_stochastic(
        self,
        X,
        y,
        sample_weight,
        activations,
        deltas,
        coef_grads,
        intercept_grads,
        layer_units,
        incremental,
    ):
        # scikit-learn's _fit_stochastic, step for step, with the arithmetic in
        # fastnet's kernels: shuffles, batches, validation split and stopping rules
        # draw from the same random state, so results match scikit-learn's.
        if not incremental or not hasattr(self, "_optimizer"):
            if self.solver == "sgd":
                schedule = (
                    InverseScaling(self.power_t)
                    if self.learning_rate == "invscaling"
                    else None
                )
                self._optimizer = SGD(
                    self.learning_rate_init,
                    self.momentum,
                    self.nesterovs_momentum and self.momentum > 0,
                    schedule=schedule,
                )
            else:
                self._optimizer = Adam(
                    self.learning_rate_init,
                    self.beta_1,
                    self.beta_2,
                    self.epsilon,
                    eps_placement="sklearn",
                )
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
            split = (X, y) if sample_weight is None else (X, y, sample_weight)
            parts = train_test_split(
                *split,
                random_state=self._random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X_train, X_val, y_train, y_val = parts[:4]
            sample_weight_train, sample_weight_val = parts[4:] or [None, None]
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
            X_val = y_val = sample_weight_val = None

        X_train = np.ascontiguousarray(X_train)
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped",
                    stacklevel=2,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        target, weights = self._targets(
            y_train, n_samples, X_train.dtype, sample_weight_train
        )
        net = self._network()
        params = {f"W{i}": lin.params["W"] for i, lin in enumerate(net["linears"])}
        params.update(
            {f"b{i}": lin.params["b"] for i, lin in enumerate(net["linears"])}
        )
        grads = {f"W{i}": lin.grads["W"] for i, lin in enumerate(net["linears"])}
        grads.update({f"b{i}": lin.grads["b"] for i, lin in enumerate(net["linears"])})
        buffers = {}
        self.n_iter_ = 0
        resume = getattr(self, "_fn_resume", None)
        if resume is not None:  # set by fastnet.tabular.cli to continue a checkpoint
            self._fn_resume = None
            # scikit-learn shuffles the previous epoch's order again, so the order is
            # part of the state to restore (before the compiled epoch takes the
            # optimizer's state arrays)
            sample_idx = resume(self, sample_idx)
        compiled = self._compiled_epoch(
            X_train, target, weights, batch_size, net, params, grads
        )
        # without early stopping, the weights after the last epoch that left them
        # finite (with it, the best ones are restored instead)
        finite = None if early_stopping else _LastFinite(self._weights())
        if compiled is not None:
            compiled.check(sample_idx)  # shuffles below keep a checked order valid
        try:
            for _ in range(self.n_iter_, self.max_iter):
                if self.shuffle:
                    sample_idx = _shuffled(sample_idx, self._random_state)
                self._fn_sample_idx = sample_idx
                if compiled is not None:
                    accumulated_loss = compiled(sample_idx, checked=True)
                else:
                    accumulated_loss = 0.0
                    for batch_slice in gen_batches(n_samples, batch_size):
                        idx = sample_idx[batch_slice]
                        accumulated_loss += self._step(
                            X_train, target, weights, idx, buffers, params, grads
                        )

                if finite is not None and not finite.keep(self._weights()):
                    # scikit-learn trains on through NaN to max_iter and then raises;
                    # stop now and keep usable weights. (With early stopping it keeps
                    # going too and restores the best weights: so does fastnet.)
                    finite.restore(self._weights())
                    del self._optimizer  # its state diverged with the weights
                    raise ValueError(
                        f"{NON_FINITE_WEIGHTS} Training stopped in iteration "
                        f"{self.n_iter_ + 1}; the model keeps the last finite weights "
                        "(from before that iteration). A lower learning_rate_init "
                        "may also help."
                    )
                self.n_iter_ += 1
                self.loss_ = accumulated_loss / X_train.shape[0]
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                self._update_no_improvement_count(
                    early_stopping, X_val, y_val, sample_weight_val
                )
                self._optimizer.epoch_end(self.n_iter_ - 1, self.t_, self.loss_)
                # progress bars and checkpoints of fastnet.tabular.cli see every epoch,
                # the last one too
                hook = getattr(self, "_fn_epoch_hook", None) or (lambda _: None)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if early_stopping else "Training loss"
                    msg = (
                        f"{what} did not improve more than tol={self.tol:f} for "
                        f"{self.n_iter_no_change} consecutive epochs."
                    )
                    if self._trigger_stopping(msg):
                        hook(self)
                        break
                    self._no_improvement_count = 0
                hook(self)
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                        "reached and the optimization hasn't converged yet.",
                        ConvergenceWarning,
                        stacklevel=2,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=2)
        if early_stopping:
            for dst, src in zip(self.coefs_, self._best_coefs, strict=True):
                np.copyto(dst, src)
            for dst, src in zip(self.intercepts_, self._best_intercepts, strict=True):
                np.copyto(dst, src)

    def _weights(self):
        return [*self.coefs_, *self.intercepts_]

    def _step(self, X, target, weights, idx, buffers, params, grads):
        """One minibatch through the modules; its loss times its size."""
        m = idx.shape[0]
        if m not in buffers:
            buffers[m] = (
                np.empty((m, X.shape[1]), X.dtype),
                np.empty((m, *target.shape[1:]), target.dtype),
                np.empty(m if weights.size else 0, weights.dtype),
            )
        xb, tb, wb = buffers[m]
        np.take(X, idx, axis=0, out=xb, mode="clip")
        np.take(target, idx, axis=0, out=tb, mode="clip")
        if weights.size:
            np.take(weights, idx, out=wb, mode="clip")
        sw_sum = float(wb.sum()) if weights.size else float(m)
        batch_loss = self._loss_and_grads(xb, tb, wb)
        batch_loss += 0.5 * self.alpha * self._squared_weights() / sw_sum
        coef_names = [name for name in params if name.startswith("W")]
        l2 = dict.fromkeys(coef_names, self.alpha / sw_sum)
        self._optimizer.step(params, grads, weight_decay=l2)
        return batch_loss * m

    def _compiled_epoch(self, X, target, weights, batch, net, params, grads):
        """A function running one epoch in ``kernels.epoch_kernel`` (the arithmetic
        of :meth:`_step`, batch by batch), or None where it does not apply: dropout
        and sample weights take the module path."""
        if net["dropout"] or weights.size:
            return None
        lins = net["linears"]
        names = [(f"W{i}", f"b{i}") for i in range(len(lins))]
        loss_scale, grad_scale = self._loss_scales(lbfgs=False)
        run = fused_epoch(
            lins,
            net["hidden"][0] if net["hidden"] else None,
            names,
            net["loss"],
            self._optimizer,
            X,
            target,
            batch,
            self.alpha,
            loss_scale,
            grad_scale,
            # the last call's workspace, where it serves (fits never overlap); only
            # that part is kept between calls, never the data
            reuse=self.__dict__.get("_fn_fused_state"),
        )
        self._fn_fused_state = None if run is None else run.state
        return run

    def _trigger_stopping(self, msg):
        """scikit-learn's rule: 'adaptive' SGD divides the rate by 5 until 1e-6."""
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._optimizer.lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._optimizer.lr /= 5.0
        if self.verbose:
            print(f"{msg} Setting learning rate to {self._optimizer.lr:f}")
        return False

    def _squared_weights(self):
        return sum(kernels.sum_squares(W.reshape(-1)) for W in self.coefs_)

    def _fit_lbfgs(
        self,
        X,
        y,
        sample_weight,
        activations,
        deltas,
        coef_grads,
        intercept_grads,
        layer_units,
    ):
        # scikit-learn's layout of the packed vector (code in the wild reads it)
        self._coef_indptr, self._intercept_indptr = [], []
        start = 0
        for W in self.coefs_:
            self._coef_indptr.append((start, start + W.size, W.shape))
            start += W.size
        for b in self.intercepts_:
            self._intercept_indptr.append((start, start + b.size))
            start += b.size
        self._network()
        arrays = [*self.coefs_, *self.intercepts_]
        target, weights = self._targets(y, X.shape[0], X.dtype, sample_weight)

        def loss_grad(packed):
            return self._packed_loss_grad(packed, X, target, weights)

        packed = np.concatenate([a.reshape(-1) for a in arrays]).astype(np.float64)
        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        if iprint > 0:
            options["disp"] = True
        opt_res = scipy.optimize.minimize(
            loss_grad, packed, method="L-BFGS-B", jac=True, options=options
        )
        self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
        self.loss_ = opt_res.fun
        self._copy_packed(opt_res.x)

    def _copy_packed(self, packed):
        """Copy a vector in scikit-learn's packed layout (coefs, then intercepts)
        into the model's own arrays."""
        lo = 0
        for a in [*self.coefs_, *self.intercepts_]:
            np.copyto(a, packed[lo : lo + a.size].reshape(a.shape), casting="same_kind")
            lo += a.size

    def _packed_loss_grad(self, packed, X, target, weights):
        """L-BFGS's objective at ``packed``: scikit-learn's loss with its L2 term, and
        the gradient packed as float64 (prepared ``target`` / ``weights``)."""
        net = self._network()
        self._copy_packed(packed)
        sw_sum = float(weights.sum()) if weights.size else float(X.shape[0])
        loss = self._loss_and_grads(X, target, weights, lbfgs=True)
        loss += 0.5 * self.alpha * self._squared_weights() / sw_sum
        grads = [lin.grads["W"] for lin in net["linears"]]
        for W, g in zip(self.coefs_, grads, strict=True):
            kernels.axpy(
                g.reshape(-1), g.dtype.type(self.alpha / sw_sum), W.reshape(-1)
            )
        grads += [lin.grads["b"] for lin in net["linears"]]
        return loss, np.concatenate([g.reshape(-1) for g in grads]).astype(np.float64)

    def _loss_grad_lbfgs(
        self,
        packed_coef_inter,
        X,
        y,
        sample_weight,
        activations=None,
        deltas=None,
        coef_grads=None,
        intercept_grads=None,
    ):
        """scikit-learn's method, through fastnet's kernels: set the weights from
        ``packed_coef_inter`` and return ``(loss, packed gradient)`` for ``X`` and
        the 2-D encoded targets ``y``. The work arrays scikit-learn takes after
        ``sample_weight`` are accepted and not used."""
        self._network()
        if hasattr(X, "toarray"):
            X = X.toarray()
        X = np.ascontiguousarray(X, dtype=self.coefs_[0].dtype)
        target, weights = self._targets(y, X.shape[0], X.dtype, sample_weight)
        return self._packed_loss_grad(packed_coef_inter, X, target, weights)

    # -- prediction ---------------------------------------------------------------
    def _forward_pass_fast(self, X, check_input=True):
        fast = (
            type(X) is np.ndarray
            and X.ndim == 2
            and X.flags.c_contiguous
            and X.dtype == self.coefs_[0].dtype
            and X.shape[1] == self.n_features_in_
            and X.shape[0] > 0
            and not hasattr(self, "feature_names_in_")
        )
        # (no guard here: predict, predict_proba and score hold it already, and
        # scikit-learn's early stopping calls this from inside the fit)
        if fast:
            with thread_limit(self.n_threads):
                out = self._compiled_forward(X, self._network(), check=check_input)
            if out is not None:
                return out
            # a NaN or an infinity: the full validation raises scikit-learn's error
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        if hasattr(X, "toarray"):
            X = X.toarray()
        X = np.ascontiguousarray(X, dtype=self.coefs_[0].dtype)
        with thread_limit(self.n_threads):
            return self._compiled_forward(X, self._network())

    def _compiled_forward(self, X, net, check=False):
        """The whole forward pass in one serial kernel call, with the module path's
        arithmetic: no Python per layer, and no OpenMP threads woken between BLAS
        calls (they contended with OpenBLAS's threads on 2 cores: 24 ms instead of
        4 ms for 10,000 rows).

        Thread-safe: every call writes into arrays of its own (allocated here, a
        fraction of a microsecond for small batches), the weights are only read, and
        the kernel releases the GIL, so concurrent calls run at once. Returns a new
        array the caller owns; with ``check``, None where ``X`` holds a NaN or an
        infinity (the kernel checks it first).
        """
        compiled = net.get("forward")
        kind = self.out_activation_
        if compiled is None:
            hidden = net["hidden"][0] if net["hidden"] else None
            name = hidden.kernel_name if hidden is not None else "identity"
            dtype = net["linears"][0].params["W"].dtype
            rows = [[lin.params["W"], lin.params["b"]] for lin in net["linears"]]
            table, keep = layer_table(rows, dtype)
            dims = network_dims(net["linears"], net["linears"][0].n_in)
            code, item, one = _native.dtype_args(dtype)
            output = kind if kind in _native.OUT_KINDS else "identity"
            compiled = net["forward"] = {
                "fns": _native.forward_callbacks(name, output, dtype),
                "alpha": float(hidden.alpha) if hidden is not None else 0.0,
                "table": table,
                "keep": [*keep, one],  # the arrays the table points into
                "table_dtype": dtype,
                "dims": dims,
                "hidden": int(dims[1:-1].sum()),
                "dtype": (code, item, one.ctypes.data),
                "run": _native.forward_kernel(),
            }
            compiled["args"] = (
                table.ctypes.data,
                table.shape[0],
                dims.ctypes.data,
                compiled["fns"].ctypes.data,
                compiled["alpha"],
                *compiled["dtype"],
            )
            compiled["keep"] += [dims]
        n = X.shape[0]
        if (
            X.ndim != 2
            or X.shape[1] != compiled["dims"][0]
            or X.dtype != compiled["table_dtype"]
        ):
            raise ValueError(
                f"X has {X.shape[1:]} features of {X.dtype}; the network takes "
                f"{compiled['dims'][0]} of {compiled['table_dtype']}"
            )
        X = np.ascontiguousarray(X)  # the kernel reads rows of the given width
        work = np.empty(n * compiled["hidden"], X.dtype)
        out = np.empty((n, compiled["dims"][-1]), X.dtype)
        if n:
            # ctypes releases the GIL while the kernel runs: calls run at once
            finite = compiled["run"](
                address(X), n, address(work), address(out), check, *compiled["args"]
            )
            if not finite:
                return None
        if kind == "exp":
            np.exp(out, out=out)  # as the module path's output does
        return out

    def __getstate__(self):
        # Compiled kernels and buffers are rebuilt on demand, never pickled. (A copy:
        # on Python 3.11+ object.__getstate__, which scikit-learn's calls, returns
        # the instance's own __dict__, so popping from it would strip the estimator.)
        state = dict(super().__getstate__())
        for key in (
            "_fn_net",
            "_fn_fused_state",
            "_fn_epoch_hook",
            "_fn_resume",
            "_fn_sample_idx",
            "_fn_guard",
        ):
            state.pop(key, None)
        return state


class MLPClassifier(_FastnetMLP, _SkClassifier):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` with its
    arithmetic in fastnet's kernels. Parameters, attributes and methods are
    scikit-learn's (see its documentation), plus:

    activation : also ``'gelu'`` (exact) and ``'leaky_relu'`` (alpha 0.01).
    n_threads : int or None — Numba and BLAS threads during fit and predict; None
        is all cores, but one thread in a Dask worker's task (a grid search on a
        cluster runs one fit per worker thread).
    dropout : float in [0, 1) — inverted dropout after every hidden layer while
        training with ``'sgd'`` or ``'adam'``.
    """

    _parameter_constraints: ClassVar[dict] = {
        **_SkClassifier._parameter_constraints,
        **_FastnetMLP._extra_constraints,
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        n_threads=None,
        dropout=0.0,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
        )
        self.n_threads = n_threads
        self.dropout = dropout

    def _validate_input(self, X, y, incremental, reset):
        fast = self._partial_fit_input(X, y, incremental, reset)
        if fast is None:
            fast = self._fit_input(X, y, incremental, reset)
        if fast is not None:
            return self._in_fitted_dtype(fast[0], incremental), fast[1]
        labels = np.asarray(y) if not hasattr(y, "toarray") else None
        if labels is not None and labels.dtype == object:
            kinds = {isinstance(v, str) for v in labels.ravel()}
            if len(kinds) > 1:
                raise ValueError(
                    "y mixes string and number labels; use one type for all classes"
                )
        return super()._validate_input(X, y, incremental, reset)

    def _partial_fit_input(self, X, y, incremental, reset):
        """scikit-learn's checks of a later ``partial_fit`` call, in a fraction of
        their time, for the common case: float arrays of the fitted width and dtype
        kind, finite, with 1-D labels that are all among ``classes_``. Returns
        ``(X, y)`` as scikit-learn's ``_validate_input`` would (``y`` its label
        binarizer's rows, as bool), or None for anything else, which then takes
        scikit-learn's path and its errors and warnings. (64-32-10 on 1,797 rows: the
        full checks took 1.1 of partial_fit's 2.1 ms.)"""
        if not (
            incremental
            and not reset
            and not self.warm_start
            and hasattr(self, "classes_")
            and not hasattr(self, "feature_names_in_")
            and type(X) is np.ndarray
            and type(y) is np.ndarray
            and X.ndim == 2
            and X.dtype in (np.float32, np.float64)
            and X.shape[0] > 0
            and X.shape[1] == self.n_features_in_
            and y.shape == (X.shape[0],)
            and y.dtype.kind in "iu"
            and self.classes_.dtype.kind in "iu"
        ):
            return None
        classes = self.classes_  # sorted, distinct (LabelBinarizer's)
        codes = np.minimum(np.searchsorted(classes, y), classes.shape[0] - 1)
        X = np.ascontiguousarray(X)
        if not (np.array_equal(classes[codes], y) and _native.all_finite(X)):
            return None  # scikit-learn's path says what is wrong
        return X, _binarized(codes, classes.shape[0])

    def _fit_input(self, X, y, incremental, reset):
        """scikit-learn's checks of a ``fit`` (not ``partial_fit``, nor a warm
        start that keeps its classes), in a fraction of their time, for the common
        case: a finite C-contiguous float array and 1-D integer labels of at least
        two classes. Sets what scikit-learn's ``_validate_input`` sets
        (``n_features_in_``, no ``feature_names_in_``, ``_label_binarizer`` fitted on
        the classes, ``classes_``) and returns ``(X, y)`` as it would; None for
        anything else, which takes scikit-learn's path with its errors and warnings.
        (breast cancer: 1.3 ms of a fit's 2.7 ms outside its epochs.)"""
        if not (
            not incremental
            and reset
            and not (self.warm_start and hasattr(self, "classes_"))
            and type(X) is np.ndarray
            and type(y) is np.ndarray
            and X.ndim == 2
            and X.dtype in (np.float32, np.float64)
            and X.flags.c_contiguous
            and X.shape[0] > 0
            and X.shape[1] > 0
            and y.shape == (X.shape[0],)
            and y.dtype.kind in "iu"
            and y.dtype.isnative  # scikit-learn's classes_ come out native
        ):
            return None
        classes, codes = np.unique(y, return_inverse=True)
        if classes.shape[0] < 2 or not _native.all_finite(X):
            return None  # scikit-learn's path says what is wrong
        # the state LabelBinarizer.fit(y) gives (a test compares them attribute by
        # attribute, in every scikit-learn version CI runs): its type_of_target and
        # unique_labels alone took 0.6 ms
        binarizer = LabelBinarizer()
        binarizer.y_type_ = "binary" if classes.shape[0] == 2 else "multiclass"
        binarizer.sparse_input_ = False
        binarizer.classes_ = classes
        self._label_binarizer = binarizer
        self.classes_ = binarizer.classes_
        self.n_features_in_ = X.shape[1]
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_  # X has no column names
        return X, _binarized(codes.reshape(-1), classes.shape[0])

    def predict_proba(self, X):
        """Class probabilities, as scikit-learn's (same shapes, same checks); the
        fitted check is a cheap attribute test, which matters for single rows."""
        with self._guard().reading():
            if not hasattr(self, "coefs_"):
                return super().predict_proba(X)  # scikit-learn's NotFittedError
            y_pred = self._forward_pass_fast(X)
            if self.n_outputs_ == 1:
                y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred


class MLPRegressor(_FastnetMLP, _SkRegressor):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor`` with its
    arithmetic in fastnet's kernels, plus ``'gelu'`` / ``'leaky_relu'``,
    ``n_threads`` and ``dropout`` (see :class:`MLPClassifier`). ``loss='poisson'``
    rejects negative targets.
    """

    _parameter_constraints: ClassVar[dict] = {
        **_SkRegressor._parameter_constraints,
        **_FastnetMLP._extra_constraints,
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        n_threads=None,
        dropout=0.0,
    ):
        super().__init__(
            loss=loss,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
        )
        self.n_threads = n_threads
        self.dropout = dropout

    def _validate_input(self, X, y, incremental, reset):
        X, y = super()._validate_input(X, y, incremental, reset)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError(
                "loss='poisson' needs non-negative targets; y has negative values"
            )
        return X, y


def _binarized(codes, n_classes):
    """``LabelBinarizer.transform``'s rows, as bool, for the class indices
    ``codes``: one column, the positive class, for two classes; else one-hot."""
    if n_classes == 2:
        return codes.astype(bool).reshape(-1, 1)
    onehot = np.zeros((codes.shape[0], n_classes), bool)
    onehot[np.arange(codes.shape[0]), codes] = True
    return onehot


def _shuffled(idx, random_state):
    """``sklearn.utils.shuffle(idx, random_state=random_state)``: the same draws
    and the same result, without its validation of arguments (on digits' 1,347
    rows 16 us a call instead of 107 us; a whole digits epoch takes 2.1 ms).

    scikit-learn shuffles ``arange(n)`` and indexes ``idx`` with it; the same swaps
    made on a copy of ``idx`` give that result without the index pass."""
    order = idx.copy()
    random_state.shuffle(order)
    return order


class _LastFinite:
    """The weights after the last epoch that left them all finite, in two flat
    buffers used in turn (of the arrays' common dtype, so a copy back is exact).

    :meth:`keep` copies the weights into the spare buffer and checks that buffer in
    one pass: on wine's 13-100-3 network 5.9 us an epoch, against 11.5 us for a copy
    and a check per array (an epoch takes 150-200 us)."""

    def __init__(self, arrays):
        dtype = np.result_type(*arrays)
        sizes = [a.size for a in arrays]
        offsets = list(itertools.accumulate(sizes, initial=0))
        self._flat = [np.empty(offsets[-1], dtype) for _ in range(2)]
        self._views = [
            [
                f[o : o + a.size].reshape(a.shape)
                for o, a in zip(offsets[:-1], arrays, strict=True)
            ]
            for f in self._flat
        ]
        self._copy(0, arrays)
        self._good = 0

    def _copy(self, into, arrays):
        for dst, src in zip(self._views[into], arrays, strict=True):
            np.copyto(dst, src)

    def keep(self, arrays):
        """Keep ``arrays`` and return True where all are finite; else False,
        keeping the last finite ones."""
        spare = 1 - self._good
        self._copy(spare, arrays)
        if not np.isfinite(self._flat[spare]).all():
            return False
        self._good = spare
        return True

    def restore(self, arrays):
        """Copy the kept weights back into ``arrays``."""
        for dst, src in zip(arrays, self._views[self._good], strict=True):
            np.copyto(dst, src)
