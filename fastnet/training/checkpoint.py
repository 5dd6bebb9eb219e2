"""The optimizer-state codec of every checkpoint fastnet writes (``Trainer``'s and
the ``fastnet`` command's): one way to put an optimizer's state into a model file's
arrays and JSON metadata, and back.

An optimizer's :meth:`~fastnet.optim.Optimizer.state_dict` holds numbers (JSON) and,
under ``"slots"``, one dict of arrays per parameter name (Adam's moments, SGD's
velocity). The arrays are stored as ``opt/{parameter name}/{slot}``; the numbers in
the metadata under the key the caller chooses.
"""

PREFIX = "opt/"


def optimizer_arrays(optimizer):
    """``(arrays, numbers)``: the optimizer's slot arrays keyed
    ``opt/{name}/{slot}``, and the rest of its state (JSON-ready)."""
    state = optimizer.state_dict()
    arrays = {
        f"{PREFIX}{name}/{slot}": a
        for name, slots in state.pop("slots").items()
        for slot, a in slots.items()
    }
    return arrays, state


def restore_optimizer(optimizer, archive, numbers, params):
    """Load into ``optimizer`` the state that :func:`optimizer_arrays` gave as
    arrays, read from ``archive`` (a :class:`fastnet._runtime.archive.Archive`), and
    ``numbers``.

    ``params`` (name -> array): the parameters the optimizer updates. Only their
    members are read, ``opt/{name}/{slot}`` for each of ``optimizer.slots``, and
    each only once its header says it is the parameter's size and dtype (flat, as
    the optimizer keeps it): a file cannot make this allocate more than the model
    holds. A parameter without state (never stepped) is left without; one with some
    of its slots but not all is a ValueError.
    """
    slots = {}
    for name, p in params.items():
        keys = {slot: f"{PREFIX}{name}/{slot}" for slot in optimizer.slots}
        if not any(key in archive for key in keys.values()):
            continue
        for key in keys.values():
            if key not in archive or archive.header(key) != ((p.size,), p.dtype):
                raise ValueError(
                    f"{archive.what} {archive.path!r} does not match this model "
                    f"(optimizer state {key!r}: {p.size} of {p.dtype} expected)"
                )
        slots[name] = {slot: archive.array(key) for slot, key in keys.items()}
    optimizer.load_state_dict({**numbers, "slots": slots})
