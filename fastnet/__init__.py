"""fastnet: Numba-accelerated neural networks on the CPU.

``import fastnet`` is quick: the estimators (and scikit-learn), the modules, the
kernels (and Numba), the Trainer (and tqdm) load on first use of a name, through the
module-level ``__getattr__`` below.
"""

import importlib

from ._version import __version__ as __version__

#: public name -> the submodule defining it (loaded on first access)
_LAZY = {
    "MLPClassifier": "estimator",
    "MLPRegressor": "estimator",
    "Graph": "graph",
    "Node": "graph",
    "load": "io",
    "save": "io",
    "einsum": "contract",
    "einsum_vjp": "contract",
    "GELU": "layers",
    "Dropout": "layers",
    "Einsum": "layers",
    "Identity": "layers",
    "LeakyReLU": "layers",
    "Linear": "layers",
    "Module": "layers",
    "ReLU": "layers",
    "Sigmoid": "layers",
    "Softmax": "layers",
    "Tanh": "layers",
    "MSELoss": "losses",
    "PoissonLoss": "losses",
    "SigmoidBinaryCrossEntropy": "losses",
    "SoftmaxCrossEntropy": "losses",
    "ggn": "second_order",
    "hvp": "second_order",
    "Sequential": "sequential",
    "TabularModel": "prepare",
    "History": "train",
    "Trainer": "train",
}
#: submodules reachable as attributes of the package without an import statement
_SUBMODULES = {"kernels", "optim"}

__all__ = sorted([*_LAZY, *_SUBMODULES, "__version__"])


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'fastnet' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted({*globals(), *__all__})
