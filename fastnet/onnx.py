"""ONNX export: fastnet's models as ONNX graphs, for ONNX Runtime and every other
runtime that reads the format.

:func:`to_onnx` exports the estimators (every activation and output, float32 and
float64: the graph's dtype is the model's), a ``Sequential`` of fastnet's modules,
and the command line's ``TabularModel`` (its column preparation in the graph through
skl2onnx's converters). Importing this module registers fastnet's estimators with
skl2onnx, so that ``skl2onnx.to_onnx`` converts a scikit-learn ``Pipeline`` that
holds one.

The graphs (one emitter, :class:`_Nodes`, whether the nodes go into a graph of their
own or into skl2onnx's container):

* a layer: ``MatMul`` then ``Add``; the hidden activations ``Relu``, ``Tanh``,
  ``Sigmoid``, LeakyReLU as ``Where`` (its alpha in the graph's dtype), GELU's tanh
  form as ``x * Sigmoid(2u)`` (fastnet's formula), and exact GELU as
  ``x * erfc(-x / sqrt 2) / 2`` with ``erfc`` built from ``Exp`` and arithmetic:
  the same Chebyshev series of ``erfcx`` fastnet's float32 kernels evaluate
  (``kernels/vmath.py``), since ONNX Runtime has no float64 ``Erf``; 4e-12
  relative, in either dtype, and 0 beyond ``z = 12`` (GELU of ``x < -16.97``,
  where fastnet's float64 gives values below 1e-63);
* a classifier's outputs as skl2onnx's with ``zipmap=False``: ``label`` (the class,
  in the type of ``classes_``; for multilabel the 0/1 indicator matrix as int64)
  and ``probabilities`` (n, classes); a regressor's one output ``variable`` (n,
  outputs), ``Exp`` after the last layer for ``loss='poisson'``.

Requires the ``onnx`` extra (``pip install 'fastnet[onnx]'``: onnx, skl2onnx,
onnxruntime); ``import fastnet`` never imports it.
"""

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "ONNX export needs the onnx extra: pip install 'fastnet[onnx]' (onnx, "
        "skl2onnx and onnxruntime)"
    ) from exc

from .kernels.vmath import ERFC_SERIES
from .nn.activations import Activation
from .nn.linear import Linear
from .nn.sequential import Sequential
from .nn.softmax import Softmax
from .onnx_forms import refusal
from .sklearn.estimators import MLPClassifier, MLPRegressor

#: the opset of the graphs fastnet builds itself (skl2onnx's own default for the
#: ones it builds)
DEFAULT_OPSET = 17
_PROTO = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float64): TensorProto.DOUBLE,
}
_SQRT_HALF = 0.7071067811865476
_SQRT_2_OVER_PI = 0.7978845608028654
_GELU_C = 0.044715


class _Nodes:
    """Nodes and constants of a graph under construction, in ``dtype``: the
    interface both the stand-alone graphs and skl2onnx's converters build through.
    ``name(hint)`` gives a fresh name; ``const`` adds a constant;
    ``node`` adds a node and returns its output's name."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.nodes, self.constants = [], []
        self._used = {}

    def name(self, hint):
        n = self._used.get(hint, 0)
        self._used[hint] = n + 1
        return f"{hint}_{n}" if n else hint

    def const(self, value, hint="c", dtype=None):
        """A constant holding ``value`` (in the graph's dtype unless ``dtype``)."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.name(hint)
        self.constants.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op, inputs, out=None, domain="", **attrs):
        out = out or self.name(op.lower())
        node = helper.make_node(op, list(inputs), [out], name=self.name(f"n_{op}"),
                                domain=domain, **attrs)  # fmt: skip
        self.nodes.append(node)
        return out


