"""``Einsum``: an einsum equation as a module, usable in a ``Graph``."""

from ..contract import einsum, einsum_vjp
from .base import Module


class Einsum(Module):
    """``forward(*xs)`` = ``fastnet.einsum(equation, *xs)``; ``backward(dy)`` returns
    one gradient per input (a tuple), from :func:`fastnet.einsum_vjp`.

    Learned weights enter as ``Graph.param`` nodes, e.g. a bilinear layer
    ``g.add(Einsum("bi,ij,bj->b"), x, g.param("W", w0), y)``.
    """

    _transient = ("_xs",)

    def __init__(self, equation):
        super().__init__()
        if not isinstance(equation, str):
            raise TypeError(f"Einsum equation must be a string, got {equation!r}")
        self.equation = equation
        self._xs = None

    def forward(self, *xs, train=True):
        y = einsum(self.equation, *xs)
        self._xs = xs
        return y

    def backward(self, dy):
        self._require_forward(self._xs)
        return einsum_vjp(self.equation, self._xs, dy)

    def __repr__(self):
        return f"Einsum({self.equation!r})"
