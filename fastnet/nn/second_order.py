r"""Second order: exact Hessian-vector and Gauss-Newton-vector products.

:func:`hvp` computes :math:`H v`, :math:`H = \nabla^2_\theta L` for
:math:`L(\theta) = \mathrm{loss}(\mathrm{model}(x; \theta), t)`, by Pearlmutter's
R-operator (forward-over-reverse): the forward pass, then a *tangent* forward pass
carrying :math:`R\{\cdot\} = \tfrac{d}{d\epsilon}(\cdot)(\theta + \epsilon v)` of every
activation, then the backward pass carrying the gradients together with their
tangents. The tangent of the parameters' gradient is :math:`H v`: exact to rounding,
at the cost of about two gradients (see ``bench/hvp_cost.py``).

Each module supplies the two pieces (``tangent_forward``, ``tangent_backward``; see
:class:`fastnet.nn.Module`), each loss its Hessian in the prediction
(``tangent_backward``), and :class:`~fastnet.nn.graph.Graph` sums tangents over fan-out
as it sums gradients — where the second derivative's cross terms between a node's
consumers come from (seed 004, problem 1b).

:func:`ggn` drops every term that multiplies the backward's ``dy`` (the model's own
curvature), leaving :math:`G v = J^\top H_{\mathrm{loss}} J v` with :math:`J` the
Jacobian of the model's output in :math:`\theta`: positive semi-definite, since every
fastnet loss is convex in the prediction.
"""

from collections.abc import Mapping

import numpy as np

from .._runtime.checks import as_float_array, check_shape
from .graph import Graph


def hvp(model, loss, inputs, target, vector, *, sample_weight=None, train=True):
    r"""The exact Hessian-vector product :math:`H v` of
    ``loss.forward(model.forward(inputs, train=train), target)`` with respect to
    ``model.params``.

    Parameters
    ----------
    model : Sequential, Graph or any module with ``tangent_forward`` /
        ``tangent_backward`` (all of fastnet's modules have them).
    loss : a fastnet loss (``SoftmaxCrossEntropy``, ``SigmoidBinaryCrossEntropy``,
        ``MSELoss``, ``PoissonLoss``), exactly as its ``forward`` defines the loss.
    inputs : the input array, or for a ``Graph`` a dict ``{input name: array}``.
    target, sample_weight : as ``loss.forward`` takes them.
    vector : dict ``{param name: array}`` with exactly the names and shapes of
        ``model.params``; values are cast to each parameter's dtype.
    train : passed to ``forward``. With ``Dropout`` in training mode the forward
        draws a new mask (advancing its generator) and the product is the Hessian of
        the loss under that fixed mask.

    Returns
    -------
    dict ``{param name: new array}`` of the parameters' shapes and dtypes.

    ``model.params`` and ``model.grads`` are left as they were; what the modules
    saved for ``backward`` and the loss's last gradient are the ones of this call.
    ReLU and LeakyReLU have second derivative 0 (at the kink too), so only their
    first-order terms contribute.
    """
    return _product(model, loss, inputs, target, vector, sample_weight, train, False)


def ggn(model, loss, inputs, target, vector, *, sample_weight=None, train=True):
    r"""The Gauss-Newton product :math:`J^\top H_{\mathrm{loss}} J v`: :func:`hvp`
    without the model's own second derivatives (same arguments and result).

    Positive semi-definite (every fastnet loss is convex in its prediction), which is
    what Hessian-free training and trust-region methods on non-convex models use.
    Equal to :func:`hvp` for a model that is linear in its parameters.
    """
    return _product(model, loss, inputs, target, vector, sample_weight, train, True)


def _product(model, loss, inputs, target, vector, sample_weight, train, gauss_newton):
    if not callable(getattr(model, "tangent_forward", None)):
        raise TypeError(
            f"hvp needs a fastnet model (Sequential, Graph or a module), got "
            f"{type(model).__name__}"
        )
    if not callable(getattr(loss, "tangent_backward", None)):
        raise TypeError(f"hvp needs a fastnet loss, got {type(loss).__name__}")
    params = model.params
    tparams = _check_vector(vector, params)
    if isinstance(model, Graph):
        if not isinstance(inputs, Mapping):
            raise TypeError(
                "hvp of a Graph takes inputs as a dict {input name: array}, got "
                f"{type(inputs).__name__}"
            )
        z = model.forward(train=train, **inputs)
        tz = model.tangent_forward(tparams=tparams)
    else:
        z = model.forward(inputs, train=train)
        tz = model.tangent_forward(None, tparams=tparams)
    loss.forward(z, target, sample_weight)
    if tz is None:  # the output does not depend on the parameters
        tz = np.zeros_like(np.asarray(z))
    ddz = loss.tangent_backward(tz)
    dz = None if gauss_newton else loss.backward()
    out = {name: np.zeros_like(p) for name, p in params.items()}
    model.tangent_backward(dz, ddz, out, need_dx=False)
    return out


def _check_vector(vector, params):
    """``vector`` as ``{name: C-contiguous array}``, of ``params``' names, shapes and
    dtypes (kernels read these arrays without bounds checks)."""
    if not isinstance(vector, Mapping):
        raise TypeError(
            f"vector must be a dict {{param name: array}}, got {type(vector).__name__}"
        )
    missing = [k for k in params if k not in vector]
    unknown = [k for k in vector if k not in params]
    if missing or unknown:
        raise ValueError(
            f"vector must have exactly the model's parameter names: missing "
            f"{missing}, unknown {unknown}; the parameters are {list(params)}"
        )
    out = {}
    for name, p in params.items():
        v = vector[name]
        if isinstance(v, np.ndarray) and v.dtype.kind not in "biuf":
            raise TypeError(f"vector[{name!r}] must be real numbers, got {v.dtype}")
        v = as_float_array(v, f"vector[{name!r}]", np.asarray(p).dtype)
        check_shape(v, np.shape(p), f"vector[{name!r}]")
        out[name] = v
    return out
