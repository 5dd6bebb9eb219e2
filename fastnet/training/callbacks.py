"""Callbacks: hooks into a fit, for ``Trainer`` and the estimators alike.

A callback is an object with some of the hooks of :class:`Callback`; each hook gets
the object being fitted (``owner``: a ``Trainer``, or an ``MLPClassifier`` /
``MLPRegressor``) and the fit's :class:`FitState`. ``on_epoch_end`` returning True
asks the fit to stop after that epoch (skorch's and Keras's shape).

``Trainer(callbacks=[...])`` and ``MLPClassifier(callbacks=[...])`` take them. A
callback that defines ``on_batch_end`` sees every minibatch, which the compiled
epoch (one native call per epoch) cannot show: the fit then takes the module path,
with the same arithmetic, batch by batch.

The ``Trainer``'s own concerns are callbacks here too, each for ``Trainer`` fits:
:class:`Scoring` fills the :class:`History`, :class:`EarlyStopping` tracks the best
epoch (and stops), :class:`ProgressBar` shows the progress and :class:`Checkpoint`
writes the file a fit resumes from. They read what a ``Trainer`` puts in
:attr:`FitState.extra`:

- ``"history"``: the fit's :class:`History`;
- ``"validation"``: the validation data, checked and prepared as ``(X, target,
  weights)``, or None;
- ``"rng"``: the ``numpy.random.Generator`` that draws each epoch's row order;
- ``"resume"``: ``fit``'s ``resume`` argument;
- ``"early_stopping"``: the fit's first :class:`EarlyStopping`, whose best epoch
  the ``History`` records (the ``Trainer`` makes one where ``callbacks`` has none).
"""

import math
import numbers
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np
from sklearn.metrics import accuracy_score, r2_score

from .._runtime.archive import open_archive
from .._runtime.atomic import save_npz
from .._runtime.checks import check_positive_int
from ..nn import losses as L
from .checkpoint import optimizer_arrays, restore_optimizer


@dataclass
class FitState:
    """What a fit shows its callbacks; a hook may read any field and, where said,
    set it."""

    #: epochs completed (an estimator's ``n_iter_``); in ``on_epoch_end`` it
    #: counts the epoch that just ended
    epoch: int = 0
    #: the last epoch's mean training loss (scikit-learn's ``loss_`` for estimators)
    loss: float = math.nan
    #: the row order of the current epoch. Estimators shuffle the previous epoch's
    #: order again (scikit-learn's rule), so it is part of the state a resumed fit
    #: restores: ``on_fit_begin`` may set it to an int array of the same shape
    sample_order: np.ndarray | None = None
    #: in ``on_batch_end``: the batch's index in its epoch, its rows and its loss
    batch: int = 0
    batch_rows: int = 0
    batch_loss: float = math.nan
    #: set by a hook that asks to stop, or by the fit's own rule; None: ran on
    stop_reason: str | None = None
    #: rows trained on, all epochs together (``Trainer``; an estimator's ``t_``)
    samples_seen: int = 0
    #: anything else a fit tells its callbacks (``Trainer``: the keys listed in
    #: this module's docstring, the ``History`` among them)
    extra: dict = field(default_factory=dict)


class Callback:
    """The hooks, each doing nothing: subclass and override those you need.

    - ``on_fit_begin(owner, state)``: before the first epoch (after the optimizer
      and the random state are made, so a hook may restore them);
    - ``on_epoch_begin(owner, state)``;
    - ``on_batch_end(owner, state)``: after each minibatch's update; defining it
      makes the fit take the module path;
    - ``on_epoch_end(owner, state)``: after each epoch's bookkeeping (loss curve,
      validation, schedule); return True to stop;
    - ``on_fit_end(owner, state)``: once, after the last epoch, also when stopped
      early or by a non-finite loss.

    With ``solver="lbfgs"`` an estimator calls only ``on_fit_begin`` and
    ``on_fit_end``: L-BFGS has iterations, not epochs.
    """

    def on_fit_begin(self, owner, state):
        pass

    def on_epoch_begin(self, owner, state):
        pass

    def on_batch_end(self, owner, state):
        pass

    def on_epoch_end(self, owner, state):
        return None

    def on_fit_end(self, owner, state):
        pass


