"""fastnet: Numba-accelerated neural networks on the CPU.

``import fastnet`` is quick: the estimators (and scikit-learn), the modules, the
kernels (and Numba), the Trainer (and tqdm) load on first use of a name, through the
module-level ``__getattr__`` below.
"""

import gc
import importlib
import sys

from . import _moved
from ._version import __version__ as __version__

#: public name -> the submodule defining it (loaded on first access)
_LAZY = {
    "MLPClassifier": "sklearn.estimators",
    "MLPRegressor": "sklearn.estimators",
    "Graph": "nn.graph",
    "Node": "nn.graph",
    "load": "model_files",
    "save": "model_files",
    "einsum": "nn.einsum_plan",
    "einsum_vjp": "nn.einsum_plan",
    "Dropout": "nn.dropout",
    "Einsum": "nn.einsum",
    "Linear": "nn.linear",
    "Module": "nn.base",
    "Softmax": "nn.softmax",
    "MSELoss": "nn.losses",
    "PoissonLoss": "nn.losses",
    "SigmoidBinaryCrossEntropy": "nn.losses",
    "SoftmaxCrossEntropy": "nn.losses",
    "ggn": "nn.second_order",
    "hvp": "nn.second_order",
    "Sequential": "nn.sequential",
    "TabularModel": "tabular.prepare",
    "History": "training.trainer",
    "Trainer": "training.trainer",
    # the activation modules' names
    **dict.fromkeys(
        ("GELU", "Identity", "LeakyReLU", "ReLU", "Sigmoid", "Tanh"), "nn.activations"
    ),
}
#: submodules reachable as attributes of the package without an import statement
_SUBMODULES = {"kernels": "kernels", "optim": "optim"}

__all__ = sorted([*_LAZY, *_SUBMODULES, "__version__"])

_moved.install()


def _import(module):
    """Import the submodule ``module`` with Python's garbage collector paused.

    The estimators' first import brings in scikit-learn; the modules' first use
    brings in Numba and makes the kernels' dispatchers (``fastnet.kernels`` pauses
    the collector in the same way): some 45,000 objects that live until exit. While
    they were made, the collector walked the whole heap (the caller's too) about 110
    times, once in full: 0.04-0.06 s of a 1.6 s warm first fit here. Paused, they
    are walked once, young, by the first collection after. A collector that is off
    stays off."""
    if not gc.isenabled():
        return importlib.import_module(f".{module}", __name__)
    gc.disable()
    try:
        return importlib.import_module(f".{module}", __name__)
    finally:
        gc.enable()


def __getattr__(name):
    if name in _LAZY:
        module = _LAZY[name]
    elif name in _SUBMODULES:
        module = _SUBMODULES[name]
    else:
        raise AttributeError(f"module 'fastnet' has no attribute {name!r}")
    # one pause for all of it: the first allocation after the collector resumes
    # may start a collection
    enabled = gc.isenabled()
    gc.disable()
    try:
        if module == "sklearn.estimators" and f"{__name__}.{module}" not in sys.modules:
            # a fit is coming: with a cold kernel cache, a helper process starts
            # compiling while scikit-learn imports (fastnet._runtime.native)
            _import("_runtime.native").compile_in_background()
        imported = _import(module)
        value = imported if name in _SUBMODULES else getattr(imported, name)
        globals()[name] = value  # later look-ups skip this function
    finally:
        if enabled:
            gc.enable()
    return value


def __dir__():
    return sorted({*globals(), *__all__})
