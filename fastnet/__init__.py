"""fastnet: Numba-accelerated neural networks on the CPU.

``import fastnet`` is quick: the estimators (and scikit-learn), the modules, the
kernels (and Numba), the Trainer (and tqdm) load on first use of a name, through the
module-level ``__getattr__`` below.
"""

import gc
import importlib
import sys

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
        module = name
    else:
        raise AttributeError(f"module 'fastnet' has no attribute {name!r}")
    # one pause for all of it: the first allocation after the collector resumes
    # may start a collection
    enabled = gc.isenabled()
    gc.disable()
    try:
        if module == "estimator" and f"{__name__}.estimator" not in sys.modules:
            # a fit is coming: with a cold kernel cache, a helper process starts
            # compiling while scikit-learn imports (fastnet._native)
            _import("_native").compile_in_background()
        imported = _import(module)
        value = imported if module == name else getattr(imported, name)
        globals()[name] = value  # later look-ups skip this function
    finally:
        if enabled:
            gc.enable()
    return value


def __dir__():
    return sorted({*globals(), *__all__})
