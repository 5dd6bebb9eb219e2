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


def restore_optimizer(optimizer, arrays, numbers):
    """Load into ``optimizer`` the state that :func:`optimizer_arrays` gave as
    ``arrays`` (other keys are ignored) and ``numbers``."""
    slots = {}
    for key, a in arrays.items():
        if key.startswith(PREFIX):
            name, slot = key[len(PREFIX) :].rsplit("/", 1)
            slots.setdefault(name, {})[slot] = a
    optimizer.load_state_dict({**numbers, "slots": slots})
