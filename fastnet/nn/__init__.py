"""Modules: the thin layer that checks inputs and picks ``fastnet.kernels`` calls.

Each name loads its submodule on first use (``from fastnet.nn import Linear``
imports ``fastnet.nn.linear``, and with it scikit-learn's random-state helper),
so a part that needs one submodule, such as the activations' registry, imports
that alone.
"""

import importlib

#: public name -> the submodule defining it
_LAZY = {
    "Activation": "activations",
    "Identity": "activations",
    "ReLU": "activations",
    "LeakyReLU": "activations",
    "GELU": "activations",
    "Tanh": "activations",
    "Sigmoid": "activations",
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

__all__ = sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})
