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
from numbers import Integral, Real
from typing import ClassVar

import numpy as np

from .. import kernels
from .._runtime.memory import refuse_if_short
from .._runtime.threads import FitGuard, resolve_threads, thread_limit
from ..nn.activations import ESTIMATOR_ACTIVATIONS
from . import inputs, lbfgs
from ._compat import Interval, StrOptions, validate_data
from ._compat import SkMLPClassifier as _SkClassifier
from ._compat import SkMLPRegressor as _SkRegressor
from .network import OUTPUT_LOSSES as OUTPUT_LOSSES
from .network import MLPNetwork
from .stochastic import NON_FINITE_WEIGHTS as NON_FINITE_WEIGHTS
from .stochastic import fit_stochastic

#: ``activation=`` name -> hidden-layer module class (the registry of
#: ``fastnet.nn.activations``)
HIDDEN_ACTIVATIONS = ESTIMATOR_ACTIVATIONS


class _FastnetMLP:
    """The compiled forward/backward/update machinery shared by both estimators."""

    _extra_constraints: ClassVar[dict] = {
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "n_threads": [None, Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "callbacks": [None, list, tuple],
    }

    # -- the network over coefs_ / intercepts_ ----------------------------------------
    def _network(self):
        """The :class:`~fastnet.sklearn.network.MLPNetwork` over ``coefs_`` and
        ``intercepts_``, rebuilt whenever they were replaced (warm starts, L-BFGS
        unpacking, users assigning them) or ``activation``, ``dropout`` or the
        output activation changed (``set_params`` after a fit)."""
        net = self.__dict__.get("_fn_net")
        settings = (self.activation, self.dropout, self.out_activation_)
        if net is not None and net.serves(self.coefs_, self.intercepts_, settings):
            return net
        seed = self._dropout_seed() if self.dropout > 0 else None
        net = MLPNetwork(self.coefs_, self.intercepts_, settings, seed)
        n = len(net.linears)
        self.coefs_, self.intercepts_ = net.arrays[:n], net.arrays[n:]
        self._fn_net = net
        return net

    def _dropout_seed(self):
        rs = getattr(self, "_random_state", None)
        return None if rs is None else rs.randint(2**31)

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
        return self._network().loss_and_grads(
            X, target, weights, *self._loss_scales(lbfgs)
        )

    def _targets(self, y, n, dtype, sample_weight):
        """(target, weights) for the fused loss, checked once per fit."""
        y = np.asarray(y)
        if self.out_activation_ == "softmax":
            y = y.argmax(axis=1)  # class indices from scikit-learn's one-hot rows
        else:
            y = y.reshape(n, -1)
        loss = self._network().loss
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

    def _initialize(self, y, layer_units, dtype):
        # before scikit-learn allocates the weights: refuse a fit that cannot fit
        refuse_if_short(
            fit_memory(self, layer_units, dtype, rows=y.shape[0]),
            f"{type(self).__name__}.fit with layers {list(layer_units)}",
        )
        super()._initialize(y, layer_units, dtype)

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
        # scikit-learn's work arrays are not used: fastnet's modules own theirs
        fit_stochastic(self, X, y, sample_weight, incremental)

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
        # scikit-learn's work arrays are not used: fastnet's modules own theirs
        lbfgs.fit_lbfgs(self, X, y, sample_weight)

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
        return lbfgs.loss_grad(self, packed_coef_inter, X, y, sample_weight)

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
            out = self._compiled_forward(X, self._network(), check=check_input)
            if out is not None:
                return out
            # a NaN or an infinity: the full validation raises scikit-learn's error
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        if hasattr(X, "toarray"):
            X = X.toarray()
        # scikit-learn's output type: its products mix the data's and the weights'
        # dtypes (float64 for float64 data and float32 weights). The arithmetic
        # here stays in the weights' dtype (README, differences).
        dtype = self.coefs_[0].dtype
        out_dtype = np.result_type(np.asarray(X).dtype, dtype)
        X = np.ascontiguousarray(X, dtype=dtype)
        out = self._compiled_forward(X, self._network())
        return out if out.dtype == out_dtype else out.astype(out_dtype)

    def _compiled_forward(self, X, net, check=False):
        """The whole forward pass in native code, with the module path's
        arithmetic (``fastnet._runtime.mlp.CompiledForward``, made once per
        network), on at most ``n_threads`` of fastnet's own threads (it sets no
        thread limit: the forward uses neither Numba's threads nor BLAS's).
        Thread-safe; returns a new array the caller owns; with ``check``, None
        where ``X`` holds a NaN or an infinity (the kernel checks it first).
        """
        return net.compiled_forward()(X, check, resolve_threads(self.n_threads))

    def __setstate__(self, state):
        # parameters added since an estimator was pickled take their defaults
        # (fastnet 0.1.0's had no callbacks)
        super().__setstate__({"callbacks": None, **state})

    def __getstate__(self):
        # Compiled kernels and buffers are rebuilt on demand, never pickled. (A copy:
        # on Python 3.11+ object.__getstate__, which scikit-learn's calls, returns
        # the instance's own __dict__, so popping from it would strip the estimator.)
        state = dict(super().__getstate__())
        for key in (
            "_fn_net",
            "_fn_fused_state",
            "_fn_guard",
        ):
            state.pop(key, None)
        return state


class MLPClassifier(_FastnetMLP, _SkClassifier):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier`` with its
    arithmetic in fastnet's kernels. Parameters, attributes and methods are
    scikit-learn's (see its documentation), plus:

    activation : also ``'gelu'`` (exact) and ``'leaky_relu'`` (alpha 0.01).
    n_threads : int or None — Numba and BLAS threads during fit, and at most this
        many of fastnet's own threads per prediction; None is all cores, but one
        thread in a Dask worker's task (a grid search on a cluster runs one fit per
        worker thread).
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
        callbacks=None,
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
        self.callbacks = callbacks

    def _validate_input(self, X, y, incremental, reset):
        fast = inputs.partial_fit_input(self, X, y, incremental, reset)
        if fast is None:
            fast = inputs.fit_input(self, X, y, incremental, reset)
        if fast is not None:
            return self._in_fitted_dtype(fast[0], incremental), fast[1]
        labels = np.asarray(y) if not hasattr(y, "toarray") else None
        if labels is not None and labels.dtype == object:
            kinds = {type(v).__name__ for v in labels.ravel()}
            if "str" in kinds and len(kinds) > 1:
                # a TypeError, as scikit-learn's (its labels cannot be sorted)
                raise TypeError(
                    f"y mixes labels of types {', '.join(sorted(kinds))}; use one "
                    "type for all classes"
                )
        return super()._validate_input(X, y, incremental, reset)

    def _outputs(self, X):
        """The fitted network's outputs for ``X`` after scikit-learn's checks, 1-D
        for one output (scikit-learn's ``_predict`` before its labels); call under
        the fit guard."""
        y_pred = self._forward_pass_fast(X)
        return y_pred.ravel() if self.n_outputs_ == 1 else y_pred

    def predict(self, X):
        """Class labels, as scikit-learn's (same checks, same labels), under the fit
        guard. The labels are picked from the outputs as its label binarizer's
        ``inverse_transform`` picks them, without that method's checks, which took
        100 us of a one-row prediction's 130 (multilabel targets still go through
        it)."""
        with self._guard().reading():
            if not hasattr(self, "coefs_"):
                return super().predict(X)  # scikit-learn's NotFittedError
            return _labels(self._label_binarizer, self._outputs(X))

    def predict_proba(self, X):
        """Class probabilities, as scikit-learn's (same shapes, same checks); the
        fitted check is a cheap attribute test, which matters for single rows."""
        with self._guard().reading():
            if not hasattr(self, "coefs_"):
                return super().predict_proba(X)  # scikit-learn's NotFittedError
            y_pred = self._outputs(X)
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred


def _labels(binarizer, y_pred):
    """``binarizer.inverse_transform(y_pred)`` (scikit-learn's ``LabelBinarizer``,
    dense outputs): the first largest output's class for multiclass targets, the
    positive class above the threshold for binary ones; anything else through the
    method itself."""
    classes = binarizer.classes_
    if (
        type(y_pred) is np.ndarray
        and classes.shape[0] >= 2
        and not getattr(binarizer, "sparse_input_", False)
    ):
        if binarizer.y_type_ == "multiclass" and y_pred.ndim == 2:
            return classes[y_pred.argmax(axis=1)]
        if binarizer.y_type_ == "binary" and y_pred.ndim == 1:
            threshold = (binarizer.pos_label + binarizer.neg_label) / 2.0
            return classes[(y_pred > threshold).astype(np.intp)]
    return binarizer.inverse_transform(y_pred)


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
        callbacks=None,
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
        self.callbacks = callbacks

    def _validate_input(self, X, y, incremental, reset):
        X, y = super()._validate_input(X, y, incremental, reset)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError(
                "loss='poisson' needs non-negative targets; y has negative values"
            )
        return X, y


def fit_memory(est, layer_units, dtype, rows):
    """Bytes a fit of ``est`` takes, from its layer sizes: the weights, their
    gradients and scikit-learn's gradient arrays (allocated, not used), the
    optimizer's state (Adam two slots, SGD with momentum one; L-BFGS scipy's ten
    float64 correction pairs, its work vectors and the packed copies of the weights
    and gradient, 40 float64 a weight in all), the largest float64 draw of
    scikit-learn's initialisation, and a batch's activations and gradients (the
    whole data for L-BFGS). Within 20 % of tracemalloc's peak for a fit of
    64-3000-500-10 on digits (tests/reliability/test_memory.py)."""
    item = np.dtype(dtype).itemsize
    pairs = list(itertools.pairwise(layer_units))
    params = sum(a * b + b for a, b in pairs)
    state = {"adam": 2 * item, "sgd": item if est.momentum > 0 else 0, "lbfgs": 40 * 8}
    batch = rows
    if est.solver != "lbfgs" and est.batch_size != "auto":
        batch = min(est.batch_size, rows)
    elif est.solver != "lbfgs":
        batch = min(200, rows)
    activations = batch * (3 * sum(layer_units[1:]) + layer_units[0]) * item
    largest_draw = max(a * b for a, b in pairs) * 8
    return params * (3 * item + state[est.solver]) + largest_draw + activations
