"""``Trainer``: minibatch training of any module with a loss and an optimizer.

The Trainer owns the data checks and the epochs (through the shared loop core,
:mod:`fastnet.training.loop`); everything after an epoch is a callback
(:mod:`fastnet.callbacks`).
"""

import math
import os
import warnings

import numpy as np

from .._runtime import native as _native
from .._runtime.checks import as_float_array, check_positive_int, make_generator
from .._runtime.threads import resolve_threads, thread_limit
from ..nn import Activation, Dropout, Linear, Softmax
from ..nn import losses as L
from ..nn.sequential import Sequential
from ..optim import Optimizer
from . import loop
from .callbacks import (
    Checkpoint,
    EarlyStopping,
    EpochFunction,
    FitState,
    History,
    ProgressBar,
    Schedule,
    Scoring,
    call,
    call_epoch_end,
    check_tol,
    check_trainer_callbacks,
    is_callback,
    wants_batches,
)

# History is defined in .callbacks; pickles made before name it here
__all__ = ["History", "Trainer"]


class Trainer:
    """Train ``model`` to minimise ``loss`` with ``optimizer`` over minibatches.

    Each epoch shuffles the rows with a generator seeded by ``random_state`` and runs
    forward, loss, backward and one fused update per batch (the last batch may be
    smaller); then the callbacks run. Buffers are allocated once per batch size: a
    training step allocates no arrays. A ``Sequential`` of ``Linear`` layers with
    one kind of activation between them, without sample weights, runs each epoch as
    one compiled call where it can, bit-identical to the module path; **a callback
    with a batch hook** (``on_batch_end``, as :class:`~fastnet.callbacks.ProgressBar`
    has) sees every batch, so it **makes the fit take the module path**.

    - ``callbacks``: :class:`~fastnet.callbacks.Callback` objects, run in order
      after the Trainer's own (the :class:`History`'s record, the learning-rate
      schedule, the callbacks made from the arguments below) and before the
      checkpoint. A hook returning True from ``on_epoch_end`` stops training after
      that epoch, and ``History.stop_reason`` names it. Plain callables
      ``cb(trainer, epoch, history)`` (``epoch`` from 0) work too: True stops.
    - ``validation_data=(X, y)`` or ``(X, y, sample_weight)``:
      ``History.val_loss`` / ``val_score`` each epoch; the schedule and the early
      stopping then monitor the validation loss, else the training loss.
    - ``early_stopping``: an ``EarlyStopping(patience, tol)``: stop after
      ``patience`` epochs without an improvement of ``tol``, then restore the best
      weights. Without it (and without one in ``callbacks``) one that never stops
      still records ``History.best_epoch``.
    - ``verbose``: a ``ProgressBar()``.
    - ``checkpoint``: a ``Checkpoint(path)``, run last: the file written atomically
      after every epoch; ``fit(..., resume=True)`` continues from it and ends with
      the same weights as an uninterrupted run.
    - A non-finite loss stops training with a ``RuntimeWarning`` and puts back the
      weights of the last completed epoch: finite, nothing lost.
    - ``n_threads``: Numba and BLAS threads for the fit, restored afterwards; None
      is all cores, or one thread in a Dask worker's task.

    A keyword argument and its callback in ``callbacks`` (``early_stopping=True``
    and an ``EarlyStopping``, ...) are one too many: a ``ValueError``.
    """

    def __init__(
        self,
        model,
        loss,
        optimizer,
        batch_size=32,
        epochs=10,
        random_state=None,
        validation_data=None,
        early_stopping=False,
        patience=10,
        tol=1e-4,
        callbacks=(),
        verbose=False,
        n_threads=None,
        checkpoint=None,
        shuffle=True,
    ):
        _check_parts(model, loss, optimizer)
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.epochs = check_positive_int(epochs, "epochs")
        self.random_state = random_state
        self.validation_data = validation_data
        self.early_stopping = bool(early_stopping)
        self.patience = check_positive_int(patience, "patience")
        self.tol = check_tol(tol)
        self.verbose = bool(verbose)
        if n_threads is not None:
            check_positive_int(n_threads, "n_threads")
        self.n_threads = n_threads
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.shuffle = bool(shuffle)
        made = {
            EarlyStopping: "early_stopping=True" if self.early_stopping else None,
            ProgressBar: "verbose=True" if self.verbose else None,
            Checkpoint: None if checkpoint is None else "checkpoint=",
        }
        self.callbacks = check_trainer_callbacks(callbacks, made)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_fused_state", None)  # a compiled epoch's workspace: made again
        return state

    # -- data ------------------------------------------------------------------------
    def _dtype(self):
        for p in self.model.params.values():
            return p.dtype
        return np.dtype(np.float64)

    def _prepare(self, X, y, sample_weight, name):
        X = as_float_array(X, name, self._dtype())
        if X.ndim == 0 or X.shape[0] == 0:
            raise ValueError(f"{name} needs at least one sample, got shape {X.shape}")
        if X.flags.c_contiguous and X.dtype in (np.float32, np.float64):
            finite = _native.all_finite(X)  # one vectorised pass, no bool array
        else:
            finite = np.isfinite(X).all()
        if not finite:
            raise ValueError(f"{name} contains NaN or infinity")
        if len(y) != X.shape[0]:
            raise ValueError(
                f"{name} has {X.shape[0]} samples but its targets have {len(y)}"
            )
        width = self._chain_output_width(X, name)
        if width is not None:
            pred_shape, pred_dtype = (X.shape[0], width), X.dtype
        else:
            try:
                out = self.model.forward(X[:1], train=False)
            except (ValueError, TypeError) as e:  # its shapes are of one sample
                raise type(e)(
                    f"{e} (from the model run on the first sample of {name}, "
                    f"whose shape is {X.shape})"
                ) from e
            pred_shape, pred_dtype = (X.shape[0], *np.shape(out)[1:]), out.dtype
        t, w = self.loss.prepare(y, pred_shape, pred_dtype, sample_weight)
        return X, t, w

    def _chain_output_width(self, X, name="X"):
        """The model's output width for the 2-D ``X`` where the model is a
        ``Sequential`` of ``Linear`` layers of ``X``'s dtype, whose widths chain from
        ``X``'s, and activations (elementwise); else None, and the model runs on
        ``X``'s first row to tell (and to raise its own error), which costs a
        small network's fit a noticeable share of its time.

        Widths that do not chain raise a ``ValueError`` naming the modules, not the
        model's error about its one-row input, wherever only width-keeping modules
        (activations, ``Dropout``, ``Softmax``) stand between the ``Linear`` layers,
        whatever the dtypes."""
        if not isinstance(self.model, Sequential) or X.ndim != 2:
            return None
        mods = self.model.modules
        width, previous, plain = X.shape[1], None, True
        for i, m in enumerate(mods):
            if type(m) is Linear:
                if m.n_in != width and previous is None:
                    raise ValueError(
                        f"{name} has {X.shape[1]} features per sample, but the "
                        f"model's first Linear layer (module {i}) takes {m.n_in}"
                    )
                if m.n_in != width:
                    raise ValueError(
                        f"the model's layers do not chain: module {previous} "
                        f"({mods[previous]!r}) gives {width} features, but module "
                        f"{i} ({m!r}) takes {m.n_in}"
                    )
                width, previous = m.n_out, i
            elif isinstance(m, (Dropout, Softmax)):
                plain = False
            elif not isinstance(m, Activation):
                return None  # a module that may change the width: its forward tells
        # a layer of another dtype casts: the model's own forward tells the output
        if plain and all(m.dtype == X.dtype for m in mods if type(m) is Linear):
            return width
        return None

    def _validation(self):
        """``validation_data`` checked and prepared as ``(X, target, weights)``."""
        if self.validation_data is None:
            return None
        vd = tuple(self.validation_data)
        if len(vd) not in (2, 3):
            raise ValueError("validation_data must be (X, y) or (X, y, sample_weight)")
        return self._prepare(*vd[:2], vd[2] if len(vd) == 3 else None, "validation X")

    # -- training --------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, resume=False):
        """Train on ``X``, ``y`` and optional ``sample_weight``; return the History.

        ``resume=True`` first loads the checkpoint (``checkpoint=``, or a
        ``Checkpoint`` in ``callbacks``) where its file exists."""
        if resume and not any(isinstance(cb, Checkpoint) for cb in self._callbacks()):
            raise ValueError(
                "resume=True needs Trainer(checkpoint=path) or a Checkpoint callback"
            )
        with thread_limit(self.n_threads):
            return self._fit(X, y, sample_weight, resume)

    def _callbacks(self):
        """The fit's callbacks in the order they run: the History's record and the
        schedule; an EarlyStopping (one that only tracks the best epoch where
        neither ``early_stopping`` nor ``callbacks`` gives one) and the progress bar;
        the user's callbacks; the checkpoint, last, saving what the others did."""
        user = [cb if is_callback(cb) else EpochFunction(cb) for cb in self.callbacks]
        own = [Scoring(), Schedule()]
        if not any(isinstance(cb, EarlyStopping) for cb in user):
            patience = self.patience if self.early_stopping else None
            own.append(EarlyStopping(patience, self.tol, "auto", self.early_stopping))
        if self.verbose:
            own.append(ProgressBar())
        last = [] if self.checkpoint is None else [Checkpoint(self.checkpoint)]
        return (*own, *user, *last)

    def _fit(self, X, y, sample_weight, resume):
        X, t, w = self._prepare(X, y, sample_weight, "X")
        callbacks = self._callbacks()
        self.history = History()
        extra = {
            "history": self.history,
            "validation": self._validation(),
            "rng": make_generator(self.random_state),
            "resume": resume,
            "early_stopping": next(
                cb for cb in callbacks if isinstance(cb, EarlyStopping)
            ),
        }
        state = FitState(sample_order=np.arange(X.shape[0]), extra=extra)
        call(callbacks, "on_fit_begin", self, state)  # may load the checkpoint
        try:
            self._epochs(X, t, w, callbacks, state)
        finally:
            if state.stop_reason is not None:
                self.history.stop_reason = state.stop_reason
            call(callbacks, "on_fit_end", self, state)
        return self.history

    def _epochs(self, X, t, w, callbacks, state):
        """The epochs from ``state.epoch`` (0, or after the checkpoint's) to the last
        or to a stop; a non-finite loss or weights put back the last finite ones."""
        n = X.shape[0]
        rng = state.extra["rng"]
        weights = list(self.model.params.values())
        finite = loop.LastFinite(weights) if weights else None
        run = self._epoch_runner(X, t, w, callbacks, state)
        for epoch in range(state.epoch, self.epochs):
            state.epoch = epoch
            state.sample_order = rng.permutation(n) if self.shuffle else np.arange(n)
            call(callbacks, "on_epoch_begin", self, state)
            loss = run(state.sample_order)
            if loss is None or (finite is not None and not finite.keep(weights)):
                if finite is not None:
                    finite.restore(weights)
                state.stop_reason = "non-finite loss"
                warnings.warn(
                    f"the training loss became NaN or infinite in epoch {epoch}; "
                    "training stopped and the weights of the last completed epoch "
                    "were restored (try a smaller learning rate)",
                    RuntimeWarning,
                    stacklevel=4,  # the caller of fit
                )
                return
            state.epoch, state.loss = epoch + 1, loss
            state.samples_seen += n
            if call_epoch_end(callbacks, self, state):
                return

    def _epoch_runner(self, X, t, w, callbacks, state):
        """``run(order)``: one epoch over the rows ``order``, giving the mean loss,
        or None where a loss was not finite. The compiled epoch where it applies
        and no callback has a batch hook; else the modules, batch by batch."""
        hooks = callbacks if wants_batches(callbacks) else ()
        run = None if hooks else self._fused_epoch(X, t, w)
        return run if run is not None else self._module_epoch(X, t, w, hooks, state)

    def _fused_epoch(self, X, t, w):
        """The epoch as one compiled call (``loop.compiled_epoch``: the same
        arithmetic as :meth:`_module_epoch`) for a ``Sequential`` chain it runs;
        None for anything else."""
        if not isinstance(self.model, Sequential):
            return None
        run = loop.compiled_epoch(
            self.model.modules,
            self.loss,
            self.optimizer,
            X,
            t,
            w,
            min(self.batch_size, X.shape[0]),
            # the previous fit's workspace serves again where the network, its
            # arrays and the optimizer's are the same (fit is not reentrant); only
            # that part is kept between fits, never the data
            reuse=self.__dict__.get("_fused_state"),
            threads=resolve_threads(self.n_threads),
        )
        self._fused_state = None if run is None else run.state
        if run is None:
            return None

        def epoch(order):
            total = run(order)
            return total / X.shape[0] if math.isfinite(total) else None

        return epoch

    def _module_epoch(self, X, t, w, hooks, state):
        """The epoch through the modules, batch by batch, calling ``hooks``'
        ``on_batch_end`` after each batch's update."""
        batches = loop.Batches(X, t, w)
        params, grads = self.model.params, self.model.grads
        n, size = X.shape[0], self.batch_size

        modules = self.model.modules if isinstance(self.model, Sequential) else [None]

        def epoch(order):
            with loop.module_shares(modules, min(size, n)):
                return _epoch(order)

        def _epoch(order):
            total = 0.0
            for k, lo in enumerate(range(0, n, size)):
                xb, tb, wb = batches.gather(order[lo : lo + size])
                out = self.model.forward(xb, train=True)
                value = self.loss.forward_prepared(out, tb, wb)
                if not math.isfinite(value):
                    return None
                self.model.backward(self.loss.backward())
                self.optimizer.step(params, grads)
                rows = xb.shape[0]
                total += value * rows
                if hooks:
                    state.batch, state.batch_rows, state.batch_loss = k, rows, value
                    call(hooks, "on_batch_end", self, state)
            return total / n

        return epoch


def _check_parts(model, loss, optimizer):
    for attr in ("forward", "backward", "params", "grads"):
        if not hasattr(model, attr):
            raise TypeError(f"model must be a fastnet module (no {attr!r})")
    if not isinstance(loss, L.Loss):
        raise TypeError(f"loss must be a fastnet loss, got {type(loss).__name__}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            "optimizer must be a fastnet.optim optimizer, got "
            f"{type(optimizer).__name__}"
        )
