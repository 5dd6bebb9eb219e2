"""Modules: the thin layer that checks inputs and picks ``fastnet.kernels`` calls."""

from .activations import GELU, Activation, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Module
from .dropout import Dropout
from .einsum import Einsum
from .linear import Linear
from .softmax import Softmax

__all__ = [
    "GELU",
    "Activation",
    "Dropout",
    "Einsum",
    "Identity",
    "LeakyReLU",
    "Linear",
    "Module",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
