"""Elementwise activation modules over ``fastnet.kernels.ACTIVATIONS``, and the
registry every other part of fastnet reads them from.

Adding an activation is one kernel entry (``kernels/activations.py``: its
function, derivatives and which tensor its backward reads) and one module here,
registered with :func:`register`: the estimators' ``activation=`` choices, the
command's ``--activation``, model files, ``fastnet.<Name>`` and the tests'
parametrisations all read :data:`MODULES` and :data:`ESTIMATOR_ACTIVATIONS`.
"""

import numbers

from .. import kernels
from .._runtime.checks import as_float_array, check_shape
from .base import Module

#: module class name -> ``(class, the constructor arguments it keeps as
#: attributes)``: what a model file stores of each activation module
MODULES = {}
#: the estimators' ``activation=`` name (scikit-learn's where it has one) -> the
#: module class of the hidden layers
ESTIMATOR_ACTIVATIONS = {}


def register(estimator_name=None, args=()):
    """Class decorator: add an activation module to :data:`MODULES` (``args``: its
    constructor's arguments, kept as attributes of the same names) and, with
    ``estimator_name``, to :data:`ESTIMATOR_ACTIVATIONS` (its constructor's
    defaults then apply)."""

    def add(cls):
        MODULES[cls.__name__] = (cls, tuple(args))
        if estimator_name is not None:
            ESTIMATOR_ACTIVATIONS[estimator_name] = cls
        return cls

    return add


class Activation(Module):
    r"""An elementwise activation from the registry, on arrays of any shape.

    float32 and float64 input keep their dtype. ``backward`` uses the tensor the
    registry says the derivative needs (the input for LeakyReLU and GeLU, the output
    for the others).

    Tangents: :math:`t_y = f'(x)\,t_x`, and the backward's
    :math:`t_{dx} = t_{dy} f'(x) + dy\,f''(x)\,t_x`.
    """

    kernel_name = None  # a key of fastnet.kernels.ACTIVATIONS
    alpha = 0.0
    _transient = ("_saved", "_tx")

    def __init__(self):
        super().__init__()
        self._saved = None
        self._tx = None

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

    def tangent_forward(self, tx, *, tparams=None):
        self._require_forward(self._saved)
        saved = self._saved
        self._tx = tx = self._check_tangent(
            tx, saved.shape, saved.dtype, "input tangent"
        )
        if tx is None:
            return None
        ty = self._buffer("ty", saved.shape, saved.dtype)
        tx = self._tx = self._unaliased(tx, ty)
        kernel = kernels.pick(self._kernels.backward, tx.size)  # diagonal Jacobian
        kernel(tx.reshape(-1), saved.reshape(-1), self.alpha, ty.reshape(-1))
        return ty

    def tangent_backward(self, dy, ddy, hgrads=None, need_dx=True):
        self._require_forward(self._saved)
        saved = self._saved
        dy, ddy = self._check_tangent_grads(dy, ddy, saved.shape, saved.dtype)
        if not need_dx:
            return None, None
        flat = saved.reshape(-1)
        ddx = self._buffer("ddx", saved.shape, saved.dtype)
        ddy = self._unaliased(ddy, ddx)
        if dy is None:  # Gauss-Newton: the plain backward of ddy
            kernel = kernels.pick(self._kernels.backward, ddy.size)
            kernel(ddy.reshape(-1), flat, self.alpha, ddx.reshape(-1))
            return None, ddx
        dx = self._buffer("dx", saved.shape, saved.dtype)
        dy = self._unaliased(self._unaliased(dy, dx), ddx)
        ddy = self._unaliased(ddy, dx)
        if self._tx is None:  # no input tangent: both are plain backwards
            kernel = kernels.pick(self._kernels.backward, ddy.size)
            kernel(dy.reshape(-1), flat, self.alpha, dx.reshape(-1))
            kernel(ddy.reshape(-1), flat, self.alpha, ddx.reshape(-1))
            return dx, ddx
        kernel = kernels.pick(self._kernels.backward_tangent, ddy.size)
        kernel(
            dy.reshape(-1),
            flat,
            ddy.reshape(-1),
            self._tx.reshape(-1),
            self.alpha,
            dx.reshape(-1),
            ddx.reshape(-1),
        )
        return dx, ddx


@register("identity")
class Identity(Activation):
    """:math:`f(x) = x`; :math:`f'(x) = 1`."""

    kernel_name = "identity"


@register("relu")
class ReLU(Activation):
    r""":math:`f(x) = \max(x, 0)`; :math:`f'(x) = [x > 0]`, so ReLU'(0) = 0
    (as PyTorch, JAX and scikit-learn); :math:`f''(x) = 0`, at the kink too."""

    kernel_name = "relu"


@register("leaky_relu", args=("alpha",))
class LeakyReLU(Activation):
    r""":math:`f(x) = x` for :math:`x \ge 0`, else :math:`\alpha x`;
    :math:`f'(x) = 1` for :math:`x \ge 0`, else :math:`\alpha`, so LeakyReLU'(0) = 1;
    :math:`f''(x) = 0`, at the kink too."""

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


@register("gelu", args=("approximate",))
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


@register("tanh")
class Tanh(Activation):
    r""":math:`f(x) = \tanh x`; :math:`f'(x) = 1 - y^2`."""

    kernel_name = "tanh"


@register("logistic")
class Sigmoid(Activation):
    """:math:`f(x) = 1/(1 + e^{-x})`; :math:`f'(x) = y(1 - y)`."""

    kernel_name = "logistic"