class _Container(_Nodes):
    """:class:`_Nodes` that add to skl2onnx's container, under its scope's names."""

    def __init__(self, dtype, scope, container):
        super().__init__(dtype)
        self.scope, self.container = scope, container

    def name(self, hint):
        return self.scope.get_unique_variable_name(hint)

    def const(self, value, hint="c", dtype=None):
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.name(hint)
        tensor = numpy_helper.from_array(array, name)
        self.container.add_initializer(name, tensor.data_type, list(array.shape),
                                       _contents(array))  # fmt: skip
        return name

    def node(self, op, inputs, out=None, domain="", **attrs):
        out = out or self.name(op.lower())
        name = self.scope.get_unique_operator_name(op)
        self.container.add_node(op, list(inputs), out, op_domain=domain, name=name,
                                **attrs)  # fmt: skip
        return out


def _contents(array):
    """An initializer's values as skl2onnx's container takes them."""
    if array.dtype.kind in "OUS":
        return [str(v).encode("utf-8") for v in array.ravel()]
    return array.ravel()


# -- the network ----------------------------------------------------------------------
def _erfc(g, a):
    """``erfc(a)`` (fastnet's ``kernels.vmath.erfc_f64``, node by node): for
    ``z = |a| <= zmax``, ``exp(-z^2) * erfcx(z)`` with erfcx by its Chebyshev series
    in ``u`` (Clenshaw's recurrence); 0 beyond; ``2 - erfc(-a)`` for ``a < 0``."""
    zmax, u_scale, u_shift, cheb = ERFC_SERIES
    z = g.node("Abs", [a])
    zc = g.node("Min", [z, g.const(zmax, "zmax")])
    u = g.node("Sub", [g.node("Div", [g.const(u_scale, "u_scale"),
                                       g.node("Add", [g.const(2.0, "two"), zc])]),
                       g.const(u_shift, "u_shift")])  # fmt: skip
    u2 = g.node("Add", [u, u])
    b2 = g.const(cheb[-1], "cheb")
    b1 = g.node("Add", [g.node("Mul", [u2, b2]), g.const(cheb[-2], "cheb")])
    for c in reversed(cheb[1:-2]):
        step = g.node("Sub", [g.node("Mul", [u2, b1]), b2])
        b2, b1 = b1, g.node("Add", [step, g.const(c, "cheb")])
    series = g.node("Add", [g.node("Sub", [g.node("Mul", [u, b1]), b2]),
                            g.const(cheb[0], "cheb")])  # fmt: skip
    e = g.node(
        "Mul", [series, g.node("Exp", [g.node("Neg", [g.node("Mul", [zc, zc])])])]
    )
    zero = g.const(0.0, "zero")
    e = g.node("Where", [g.node("Less", [z, g.const(zmax, "zmax")]), e, zero])
    negative = g.node("Less", [a, zero])
    return g.node("Where", [negative, g.node("Sub", [g.const(2.0, "two"), e]), e])


def _activation(g, kind, x, alpha=0.0):
    """The nodes of fastnet's activation ``kind`` (a ``kernels.ACTIVATIONS`` key, or
    an output's ``exp`` / ``softmax``) applied to ``x``."""
    simple = {"relu": "Relu", "tanh": "Tanh", "logistic": "Sigmoid", "exp": "Exp"}
    if kind == "identity":
        return x
    if kind in simple:
        return g.node(simple[kind], [x])
    if kind == "softmax":
        return g.node("Softmax", [x], axis=-1)
    if kind == "leaky_relu":
        # not LeakyRelu, whose alpha is a float32 attribute (1e-10 off in float64)
        scaled = g.node("Mul", [x, g.const(alpha, "alpha")])
        nonnegative = g.node("GreaterOrEqual", [x, g.const(0.0, "zero")])
        return g.node("Where", [nonnegative, x, scaled])
    if kind == "gelu":
        arg = g.node("Mul", [x, g.const(-_SQRT_HALF, "minus_sqrt_half")])
        half = g.node("Mul", [_erfc(g, arg), g.const(0.5, "half")])
        return g.node("Mul", [x, half])
    if kind == "gelu_tanh":
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, g.const(_GELU_C, "gelu_c")])])
        two_u = g.node("Mul", [inner, g.const(2.0 * _SQRT_2_OVER_PI, "gelu_k")])
        return g.node("Mul", [x, g.node("Sigmoid", [two_u])])
    raise ValueError(f"the activation {kind!r} has no ONNX form")