HOOKS = ("on_fit_begin", "on_epoch_begin", "on_batch_end", "on_epoch_end",
         "on_fit_end")  # fmt: skip


def check_callbacks(callbacks, where="callbacks"):
    """``callbacks`` as a tuple, each an object with at least one hook of
    :class:`Callback`; a ``TypeError`` naming the first that is not."""
    if callbacks is None:
        return ()
    if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"{where} must be a list of callbacks, got {callbacks!r}")
    for cb in callbacks:
        if not is_callback(cb):
            raise TypeError(
                f"{where}: {cb!r} is not a callback (it has none of the hooks "
                f"{', '.join(HOOKS)}; subclass fastnet.callbacks.Callback)"
            )
    return tuple(callbacks)


def is_callback(obj):
    """Whether ``obj`` has at least one hook of :class:`Callback`."""
    return any(callable(getattr(obj, h, None)) for h in HOOKS)


def wants_batches(callbacks):
    """Whether any of ``callbacks`` has its own ``on_batch_end``."""
    for cb in callbacks:
        hook = getattr(type(cb), "on_batch_end", None)
        if hook is not None and hook is not Callback.on_batch_end:
            return True
    return False


def call(callbacks, hook, owner, state):
    """Call ``hook`` of each callback that has it; True where one returned True
    (the others still run: a checkpoint is written even when another stops)."""
    stop = False
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None and fn(owner, state) is True:
            stop = True
    return stop


def call_epoch_end(callbacks, owner, state):
    """:func:`call` of ``on_epoch_end`` that also names, in ``state.stop_reason``,
    the first callback that asked to stop without giving a reason."""
    stop = False
    for cb in callbacks:
        fn = getattr(cb, "on_epoch_end", None)
        if fn is not None and fn(owner, state) is True:
            if state.stop_reason is None:
                state.stop_reason = f"callback {type(cb).__name__!r}"
            stop = True
    return stop


def check_tol(tol):
    """``tol`` as a float, which must be a number >= 0."""
    if not isinstance(tol, numbers.Real) or not tol >= 0:
        raise ValueError(f"tol must be a number >= 0, got {tol!r}")
    return float(tol)


# -- the History and what fills it -----------------------------------------------------
@dataclass
class History:
    """Per-epoch records of a ``Trainer.fit`` (importable from
    ``fastnet.training.trainer`` too, where older pickles find it)."""

    loss: list = field(default_factory=list)  # mean training loss of each epoch
    val_loss: list = field(default_factory=list)
    val_score: list = field(default_factory=list)  # accuracy or R² on validation data
    epoch_time: list = field(default_factory=list)  # seconds
    best_epoch: int | None = None  # epoch (0-based) of the best monitored loss
    stop_reason: str | None = None  # None: all epochs ran


def score(loss, pred, target, weights):
    """Accuracy for classification losses, R² for regression ones, weighted by the
    rows' ``weights`` where there are any (an empty array: none)."""
    w = weights if weights.size else None
    if isinstance(loss, L.SoftmaxCrossEntropy):
        labels = target if target.ndim == 1 else target.argmax(axis=1)
        return accuracy_score(labels, pred.argmax(axis=1), sample_weight=w)
    if isinstance(loss, L.SigmoidBinaryCrossEntropy):
        return accuracy_score(
            target > 0.5, pred.reshape(target.shape) > 0, sample_weight=w
        )
    if isinstance(loss, L.PoissonLoss):
        pred = np.exp(pred)
    return r2_score(target, pred.reshape(target.shape), sample_weight=w)


def monitored(state, monitor="auto"):
    """The last epoch's ``monitor`` in a ``Trainer`` fit: ``"loss"`` the training
    loss, ``"val_loss"`` the validation loss, ``"auto"`` the validation loss where
    the fit has validation data, else the training loss."""
    if monitor == "auto":
        monitor = "loss" if state.extra.get("validation") is None else "val_loss"
    history = state.extra["history"]
    return history.val_loss[-1] if monitor == "val_loss" else history.loss[-1]


