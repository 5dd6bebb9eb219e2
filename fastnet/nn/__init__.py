"""Modules: the thin layer that checks inputs and picks ``fastnet.kernels`` calls.

Each name loads its submodule on first use (``from fastnet.nn import Linear``
imports ``fastnet.nn.linear``, and with it scikit-learn's random-state helper),
so a part that needs one submodule, such as the activations' registry, imports
that alone.
"""

import importlib

#: public name -> the submodule defining it (and every activation module, from
#: the registry of ``activations``)
_LAZY = {
    "Activation": "activations",
    "Module": "base",
    "Dropout": "dropout",
    "Einsum": "einsum",
    "Linear": "linear",
    "Softmax": "softmax",
    "Sequential": "sequential",
    "Graph": "graph",
    "Node": "graph",
    "SoftmaxCrossEntropy": "losses",
    "SigmoidBinaryCrossEntropy": "losses",
    "MSELoss": "losses",
    "PoissonLoss": "losses",
    "Loss": "losses",
    "einsum": "einsum_plan",
    "einsum_vjp": "einsum_plan",
    "hvp": "second_order",
    "ggn": "second_order",
}


def _activations():
    """The registered activation modules (``activations.MODULES``)."""
    return importlib.import_module(".activations", __name__).MODULES


def __getattr__(name):
    if name == "__all__":  # the activation modules' names are in their registry
        return sorted({*_LAZY, *_activations()})
    module = _LAZY.get(name)
    if module is None and name in _activations():
        module = "activations"
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__getattr__("__all__")})
