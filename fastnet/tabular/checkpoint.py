"""Training checkpoints of the ``fastnet`` command: the model (preparation and
estimator) with the optimizer's state, the random generator's and the sample order,
enough for ``fastnet train --resume`` to continue bit for bit."""

from .._version import __version__

# io (scikit-learn, Numba) loads on first use: the command's --help and --version
# import this module and must stay quick


def save_checkpoint(model, path, info):
    """The model (preparation and estimator) with the optimizer's state, the random
    generator's and the sample order: enough to continue bit for bit."""
    from .. import model_files as io
    from .._runtime.atomic import save_npz

    est = model.estimator
    arrays, meta = io._tabular_state(model)
    opt = est._optimizer.state_dict()
    for name, slots in opt.pop("slots").items():
        arrays.update({f"opt/{name}/{s}": a for s, a in slots.items()})
    kind, keys, pos, has_gauss, cached = est._random_state.get_state()
    arrays["rng_keys"] = keys
    arrays["sample_order"] = est._fn_sample_idx
    meta.update(
        format=io.FORMAT,
        producer="fastnet",
        fastnet_version=__version__,
        user=info,
        checkpoint={
            "optimizer": opt,
            "rng": [kind, int(pos), int(has_gauss), float(cached)],
            "no_improvement_count": est._no_improvement_count,
            "n_iter": est.n_iter_,
        },
    )
    save_npz(path, arrays, meta)


def resume_from(path):
    """(model, restore callback, info) from a checkpoint."""
    from .. import model_files as io
    from .._runtime.atomic import load_npz
    from .prepare import TabularModel

    model = io.load(path)
    arrays, meta = load_npz(path, "checkpoint")
    state = meta.get("checkpoint")
    if not isinstance(state, dict) or not isinstance(model, TabularModel):
        raise ValueError(f"{path} is a model file, not a training checkpoint")
    slots = {}
    for key, a in arrays.items():
        if key.startswith("opt/"):
            name, slot = key[4:].rsplit("/", 1)
            slots.setdefault(name, {})[slot] = a

    def restore(est_, sample_idx):
        est_._optimizer.load_state_dict({**state["optimizer"], "slots": slots})
        kind, pos, has_gauss, cached = state["rng"]
        est_._random_state.set_state((kind, arrays["rng_keys"], pos, has_gauss, cached))
        est_._no_improvement_count = state["no_improvement_count"]
        est_.n_iter_ = state["n_iter"]
        order = arrays["sample_order"]
        if order.shape != sample_idx.shape:
            raise ValueError("the checkpoint was made on other data")
        return order

    model.estimator.n_iter_ = state["n_iter"]
    return model, restore, meta.get("user", {})