class Scoring(Callback):
    """Fills a ``Trainer`` fit's :class:`History` after each epoch: the mean
    training loss, the epoch's seconds and, with validation data, the validation
    loss and score (:func:`score`). Every ``Trainer`` fit runs one, first, so that
    the callbacks after it see the epoch recorded; it is not for ``callbacks=``."""

    def on_epoch_begin(self, owner, state):
        self._began = time.perf_counter()

    def on_epoch_end(self, owner, state):
        history = state.extra["history"]
        history.loss.append(state.loss)
        history.epoch_time.append(time.perf_counter() - self._began)
        validation = state.extra.get("validation")
        if validation is not None:
            X, target, weights = validation
            out = owner.model.forward(X, train=False)
            history.val_loss.append(owner.loss.forward_prepared(out, target, weights))
            history.val_score.append(float(score(owner.loss, out, target, weights)))


# -- the Trainer's plain parts: what callbacks= takes, the schedule ------------------
def check_trainer_callbacks(callbacks, made=None):
    """A ``Trainer``'s ``callbacks`` as a tuple, each a callback or a plain callable
    (which the fit wraps in an :class:`EpochFunction`): a ``TypeError`` naming the
    first that is neither. ``made``: ``{callback class: the keyword argument that
    makes one}`` (None where it is not given); a ``ValueError`` where ``callbacks``
    has one of those too."""
    if callbacks is None:
        return ()
    if is_callback(callbacks) or callable(callbacks) or isinstance(callbacks, str):
        raise TypeError(f"callbacks must be a list of callbacks, got {callbacks!r}")
    callbacks = tuple(callbacks)
    for cb in callbacks:
        if not (is_callback(cb) or callable(cb)):
            raise TypeError(
                "callbacks must be callbacks (fastnet.callbacks.Callback) or "
                f"callables cb(trainer, epoch, history), got {cb!r}"
            )
    for kind, argument in (made or {}).items():
        if argument is not None and any(isinstance(cb, kind) for cb in callbacks):
            raise ValueError(
                f"{argument} makes a {kind.__name__}, and callbacks has one too: "
                "give one of them"
            )
    return callbacks


class Schedule(Callback):
    """The learning-rate schedule's step after each epoch of a ``Trainer`` fit,
    given the loss :func:`monitored` by ``"auto"``. Every ``Trainer`` fit runs one,
    after :class:`Scoring`; it is not for ``callbacks=``."""

    def on_epoch_end(self, owner, state):
        epoch = state.epoch - 1
        owner.optimizer.epoch_end(epoch, state.samples_seen, monitored(state))


class EpochFunction(Callback):
    """A plain callable ``fn(trainer, epoch, history)`` (``epoch`` from 0) as an
    ``on_epoch_end`` hook: the ``Trainer`` callbacks of fastnet 0.1, which it wraps
    in one of these. Returning True stops, the reason naming ``fn``."""

    def __init__(self, fn):
        self.fn = fn

    def on_epoch_end(self, owner, state):
        if self.fn(owner, state.epoch - 1, state.extra["history"]) is not True:
            return False
        if state.stop_reason is None:
            state.stop_reason = f"callback {getattr(self.fn, '__name__', self.fn)!r}"
        return True


