"""Modules: the thin layer that checks inputs and picks ``fastnet.kernels`` calls."""

from .activations import GELU, Activation, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Module
from .linear import Linear
from .softmax import Softmax

__all__ = [
    "GELU",
    "Activation",
    "Identity",
    "LeakyReLU",
    "Linear",
    "Module",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
