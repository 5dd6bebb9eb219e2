"""``Trainer``: minibatch training of any module with a loss and an optimizer."""

import math
import numbers
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.metrics import accuracy_score, r2_score
from tqdm.auto import tqdm

from .._runtime import native as _native
from .._runtime.atomic import load_npz, save_npz
from .._runtime.checks import as_float_array, check_positive_int, make_generator
from .._runtime.mlp import fused_epoch
from .._runtime.threads import thread_limit
from ..nn import Activation, Dropout, Linear, Softmax
from ..nn import losses as L
from ..nn.sequential import Sequential
from ..optim import Optimizer

CHECKPOINT_FORMAT = 1


@dataclass
class History:
    """Per-epoch records of a ``Trainer.fit``."""

    loss: list = field(default_factory=list)  # mean training loss of each epoch
    val_loss: list = field(default_factory=list)
    val_score: list = field(default_factory=list)  # accuracy or R² on validation data
    epoch_time: list = field(default_factory=list)  # seconds
    best_epoch: int | None = None  # epoch (0-based) of the best monitored loss
    stop_reason: str | None = None  # None: all epochs ran


def _score(loss, pred, target, weights):
    """Accuracy for classification losses, R² for regression ones."""
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


def _walk(module):
    """The module and every module inside it, depth first."""
    yield module
    for child in getattr(module, "children", lambda: [])():
        yield from _walk(child)


