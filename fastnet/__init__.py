"""fastnet: Numba-accelerated neural networks on the CPU."""

import os

import numba

# Parallel kernels may be called from several Python threads at once (a server's
# predict calls); the "workqueue" layer aborts on that. "threadsafe" takes TBB if
# installed, else OpenMP. An explicit NUMBA_THREADING_LAYER still wins.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "threadsafe"

from . import kernels, optim
from ._version import __version__
from .contract import einsum, einsum_vjp
from .estimator import MLPClassifier, MLPRegressor
from .graph import Graph, Node
from .io import load, save
from .layers import (
    GELU,
    Dropout,
    Einsum,
    Identity,
    LeakyReLU,
    Linear,
    Module,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .losses import (
    MSELoss,
    PoissonLoss,
    SigmoidBinaryCrossEntropy,
    SoftmaxCrossEntropy,
)
from .sequential import Sequential
from .train import History, Trainer

__all__ = [
    "GELU",
    "Dropout",
    "Einsum",
    "Graph",
    "History",
    "Identity",
    "LeakyReLU",
    "Linear",
    "MLPClassifier",
    "MLPRegressor",
    "MSELoss",
    "Module",
    "Node",
    "PoissonLoss",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SigmoidBinaryCrossEntropy",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Tanh",
    "Trainer",
    "__version__",
    "einsum",
    "einsum_vjp",
    "kernels",
    "load",
    "optim",
    "save",
]
