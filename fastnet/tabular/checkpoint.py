"""Training checkpoints of the ``fastnet`` command: the model (preparation and
estimator) with the optimizer's state, the random generator's and the sample order,
enough for ``fastnet train --resume`` to continue bit for bit.

Two callbacks (:mod:`fastnet.training.callbacks`) connect them to the estimator's
fit: :class:`SaveEachEpoch` writes a checkpoint after every epoch, :class:`Resume`
puts one's state back before the first epoch. The optimizer's state goes through
the codec every fastnet checkpoint uses (:mod:`fastnet.training.checkpoint`).

A checkpoint is read as a model file is (:mod:`fastnet._runtime.archive`): only the
members the model and its fit name, each checked against what it goes into before
it is read, so a damaged or hostile file is a one-line ``ValueError``.
"""

from .. import model_files as io
from .._runtime.archive import open_archive
from .._runtime.atomic import save_npz
from .._version import __version__
from ..sklearn.stochastic import legacy_parameter_names
from ..training.callbacks import Callback
from ..training.checkpoint import optimizer_arrays, restore_optimizer
from ..training.loop import parameter_names
from .prepare import TabularModel


def save_checkpoint(model, path, info, sample_order):
    """Write ``model`` (preparation and estimator, in the middle of its fit) with
    the optimizer's state, the random generator's, the counters and
    ``sample_order``, the rows' order in the epoch just ended: enough to continue
    bit for bit. ``info``: the command's metadata of the run."""
    est = model.estimator
    arrays, meta = io._tabular_state(model)
    opt_arrays, opt_numbers = optimizer_arrays(est._optimizer)
    arrays.update(opt_arrays)
    kind, keys, pos, has_gauss, cached = est._random_state.get_state()
    arrays["rng_keys"] = keys
    arrays["sample_order"] = sample_order
    meta.update(
        format=io.FORMAT,
        producer="fastnet",
        fastnet_version=__version__,
        user=info,
        checkpoint={
            "optimizer": opt_numbers,
            "rng": [kind, int(pos), int(has_gauss), float(cached)],
            "no_improvement_count": est._no_improvement_count,
            "n_iter": est.n_iter_,
        },
    )
    save_npz(path, arrays, meta)


def load_checkpoint(path):
    """``(model, resume, info)`` from the checkpoint at ``path``: the model as it
    was saved (its estimator's ``n_iter_`` the epochs done), the :class:`Resume`
    callback that restores the rest when the fit begins, and the run's metadata."""
    model = io.load(path)
    meta = io.read_document(path)
    saved = meta.get("checkpoint")
    if not isinstance(saved, dict) or not isinstance(model, TabularModel):
        raise ValueError(f"{path} is a model file, not a training checkpoint")
    n_iter = saved.get("n_iter")
    if not isinstance(n_iter, int) or isinstance(n_iter, bool) or n_iter < 0:
        raise ValueError(f"checkpoint {path!r} is invalid: n_iter = {n_iter!r}")
    model.estimator.n_iter_ = n_iter
    return model, Resume(path, saved), meta.get("user", {})


class SaveEachEpoch(Callback):
    """A callback that writes a checkpoint of ``model`` to ``path`` after every
    epoch (``info``: the run's metadata); ``saved``: the last epoch written."""

    def __init__(self, model, path, info):
        self.model, self.path, self.info = model, path, info
        self.saved = None

    def on_epoch_end(self, est, state):
        save_checkpoint(self.model, self.path, self.info, state.sample_order)
        self.saved = est.n_iter_


class Resume(Callback):
    """A callback that, when the fit begins, puts back a checkpoint's optimizer
    state, random generator, counters and sample order: the fit then continues from
    the checkpoint's epoch as if it had never stopped. ``path``: the checkpoint,
    whose arrays are read then (which of them, and their sizes, depend on the fit's
    optimizer and data); ``saved``: its metadata's ``"checkpoint"`` entry."""

    def __init__(self, path, saved):
        self.path, self.saved = path, saved

    def on_fit_begin(self, est, state):
        with open_archive(self.path, "checkpoint") as archive:
            try:
                self._restore(est, state, archive)
            except (KeyError, TypeError, AttributeError, IndexError) as exc:
                raise archive.bad(f"missing or malformed field ({exc})") from exc

    def _restore(self, est, state, archive):
        shape, dtype = archive.header("sample_order")
        if state.sample_order is None or shape != state.sample_order.shape:
            raise ValueError("the checkpoint was made on other data")
        if dtype.kind not in "iu":
            raise archive.bad(f"sample_order holds {dtype}, not row numbers")
        keys = est._random_state.get_state()[1]
        if archive.header("rng_keys") != (keys.shape, keys.dtype):
            raise archive.bad(
                f"rng_keys is {archive.header('rng_keys')}, not {keys.shape} of "
                f"{keys.dtype}"
            )
        saved = self.saved
        restore_optimizer(est._optimizer, archive, saved["optimizer"], _optimized(est))
        kind, pos, has_gauss, cached = saved["rng"]
        keys = archive.array("rng_keys")
        est._random_state.set_state((kind, keys, pos, has_gauss, cached))
        est._no_improvement_count = saved["no_improvement_count"]
        est.n_iter_ = state.epoch = saved["n_iter"]
        # scikit-learn shuffles the previous epoch's order again, so the order is
        # part of the state
        state.sample_order = archive.array("sample_order")


def _optimized(est):
    """The estimator's parameters (name -> array) under the names its optimizer's
    state has: today's, and fastnet 0.1.0's (renamed once the fit begins)."""
    params = {}
    n = len(est.coefs_)
    for names in (parameter_names(n), legacy_parameter_names(n)):
        for (w, b), W, bias in zip(names, est.coefs_, est.intercepts_, strict=True):
            params.update({w: W, b: bias})
    return params