class Trainer:
    """Train ``model`` to minimise ``loss`` with ``optimizer`` over minibatches.

    Each epoch shuffles the rows with a generator seeded by ``random_state``, runs
    forward, loss, backward and one fused update per batch (the last batch may be
    smaller), then validates, advances the learning-rate schedule, runs callbacks
    and writes the checkpoint. Buffers are allocated once per batch size: a training
    step allocates no arrays.

    - ``validation_data=(X, y)``: ``History.val_loss`` / ``val_score`` each epoch;
      early stopping then monitors the validation loss, else the training loss.
    - ``early_stopping``: stop after ``patience`` epochs without an improvement of
      ``tol``, and restore the best weights.
    - A non-finite loss stops training with a ``RuntimeWarning`` and puts back the
      weights of the last completed epoch: finite, nothing lost.
    - ``callbacks``: callables ``cb(trainer, epoch, history)``; returning True stops.
    - ``n_threads``: Numba and BLAS threads for the fit, restored afterwards; None
      is all cores, or one thread in a Dask worker's task.
    - ``checkpoint``: a path written atomically after every epoch (weights, optimizer
      state, RNG states, history); ``fit(..., resume=True)`` continues from it and
      ends with the same weights as an uninterrupted run.
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
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.epochs = check_positive_int(epochs, "epochs")
        self.random_state = random_state
        self.validation_data = validation_data
        self.early_stopping = bool(early_stopping)
        self.patience = check_positive_int(patience, "patience")
        if not isinstance(tol, numbers.Real) or not tol >= 0:
            raise ValueError(f"tol must be a number >= 0, got {tol!r}")
        self.tol = float(tol)
        self.callbacks = tuple(callbacks)
        for cb in self.callbacks:
            if not callable(cb):
                raise TypeError(f"callbacks must be callables, got {cb!r}")
        self.verbose = bool(verbose)
        if n_threads is not None:
            check_positive_int(n_threads, "n_threads")
        self.n_threads = n_threads
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.shuffle = bool(shuffle)

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
            finite = _native.all_finite(X)  # vectorised: 1797x64 float32 in 9 us
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
        ``X``'s first row to tell (and to raise its own error): 32 us a ``fit`` for
        64-32-10.

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

    # -- training --------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, resume=False):
        """Train on ``X``, ``y`` and optional ``sample_weight``; return the History."""
        if resume and self.checkpoint is None:
            raise ValueError("resume=True needs Trainer(checkpoint=path)")
        with thread_limit(self.n_threads):
            return self._fit(X, y, sample_weight, resume)

    def _fit(self, X, y, sample_weight, resume):
        X, t, w = self._prepare(X, y, sample_weight, "X")
        val = None
        if self.validation_data is not None:
            vd = tuple(self.validation_data)
            if len(vd) not in (2, 3):
                raise ValueError(
                    "validation_data must be (X, y) or (X, y, sample_weight)"
                )
            val = self._prepare(
                *vd[:2], vd[2] if len(vd) == 3 else None, "validation X"
            )
        params, grads = self.model.params, self.model.grads
        self._rng = make_generator(self.random_state)
        self.history = History()
        self._best = math.inf
        self._bad_epochs = 0
        # the best weights are kept where they are restored at the end, or saved
        self._best_params = (
            {k: np.empty_like(v) for k, v in params.items()}
            if self.early_stopping or self.checkpoint is not None
            else None
        )
        self._good_params = {k: np.empty_like(v) for k, v in params.items()}
        self._samples_seen = 0
        start = 0
        if resume and os.path.exists(self.checkpoint):
            start = self._load_checkpoint(params) + 1
        n = X.shape[0]
        fused = self._fused_epoch(X, t, w)
        batches = self._batch_buffers(X, t, w) if fused is None else None
        for epoch in range(start, self.epochs):
            began = time.perf_counter()
            for k, v in params.items():
                np.copyto(self._good_params[k], v)
            order = self._rng.permutation(n) if self.shuffle else np.arange(n)
            if fused is not None:
                total = fused(order)
            else:
                total = self._epoch(epoch, order, X, t, w, batches, params, grads)
            if total is None:
                for k, v in params.items():
                    np.copyto(v, self._good_params[k])
                self.history.stop_reason = "non-finite loss"
                warnings.warn(
                    f"the training loss became NaN or infinite in epoch {epoch}; "
                    "training stopped and the weights of the last completed epoch "
                    "were restored (try a smaller learning rate)",
                    RuntimeWarning,
                    stacklevel=3,
                )
                break
            self._samples_seen += n
            seconds = time.perf_counter() - began
            stop = self._end_epoch(epoch, total, val, params, seconds, n)
            if self.checkpoint is not None:
                self._save_checkpoint(epoch, params)
            if stop:
                break
        if self.early_stopping and self.history.best_epoch is not None:
            for k, v in params.items():
                np.copyto(v, self._best_params[k])
        return self.history

    def _fused_epoch(self, X, t, w):
        """The epoch as one compiled call (same arithmetic as :meth:`_epoch`) for a
        ``Sequential`` of ``Linear`` layers with one kind of activation between
        them; None for anything else, which takes the module path."""
        mods = getattr(self.model, "modules", None)
        if not isinstance(self.model, Sequential) or w.size or self.verbose:
            return None
        linears, hidden = mods[0::2], mods[1::2]
        if (
            not all(type(m) is Linear for m in linears)
            or len(linears) != len(hidden) + 1
        ):
            return None
        if hidden and not all(
            isinstance(h, Activation)
            and (h.kernel_name, h.alpha) == (hidden[0].kernel_name, hidden[0].alpha)
            for h in hidden
        ):
            return None
        if len({lin.dtype for lin in linears} | {X.dtype}) != 1:
            return None
        names = [(f"{2 * i}.W", f"{2 * i}.b") for i in range(len(linears))]
        run = fused_epoch(
            linears,
            hidden[0] if hidden else None,
            names,
            self.loss,
            self.optimizer,
            X,
            t,
            min(self.batch_size, X.shape[0]),
            # the previous fit's workspace serves again where the network, its
            # arrays and the optimizer's are the same (fit is not reentrant); only
            # that part is kept between fits, never the data
            reuse=self.__dict__.get("_fused_state"),
        )
        self._fused_state = None if run is None else run.state
        if run is None:
            return None

        def epoch(order):
            total = run(order)
            return total / X.shape[0] if math.isfinite(total) else None

        return epoch

    def _batch_buffers(self, X, t, w):
        """Row buffers for full batches and for the last, partial one."""
        sizes = {min(self.batch_size, X.shape[0]), X.shape[0] % self.batch_size}
        return {
            size: (
                np.empty((size, *X.shape[1:]), X.dtype),
                np.empty((size, *t.shape[1:]), t.dtype),
                np.empty(size if w.size else 0, w.dtype),
            )
            for size in sizes - {0}
        }

    def _epoch(self, epoch, order, X, t, w, batches, params, grads):
        """One pass over the data; the row-weighted mean loss, or None if not finite."""
        n = X.shape[0]
        total = 0.0
        bar = tqdm(
            total=n,
            desc=f"epoch {epoch + 1}/{self.epochs}",
            unit="sample",
            disable=not self.verbose,
            leave=False,
        )
        with bar:
            for lo in range(0, n, self.batch_size):
                idx = order[lo : lo + self.batch_size]
                xb, tb, wb = batches[idx.shape[0]]
                # mode="clip": with the default "raise", take() buffers its output
                # in a temporary array; these indices are a permutation, in range.
                np.take(X, idx, axis=0, out=xb, mode="clip")
                np.take(t, idx, axis=0, out=tb, mode="clip")
                if w.size:
                    np.take(w, idx, out=wb, mode="clip")
                out = self.model.forward(xb, train=True)
                value = self.loss.forward_prepared(out, tb, wb)
                if not math.isfinite(value):
                    return None
                self.model.backward(self.loss.backward())
                self.optimizer.step(params, grads)
                total += value * idx.shape[0]
                bar.update(idx.shape[0])
                bar.set_postfix(loss=f"{value:.4g}", refresh=False)
        return total / n

    def _end_epoch(self, epoch, loss, val, params, seconds, n):
        h = self.history
        h.loss.append(loss)
        h.epoch_time.append(seconds)
        monitored = loss
        if val is not None:
            Xv, tv, wv = val
            out = self.model.forward(Xv, train=False)
            monitored = self.loss.forward_prepared(out, tv, wv)
            h.val_loss.append(monitored)
            h.val_score.append(float(_score(self.loss, out, tv, wv)))
        self.optimizer.epoch_end(epoch, self._samples_seen, monitored)
        if monitored < self._best - self.tol:
            self._best = monitored
            self._bad_epochs = 0
            h.best_epoch = epoch
            if self._best_params is not None:
                for k, v in params.items():
                    np.copyto(self._best_params[k], v)
        else:
            self._bad_epochs += 1
        if self.verbose:
            extra = f", val_loss {monitored:.4g}" if val is not None else ""
            tqdm.write(
                f"epoch {epoch + 1}/{self.epochs}: loss {loss:.4g}{extra}, "
                f"{n / max(seconds, 1e-9):.0f} samples/s",
                file=sys.stderr,
            )
        if self.early_stopping and self._bad_epochs >= self.patience:
            h.stop_reason = f"no improvement of {self.tol} in {self.patience} epochs"
            return True
        for cb in self.callbacks:
            if cb(self, epoch, h) is True:
                h.stop_reason = f"callback {getattr(cb, '__name__', cb)!r}"
                return True
        return False

    # -- checkpoints -----------------------------------------------------------------
    def _module_rngs(self):
        return [
            m.rng
            for m in _walk(self.model)
            if isinstance(getattr(m, "rng", None), np.random.Generator)
        ]

    def _save_checkpoint(self, epoch, params):
        arrays = {f"param/{k}": v for k, v in params.items()}
        arrays.update({f"best/{k}": v for k, v in self._best_params.items()})
        opt = self.optimizer.state_dict()
        for name, slots in opt.pop("slots").items():
            arrays.update({f"opt/{name}/{s}": a for s, a in slots.items()})
        meta = {
            "format": CHECKPOINT_FORMAT,
            "kind": "fastnet-checkpoint",
            "epoch": epoch,
            "samples_seen": self._samples_seen,
            "best": self._best,
            "bad_epochs": self._bad_epochs,
            "rng": self._rng.bit_generator.state,
            "module_rngs": [g.bit_generator.state for g in self._module_rngs()],
            "optimizer": opt,
            "history": asdict(self.history),
        }
        save_npz(self.checkpoint, arrays, meta)

    def _load_checkpoint(self, params):
        arrays, meta = load_npz(self.checkpoint, "checkpoint")
        if meta.get("kind") != "fastnet-checkpoint":
            raise ValueError(
                f"{self.checkpoint!r} is not a fastnet training checkpoint"
            )
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"checkpoint {self.checkpoint!r} has format {meta.get('format')}; this "
                f"fastnet reads format {CHECKPOINT_FORMAT}"
            )
        for prefix, target in (("param/", params), ("best/", self._best_params)):
            for k, v in target.items():
                saved = arrays.get(prefix + k)
                if saved is None or saved.shape != v.shape:
                    raise ValueError(
                        f"checkpoint {self.checkpoint!r} does not match this model "
                        f"(parameter {k!r})"
                    )
                np.copyto(v, saved)
        slots = {}
        for key, a in arrays.items():
            if key.startswith("opt/"):
                name, slot = key[4:].rsplit("/", 1)
                slots.setdefault(name, {})[slot] = a
        self.optimizer.load_state_dict({**meta["optimizer"], "slots": slots})
        self._rng.bit_generator.state = meta["rng"]
        rngs = self._module_rngs()
        if len(rngs) != len(meta["module_rngs"]):
            raise ValueError(
                f"checkpoint {self.checkpoint!r} does not match this model"
            )
        for g, state in zip(rngs, meta["module_rngs"], strict=True):
            g.bit_generator.state = state
        self._samples_seen = int(meta["samples_seen"])
        self._best = float(meta["best"])
        self._bad_epochs = int(meta["bad_epochs"])
        self.history = History(**meta["history"])
        return int(meta["epoch"])