def _layer(g, x, W, b, index):
    z = g.node("MatMul", [x, g.const(W, f"coefficient{index}")])
    return g.node("Add", [z, g.const(b.reshape(1, -1), f"intercepts{index}")])


def _estimator_logits(g, est, x):
    """The last layer's pre-activation of the estimator ``est`` for ``x``."""
    last = len(est.coefs_) - 1
    alpha = 0.01 if est.activation == "leaky_relu" else 0.0
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        x = _layer(g, x, W, b, i)
        if i < last:
            x = _activation(g, est.activation, x, alpha)
    return x


def _classifier_outputs(g, est, z, label, proba):
    """``label`` and ``proba`` from the logits ``z``, as scikit-learn's ``predict``
    and ``predict_proba``."""
    multilabel = est._label_binarizer.y_type_ == "multilabel-indicator"
    if est.out_activation_ == "softmax":
        p = g.node("Softmax", [z], out=proba, axis=1)
        index = g.node("ArgMax", [p], axis=1, keepdims=0)
    else:
        p = g.node("Sigmoid", [z], out=None if est.n_outputs_ == 1 else proba)
        above = g.node("Greater", [p, g.const(0.5, "threshold")])
        if multilabel:
            g.node("Cast", [above], out=label, to=TensorProto.INT64)
            return
        negative = g.node("Sub", [g.const(1.0, "one"), p])
        g.node("Concat", [negative, p], out=proba, axis=1)
        flat = g.node("Reshape", [above, g.const([-1], "flat", np.int64)])
        index = g.node("Cast", [flat], to=TensorProto.INT64)
    classes = g.const(_labels(est.classes_), "classes", _label_dtype(est))
    g.node("Gather", [classes, index], out=label, axis=0)


def _labels(classes):
    classes = np.asarray(classes)
    return classes.astype(object) if classes.dtype.kind in "OUS" else classes


def _label_dtype(est):
    kind = np.asarray(est.classes_).dtype.kind
    if kind in "OUS":
        return object
    if kind in "iu":
        return np.int64
    return np.asarray(est.classes_).dtype


def _label_type(est, n):
    """skl2onnx's type of the estimator's ``label`` output."""
    if est._label_binarizer.y_type_ == "multilabel-indicator":
        return Int64TensorType([n, est.n_outputs_])
    kind = _label_dtype(est)
    if kind is object:
        return StringTensorType([n])
    if kind == np.int64:
        return Int64TensorType([n])
    if np.dtype(kind) == np.bool_:
        return BooleanTensorType([n])
    return _tensor_type(kind)([n])


def _tensor_type(dtype):
    return FloatTensorType if np.dtype(dtype) == np.float32 else DoubleTensorType


def _model_dtype(est):
    return est.coefs_[0].dtype


# -- skl2onnx's side: shape calculators and converters --------------------------------
def _classifier_shapes(operator):
    est = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _label_type(est, n)
    width = (
        2
        if est.n_outputs_ == 1 and est.out_activation_ == "logistic"
        else est.n_outputs_
    )
    operator.outputs[1].type = _tensor_type(_model_dtype(est))([n, width])


def _regressor_shapes(operator):
    est = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = _tensor_type(_model_dtype(est))([n, est.n_outputs_])


def _network_input(g, operator):
    """The converter's input in the model's dtype (a Cast where it is not)."""
    x = operator.inputs[0].full_name
    if operator.inputs[0].type.to_onnx_type().tensor_type.elem_type != _PROTO[g.dtype]:
        x = g.node("Cast", [x], to=_PROTO[g.dtype])
    return x


def _convert_classifier(scope, operator, container):
    est = operator.raw_operator
    g = _Container(_model_dtype(est), scope, container)
    z = _estimator_logits(g, est, _network_input(g, operator))
    _classifier_outputs(g, est, z, operator.outputs[0].full_name,
                        operator.outputs[1].full_name)  # fmt: skip


def _convert_regressor(scope, operator, container):
    est = operator.raw_operator
    g = _Container(_model_dtype(est), scope, container)
    z = _estimator_logits(g, est, _network_input(g, operator))
    out = _activation(g, est.out_activation_, z)
    g.node("Identity", [out], out=operator.outputs[0].full_name)


