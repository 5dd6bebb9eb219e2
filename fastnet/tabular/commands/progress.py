"""The fit of ``fastnet train``: a progress bar that ends where training stops,
the curves ``--plot`` draws, and a one-line reason why training stopped.

The estimator shows its epochs through callbacks (:mod:`fastnet.training.callbacks`):
:func:`fit_with_progress` passes them with ``set_params(callbacks=...)`` for the fit
only, so the model file never carries them.
"""

import sys
import time
from dataclasses import dataclass, field

from ...training.callbacks import Callback
from .. import collector
from ..errors import CliError, Interrupted


@dataclass
class History:
    """What a fit did: the training loss per epoch (L-BFGS: per iteration), the
    held-out score per epoch (with --plot), the first epoch's number, the seconds
    it took and why it stopped."""

    first: int
    loss: list = field(default_factory=list)
    held_out: list = field(default_factory=list)
    seconds: float = 0.0
    why: str = ""


class Progress(Callback):
    """A callback that moves the progress ``bar`` after every epoch and keeps the
    loss in ``history``, and the score on ``held_out`` (X, y) when given."""

    def __init__(self, bar, history, held_out=None):
        self.bar, self.history, self.held_out = bar, history, held_out

    def on_epoch_end(self, est, state):
        self.history.loss.append(est.loss_)
        if self.held_out is not None:
            self.history.held_out.append(est.score(*self.held_out))
        self.bar.set_postfix(loss=f"{est.loss_:.4g}", refresh=False)
        self.bar.update(1)


def fit_with_progress(est, train, held_out, *, done, plot, checkpoint, resume):
    """Fit ``est`` on ``train`` (X, y) after ``done`` epochs, with a progress bar;
    ``held_out`` (X, y) is scored after each epoch when ``plot``. ``checkpoint``:
    a :class:`~fastnet.tabular.checkpoint.SaveEachEpoch` or None; ``resume``: a
    :class:`~fastnet.tabular.checkpoint.Resume` or None. The :class:`History`; an
    :class:`Interrupted` on Ctrl-C, a :class:`CliError` if training diverged."""
    from tqdm.auto import tqdm

    history = History(first=done + 1)
    bar = tqdm(
        total=est.max_iter, initial=done, desc="training", unit="epoch", file=sys.stderr
    )
    progress = Progress(bar, history, held_out if plot else None)
    callbacks = [cb for cb in (resume, progress, checkpoint) if cb is not None]
    collector.work_begins()
    began = time.perf_counter()
    try:
        interrupted = _fit(est, *train, callbacks)
    finally:
        history.seconds = time.perf_counter() - began
        if est.solver == "lbfgs" and not history.loss:  # no epochs: iterations
            bar.update(est.n_iter_ - done)
            history.loss = list(getattr(est, "loss_curve_", []))
        bar.total = bar.n  # the bar ends where training stopped
        bar.refresh()
        bar.close()
    if interrupted:
        kept = ""
        if checkpoint is not None and checkpoint.saved:
            kept = (
                f"; the checkpoint {checkpoint.path} holds epoch {checkpoint.saved}: "
                "add --resume to go on"
            )
        raise Interrupted(
            f"interrupted after {est.n_iter_} epochs: the model file was not "
            f"written{kept}"
        )
    history.why = why_stopped(est)
    return history


def _fit(est, X, y, callbacks):
    """``est.fit(X, y)`` with ``callbacks`` for this fit only; whether Ctrl-C
    stopped it. Warnings other than the stop's are shown again."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from ...sklearn.estimators import NON_FINITE_WEIGHTS

    est.set_params(callbacks=callbacks)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)  # said: stopped why
            est.fit(X, y)
    except ValueError as exc:
        if not str(exc).startswith(NON_FINITE_WEIGHTS):
            raise
        raise CliError(
            "training diverged (the weights became NaN or infinite): lower --lr"
        ) from None
    finally:
        est.set_params(callbacks=None)
    # scikit-learn's loop catches Ctrl-C and warns
    interrupted = any("interrupted by user" in str(w.message) for w in caught)
    for w in caught:
        if "interrupted by user" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return interrupted


def why_stopped(est):
    """Why the fit of ``est`` ended, in words."""
    n = est.n_iter_
    if est.solver == "lbfgs":
        return f"{n} iterations, " + (
            "L-BFGS converged"
            if n < est.max_iter
            else f"--epochs {est.max_iter} reached"
        )
    if n < est.max_iter:
        return (
            f"stopped at epoch {n} of {est.max_iter}: the training loss improved by "
            f"less than {est.tol:g} for {est.n_iter_no_change} epochs"
        )
    return f"all {n} epochs (--epochs {est.max_iter})"
