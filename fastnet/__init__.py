"""fastnet: Numba-accelerated neural networks on the CPU.

``import fastnet`` is quick: the estimators (and scikit-learn), the modules, the
kernels (and Numba), the Trainer (and tqdm) load on first use of a name, through the
module-level ``__getattr__`` below.
"""

import gc
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
    "to_onnx": "onnx",
}
#: where the activation modules' names are found (its registry, ``MODULES``)
_ACTIVATIONS = "nn.activations"
#: submodules reachable as attributes of the package without an import statement
_SUBMODULES = {
    "kernels": "kernels",
    "optim": "optim",
    "callbacks": "training.callbacks",
}


_moved.install()


def _import(module):
    """Import the submodule ``module`` with Python's garbage collector paused.

    The estimators' first import brings in scikit-learn; the modules' first use
    brings in Numba and makes the kernels' dispatchers (``fastnet.kernels`` pauses
    the collector in the same way): some 45,000 objects that live until exit. While
    they were made, the collector walked the whole heap (the caller's too) again
    and again, once in full. Paused, they are walked once, young, by the first
    collection after. A collector that is off stays off
    (``fastnet.kernels._lazy.import_paused``)."""
    from .kernels._lazy import import_paused

    return import_paused(f"{__name__}.{module}")


def __getattr__(name):
    if name in _LAZY:
        module = _LAZY[name]
    elif name in _SUBMODULES:
        module = _SUBMODULES[name]
    elif name == "__all__":  # the activations' names are in their registry
        return sorted([*_LAZY, *_SUBMODULES, *_activation_names(), "__version__"])
    elif name in _activation_names():
        module = _ACTIVATIONS
    else:
        raise AttributeError(f"module 'fastnet' has no attribute {name!r}")
    # one pause for all of it: the first allocation after the collector resumes
    # may start a collection
    enabled = gc.isenabled()
    gc.disable()
    try:
        if module == "sklearn.estimators" and f"{__name__}.{module}" not in sys.modules:
            # a fit is coming: with a cold kernel cache, a helper process starts
            # compiling while scikit-learn imports (fastnet._runtime.background)
            _import("_runtime.native").compile_in_background()
        imported = _import(module)
        value = imported if name in _SUBMODULES else getattr(imported, name)
        globals()[name] = value  # later look-ups skip this function
    finally:
        if enabled:
            gc.enable()
    return value


def _activation_names():
    return _import(_ACTIVATIONS).MODULES


def __dir__():
    return sorted({*globals(), *__getattr__("__all__")})