# -- stopping --------------------------------------------------------------------------
class EarlyStopping(Callback):
    """Stop a ``Trainer`` fit after ``patience`` epochs in which the monitored loss
    did not fall below its best by more than ``tol``; with ``restore_best``, put
    back the weights of the best epoch when the fit ends (also after a stop for a
    non-finite loss).

    ``monitor``: ``"auto"`` (the validation loss where the fit has validation data,
    else the training loss), ``"loss"`` or ``"val_loss"`` (see :func:`monitored`).
    The best epoch goes to ``History.best_epoch``. ``patience=None`` never stops: it
    only tracks the best epoch, as a ``Trainer`` without ``early_stopping`` does.

    What it tracks, reset by each fit and kept in a :class:`Checkpoint`: ``best``
    (the best monitored value), ``bad_epochs`` (epochs since it) and
    ``best_params`` (a copy of the weights it had)."""

    MONITORS = ("auto", "loss", "val_loss")

    def __init__(self, patience=10, tol=1e-4, monitor="auto", restore_best=True):
        if patience is not None:
            patience = check_positive_int(patience, "patience")
        if monitor not in self.MONITORS:
            raise ValueError(f"monitor must be one of {self.MONITORS}, got {monitor!r}")
        self.patience = patience
        self.tol = check_tol(tol)
        self.monitor = monitor
        self.restore_best = bool(restore_best)

    def __repr__(self):
        return (
            f"EarlyStopping(patience={self.patience}, tol={self.tol}, "
            f"monitor={self.monitor!r}, restore_best={self.restore_best})"
        )

    def on_fit_begin(self, owner, state):
        if self.monitor == "val_loss" and state.extra.get("validation") is None:
            raise ValueError("EarlyStopping(monitor='val_loss') needs validation_data")
        self.best, self.bad_epochs = math.inf, 0
        self.best_params = {k: np.copy(v) for k, v in owner.model.params.items()}

    def on_epoch_end(self, owner, state):
        value = monitored(state, self.monitor)
        if value < self.best - self.tol:
            self.best, self.bad_epochs = value, 0
            state.extra["history"].best_epoch = state.epoch - 1
            for k, v in owner.model.params.items():
                np.copyto(self.best_params[k], v)
        else:
            self.bad_epochs += 1
        if self.patience is None or self.bad_epochs < self.patience:
            return False
        if state.stop_reason is None:
            state.stop_reason = (
                f"no improvement of {self.tol} in {self.patience} epochs"
            )
        return True

    def on_fit_end(self, owner, state):
        if self.restore_best and state.extra["history"].best_epoch is not None:
            for k, v in owner.model.params.items():
                np.copyto(v, self.best_params[k])


# -- showing ---------------------------------------------------------------------------
class ProgressBar(Callback):
    """A ``Trainer`` fit's progress on stderr (``Trainer(verbose=True)``): a tqdm bar
    through each epoch's rows with the last batch's loss, then a line for the epoch
    (its loss, the validation loss, samples per second). Its batch hook makes the
    fit take the module path."""

    _bar = None

    def on_epoch_begin(self, owner, state):
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=len(state.sample_order),
            desc=f"epoch {state.epoch + 1}/{owner.epochs}",
            unit="sample",
            leave=False,
        )

    def on_batch_end(self, owner, state):
        self._bar.update(state.batch_rows)
        self._bar.set_postfix(loss=f"{state.batch_loss:.4g}", refresh=False)

    def on_epoch_end(self, owner, state):
        from tqdm.auto import tqdm

        self._close()
        history = state.extra["history"]
        val = ""
        if state.extra.get("validation") is not None:
            val = f", val_loss {history.val_loss[-1]:.4g}"
        rate = len(state.sample_order) / max(history.epoch_time[-1], 1e-9)
        tqdm.write(
            f"epoch {state.epoch}/{owner.epochs}: loss {state.loss:.4g}{val}, "
            f"{rate:.0f} samples/s",
            file=sys.stderr,
        )

    def on_fit_end(self, owner, state):
        self._close()  # an epoch cut short by a non-finite loss left it open

    def _close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# -- checkpoints -----------------------------------------------------------------------
#: the format of the files :class:`Checkpoint` writes (and the one it reads)
CHECKPOINT_FORMAT = 1


def module_rngs(module):
    """The ``numpy.random.Generator`` of ``module`` and of every module inside it
    (``Dropout``'s), depth first."""
    found = []
    if isinstance(getattr(module, "rng", None), np.random.Generator):
        found.append(module.rng)
    for child in getattr(module, "children", lambda: [])():
        found.extend(module_rngs(child))
    return found


