"""Elementwise activation modules over ``fastnet.kernels.ACTIVATIONS``."""

import numbers

from .. import kernels
from .._checks import as_float_array, check_shape
from .base import Module


class Activation(Module):
    """An elementwise activation from the registry, on arrays of any shape.

    float32 and float64 input keep their dtype. ``backward`` uses the tensor the
    registry says the derivative needs (the input for LeakyReLU and GeLU, the output
    for the others).
    """

    kernel_name = None  # a key of fastnet.kernels.ACTIVATIONS
    alpha = 0.0
    _transient = ("_saved",)

    def __init__(self):
        super().__init__()
        self._saved = None

    @property
    def _kernels(self):
        # looked up per call, never stored: a pickled module carries no kernels
        return kernels.ACTIVATIONS[self.kernel_name]

    def forward(self, x, train=True):
        x = as_float_array(x, f"{type(self).__name__} input")
        out = self._buffer("y", x.shape, x.dtype, fresh=not train)
        if self._kernels.saves == "x":
            x = self._unaliased(x, out)
        kernel = kernels.pick(self._kernels.forward, x.size)
        kernel(x.reshape(-1), self.alpha, out.reshape(-1))
        self._saved = x if self._kernels.saves == "x" else out
        return out

    def backward(self, dy):
        self._require_forward(self._saved)
        saved = self._saved
        name = f"{type(self).__name__} output gradient"
        dy = as_float_array(dy, name, saved.dtype)
        check_shape(dy, saved.shape, name)
        dx = self._buffer("dx", saved.shape, saved.dtype)
        kernel = kernels.pick(self._kernels.backward, dy.size)
        kernel(dy.reshape(-1), saved.reshape(-1), self.alpha, dx.reshape(-1))
        return dx


class Identity(Activation):
    """:math:`f(x) = x`; :math:`f'(x) = 1`."""

    kernel_name = "identity"


class ReLU(Activation):
    r""":math:`f(x) = \max(x, 0)`; :math:`f'(x) = [x > 0]`, so ReLU'(0) = 0
    (as PyTorch, JAX and scikit-learn)."""

    kernel_name = "relu"


class LeakyReLU(Activation):
    r""":math:`f(x) = x` for :math:`x \ge 0`, else :math:`\alpha x`;
    :math:`f'(x) = 1` for :math:`x \ge 0`, else :math:`\alpha`, so LeakyReLU'(0) = 1."""

    kernel_name = "leaky_relu"

    def __init__(self, alpha=0.01):
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise TypeError(f"LeakyReLU alpha must be a real number, got {alpha!r}")
        if not float("-inf") < alpha < float("inf"):
            raise ValueError(f"LeakyReLU alpha must be finite, got {alpha}")
        self.alpha = float(alpha)
        super().__init__()

    def __repr__(self):
        return f"LeakyReLU(alpha={self.alpha})"


class GELU(Activation):
    r"""Gaussian error linear unit.

    ``approximate="none"``: :math:`f(x) = x\Phi(x)`,
    :math:`f'(x) = \Phi(x) + x\varphi(x)`.
    ``approximate="tanh"``: PyTorch's tanh formula and its exact derivative.
    """

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(
                f"GELU approximate must be 'none' or 'tanh', got {approximate!r}"
            )
        self.approximate = approximate
        self.kernel_name = "gelu" if approximate == "none" else "gelu_tanh"
        super().__init__()

    def __repr__(self):
        return f"GELU(approximate={self.approximate!r})"


class Tanh(Activation):
    r""":math:`f(x) = \tanh x`; :math:`f'(x) = 1 - y^2`."""

    kernel_name = "tanh"


class Sigmoid(Activation):
    """:math:`f(x) = 1/(1 + e^{-x})`; :math:`f'(x) = y(1 - y)`."""

    kernel_name = "logistic"
