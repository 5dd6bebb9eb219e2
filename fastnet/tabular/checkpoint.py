"""Training checkpoints of the ``fastnet`` command: the model (preparation and
estimator) with the optimizer's state, the random generator's and the sample order,
enough for ``fastnet train --resume`` to continue bit for bit.

Two callbacks (:mod:`fastnet.training.callbacks`) connect them to the estimator's
fit: :class:`SaveEachEpoch` writes a checkpoint after every epoch, :class:`Resume`
puts one's state back before the first epoch. The optimizer's state goes through
the codec every fastnet checkpoint uses (:mod:`fastnet.training.checkpoint`).
"""

from .. import model_files as io
from .._runtime.atomic import load_npz, save_npz
from .._version import __version__
from ..training.callbacks import Callback
from ..training.checkpoint import optimizer_arrays, restore_optimizer
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
    arrays, meta = load_npz(path, "checkpoint")
    saved = meta.get("checkpoint")
    if not isinstance(saved, dict) or not isinstance(model, TabularModel):
        raise ValueError(f"{path} is a model file, not a training checkpoint")
    model.estimator.n_iter_ = saved["n_iter"]
    return model, Resume(arrays, saved), meta.get("user", {})


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
    the checkpoint's epoch as if it had never stopped. ``arrays`` and ``saved``: the
    checkpoint's arrays and its metadata's ``"checkpoint"`` entry."""

    def __init__(self, arrays, saved):
        self.arrays, self.saved = arrays, saved

    def on_fit_begin(self, est, state):
        order = self.arrays["sample_order"]
        if state.sample_order is None or order.shape != state.sample_order.shape:
            raise ValueError("the checkpoint was made on other data")
        saved = self.saved
        restore_optimizer(est._optimizer, self.arrays, saved["optimizer"])
        kind, pos, has_gauss, cached = saved["rng"]
        keys = self.arrays["rng_keys"]
        est._random_state.set_state((kind, keys, pos, has_gauss, cached))
        est._no_improvement_count = saved["no_improvement_count"]
        est.n_iter_ = state.epoch = saved["n_iter"]
        # scikit-learn shuffles the previous epoch's order again, so the order is
        # part of the state
        state.sample_order = order