class Checkpoint(Callback):
    """Writes ``path`` atomically after every epoch of a ``Trainer`` fit: the
    weights, the fit's :class:`EarlyStopping` record (its best weights among them),
    the optimizer's state (``fastnet.training.checkpoint``'s codec), the random
    generators' states and the :class:`History`. ``fit(..., resume=True)`` loads it
    before the first epoch and then ends with the same weights, bit for bit, as a
    fit never interrupted. ``Trainer(checkpoint=path)`` makes one and runs it last;
    one given in ``callbacks=`` belongs after the callbacks whose work it saves."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def __repr__(self):
        return f"Checkpoint({self.path!r})"

    def on_fit_begin(self, owner, state):
        if state.extra.get("resume") and os.path.exists(self.path):
            self.load(owner, state)

    def on_epoch_end(self, owner, state):
        self.save(owner, state)

    def save(self, owner, state):
        """Write the fit's state after the epoch ``state.epoch - 1``."""
        tracker = state.extra["early_stopping"]
        arrays = {f"param/{k}": v for k, v in owner.model.params.items()}
        arrays.update({f"best/{k}": v for k, v in tracker.best_params.items()})
        slots, optimizer = optimizer_arrays(owner.optimizer)
        arrays.update(slots)
        history = asdict(state.extra["history"])
        if state.stop_reason is not None:  # the History takes it when the fit ends
            history["stop_reason"] = state.stop_reason
        meta = {
            "format": CHECKPOINT_FORMAT,
            "kind": "fastnet-checkpoint",
            "epoch": state.epoch - 1,
            "samples_seen": state.samples_seen,
            "best": tracker.best,
            "bad_epochs": tracker.bad_epochs,
            "rng": state.extra["rng"].bit_generator.state,
            "module_rngs": [g.bit_generator.state for g in module_rngs(owner.model)],
            "optimizer": optimizer,
            "history": history,
        }
        save_npz(self.path, arrays, meta)

    def load(self, owner, state):
        """Put the saved state back into the fit: weights, record, optimizer,
        generators, History, and ``state.epoch`` after the epoch saved.

        The file is read as a model file is (:mod:`fastnet._runtime.archive`): only
        the members this fit names, each checked against the array it goes into
        before it is read. A damaged or hostile file is a ``ValueError``."""
        with open_archive(self.path, "checkpoint") as archive:
            meta = archive.document()
            self._check_meta(meta)
            try:
                self._restore(owner, state, archive, meta)
            except (KeyError, TypeError, AttributeError, IndexError) as exc:
                raise archive.bad(f"missing or malformed field ({exc})") from exc

    def _restore(self, owner, state, archive, meta):
        tracker = state.extra["early_stopping"]
        for prefix, target in (
            ("param/", owner.model.params),
            ("best/", tracker.best_params),
        ):
            for k, v in target.items():
                key = prefix + k
                if key not in archive or archive.header(key) != (v.shape, v.dtype):
                    raise ValueError(
                        f"checkpoint {self.path!r} does not match this model "
                        f"(parameter {k!r})"
                    )
                np.copyto(v, archive.array(key))
        restore_optimizer(
            owner.optimizer, archive, meta["optimizer"], owner.model.params
        )
        state.extra["rng"].bit_generator.state = meta["rng"]
        rngs = module_rngs(owner.model)
        if len(rngs) != len(meta["module_rngs"]):
            raise ValueError(f"checkpoint {self.path!r} does not match this model")
        for g, saved in zip(rngs, meta["module_rngs"], strict=True):
            g.bit_generator.state = saved
        state.samples_seen = int(meta["samples_seen"])
        tracker.best, tracker.bad_epochs = float(meta["best"]), int(meta["bad_epochs"])
        history, saved = state.extra["history"], History(**meta["history"])
        for f in fields(History):  # in place: the fit and its callbacks hold it
            setattr(history, f.name, getattr(saved, f.name))
        state.epoch = int(meta["epoch"]) + 1

    def _check_meta(self, meta):
        if not isinstance(meta, dict) or meta.get("kind") != "fastnet-checkpoint":
            raise ValueError(f"{self.path!r} is not a fastnet training checkpoint")
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"checkpoint {self.path!r} has format {meta.get('format')}; this "
                f"fastnet reads format {CHECKPOINT_FORMAT}"
            )