def register():
    """Register fastnet's estimators with skl2onnx (done at import): its
    ``to_onnx`` then converts them, alone or inside a ``Pipeline``."""
    update_registered_converter(
        MLPClassifier, "FastnetMLPClassifier", _classifier_shapes, _convert_classifier,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
        overwrite=True,
    )  # fmt: skip
    update_registered_converter(
        MLPRegressor, "FastnetMLPRegressor", _regressor_shapes, _convert_regressor,
        overwrite=True,
    )  # fmt: skip


register()


# -- to_onnx --------------------------------------------------------------------------
def to_onnx(model, X_sample=None, *, path=None, opset=None):
    """``model`` as an ``onnx.ModelProto`` (written to ``path`` too when given),
    checked with ``onnx.checker``.

    ``model``: a fitted ``MLPClassifier`` / ``MLPRegressor``, a ``Sequential`` of
    ``Linear``, activation, ``Softmax`` and ``Dropout`` modules, or a
    ``TabularModel``. ``X_sample``: rows of the input, to check the input width
    against (optional). ``opset``: the ONNX opset (default
    :data:`DEFAULT_OPSET`). The graph's input is ``X`` (a ``TabularModel``: one
    input per column).
    """
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if isinstance(model, (MLPClassifier, MLPRegressor)):
        proto = _estimator_model(model, X_sample, opset)
    elif isinstance(model, Sequential):
        proto = _sequential_model(model, X_sample, opset)
    elif type(model).__name__ == "TabularModel":
        from . import onnx_tabular

        proto = onnx_tabular.tabular_model(model, X_sample, opset)
    else:
        raise TypeError(
            "to_onnx exports MLPClassifier, MLPRegressor, Sequential and "
            f"TabularModel, not {type(model).__name__}"
        )
    onnx.checker.check_model(proto)
    if path is not None:
        _write(proto, path)
    return proto


def _estimator_model(est, X_sample, opset):
    from skl2onnx import to_onnx as skl_to_onnx

    if not hasattr(est, "coefs_"):
        raise ValueError(f"{type(est).__name__} is not fitted: fit it before export")
    width = _check_sample(X_sample, est.n_features_in_)
    types = [("X", _tensor_type(_model_dtype(est))([None, width]))]
    options = {id(est): {"zipmap": False}} if isinstance(est, MLPClassifier) else None
    opsets = {"": opset, "ai.onnx.ml": 3}
    return skl_to_onnx(est, initial_types=types, target_opset=opsets, options=options)


def _check_sample(X_sample, width):
    if X_sample is not None:
        cols = np.shape(X_sample)[-1] if np.ndim(X_sample) else None
        if cols != width:
            raise ValueError(f"X_sample has {cols} columns; the model takes {width}")
    return width


def _sequential_model(model, X_sample, opset):
    why = refusal(model)
    if why:
        raise ValueError(why)
    linears = [m for m in model.modules if isinstance(m, Linear)]
    first = linears[0].params["W"]
    g = _Nodes(first.dtype)
    x = "X"
    for i, module in enumerate(model.modules):
        if isinstance(module, Linear):
            x = _layer(g, x, module.params["W"], module.params["b"], i)
        elif isinstance(module, Activation):
            x = _activation(g, module.kernel_name, x, module.alpha)
        elif isinstance(module, Softmax):
            x = _activation(g, "softmax", x)
        # else Dropout (refusal allows no other module): the identity at inference
    g.node("Identity", [x], out="output")
    width = _check_sample(X_sample, first.shape[0])
    width_out = linears[-1].params["W"].shape[1]
    graph = helper.make_graph(
        g.nodes, "fastnet_sequential",
        [helper.make_tensor_value_info("X", _PROTO[g.dtype], [None, width])],
        [helper.make_tensor_value_info("output", _PROTO[g.dtype], [None, width_out])],
        initializer=g.constants,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             producer_name="fastnet")  # fmt: skip


def _write(proto, path):
    """Write ``proto`` atomically (a temporary file, then a rename)."""
    from ._runtime.atomic import write_atomic

    write_atomic(path, proto.SerializeToString())
