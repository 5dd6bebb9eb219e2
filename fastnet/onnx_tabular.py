"""ONNX export of the command line's models (``TabularModel``): the column
preparation and the network in one graph, which predicts from raw rows as
``fastnet predict`` does.

The graph's inputs, one per feature column, named as the column, each ``(n, 1)``:
a number column in the model's dtype (float32 or float64), NaN where a cell is
missing; a text column as strings, ``""`` where a cell is missing. Its outputs:
a classifier's ``label`` (the class, what ``fastnet predict`` prints) and
``probabilities`` (n, classes); a regressor's ``variable`` (n, 1), in the target's
own units. A column that takes one of these names leaves the output its name with
``_`` appended.

The preparation's own fitted ``ColumnTransformer`` and the estimator, as a
``Pipeline``, go through skl2onnx's converters, with two changes that keep
fastnet's numbers:

* ``SimpleImputer`` by :func:`_convert_imputer`: skl2onnx's rounds the medians to
  a float32 attribute, even for float64 inputs, and takes only a string as the
  marker of a missing text cell. Here a number is ``Where(IsNaN(x), fill, x)``
  in the input's dtype, a text cell ``Where(x == "", fill, x)``, the fills being
  the imputer's;
* ``StandardScaler`` in float64 also for float32 inputs (skl2onnx's ``div_cast``:
  ``(x - mean) / scale`` in float64, then a cast), since fastnet prepares rows in
  float64 before the network casts them.

The one-hot encoding is skl2onnx's (a category unseen in training encodes as
zeros), the network fastnet's converter (:mod:`fastnet.onnx`). After the
conversion the inputs take back the columns' names (skl2onnx makes them valid
identifiers), and a regressor's output is mapped back from the standardised target
(``Mul`` by its scale, ``Add`` its mean, in the model's dtype).

What the caller does that ``fastnet predict`` does itself: text exactly as the
categories were learned (``fastnet predict`` strips surrounding spaces; ``fastnet
info`` lists the categories), numbers as numbers (it also reads ``true`` /
``false``). A model trained with ``--no-impute`` has no fill: a missing number gives
NaN and a missing text cell the zeros of an unseen category, where ``fastnet
predict`` refuses the row.
"""

import numpy as np
import pandas as pd
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import (
    DoubleTensorType,
    FloatTensorType,
    StringTensorType,
)
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

# importing fastnet.onnx registers the estimators' converters with skl2onnx
from .onnx import DEFAULT_OPSET

#: the marker of a missing text cell in the graph's string inputs
MISSING_TEXT = ""


def tabular_model(model, X_sample=None, opset=None):
    """The ``onnx.ModelProto`` of the ``TabularModel`` ``model`` (see the module
    docstring); :func:`fastnet.onnx.to_onnx` checks and writes it.

    ``X_sample``: rows as :meth:`TabularModel.predict` takes them (a DataFrame
    with the feature columns, or an array of their width), checked against the
    model when given. ``opset``: the ONNX opset (default
    :data:`fastnet.onnx.DEFAULT_OPSET`).
    """
    prep, est = model.preparation, model.estimator
    if prep.transformer is None or not hasattr(est, "coefs_"):
        raise ValueError("the TabularModel is not fitted: train it before export")
    if X_sample is not None:
        model.frame(X_sample)  # raises ValueError naming the missing columns
    dtype = est.coefs_[0].dtype
    number = DoubleTensorType if dtype == np.float64 else FloatTensorType
    types = [
        (name, (number if name in prep.numeric else StringTensorType)([None, 1]))
        for name in prep.features
    ]
    options = {StandardScaler: {"div": "div_cast"}}
    if model.is_classifier:
        options[id(est)] = {"zipmap": False}
    opset = DEFAULT_OPSET if opset is None else int(opset)
    proto = convert_sklearn(
        Pipeline([("prepare", prep.transformer), ("network", est)]),
        name="fastnet_tabular",
        initial_types=types,
        target_opset={"": opset, "ai.onnx.ml": 3},
        options=options,
        custom_conversion_functions={SimpleImputer: _convert_imputer},
    )
    graph = proto.graph
    if not model.is_classifier:
        _unstandardise(graph, model.scale, model.shift, dtype)
    outputs = ["label", "probabilities"] if model.is_classifier else ["variable"]
    names = dict(zip([i.name for i in graph.input], prep.features, strict=True))
    for out, name in zip(graph.output, outputs, strict=True):
        names[out.name] = _free(name, prep.features)
    _rename(graph, names)
    proto.producer_name = "fastnet"
    return proto


def _convert_imputer(scope, operator, container):
    """skl2onnx's converter of fastnet's ``SimpleImputer``: the missing cells of
    its one input (skl2onnx joins a transformer's columns) filled with what the
    imputer fills them with."""
    imp = operator.raw_operator
    (x,) = operator.inputs
    text = isinstance(x.type, StringTensorType)
    fill = _fills(imp, text)

    def node(op, inputs, out=None, **attrs):
        out = out or scope.get_unique_variable_name(op.lower())
        name = scope.get_unique_operator_name(op)
        container.add_node(op, inputs, out, name=name, **attrs)
        return out

    const = scope.get_unique_variable_name("fill")
    if text:
        values = [str(v).encode("utf-8") for v in fill.ravel()]
        container.add_initializer(const, TensorProto.STRING, list(fill.shape), values)
        # (Equal takes strings from opset 19 on) the ML domain's LabelEncoder
        # flags a missing cell as 1
        flag = node(
            "LabelEncoder", [x.full_name], keys_strings=[MISSING_TEXT],
            values_int64s=[1], default_int64=0, op_domain="ai.onnx.ml", op_version=2,
        )  # fmt: skip
        missing = node("Cast", [flag], to=TensorProto.BOOL)
    else:
        proto = x.type.to_onnx_type().tensor_type.elem_type
        fill = fill.astype(helper.tensor_dtype_to_np_dtype(proto))
        container.add_initializer(const, proto, list(fill.shape), fill.ravel())
        missing = node("IsNaN", [x.full_name])
    node("Where", [missing, const, x.full_name], out=operator.outputs[0].full_name)


def _fills(imp, text):
    """(1, columns): what the fitted imputer ``imp`` puts in a row of missing
    cells (its statistics, or 0 for a column that had no value in training), as
    the imputer itself says."""
    row = np.full((1, imp.n_features_in_), np.nan, dtype=object if text else float)
    if hasattr(imp, "feature_names_in_"):  # fitted on a DataFrame: give it one
        row = pd.DataFrame(row, columns=imp.feature_names_in_)
    return np.asarray(imp.transform(row), dtype=object if text else np.float64)


def _unstandardise(graph, scale, shift, dtype):
    """Make the graph's one output ``y * scale + shift`` of what it was, in
    ``dtype``: ``TabularModel.predict``'s arithmetic (which for a float32 model
    runs in float64, the network's output upcast)."""
    (out,) = graph.output
    taken = _names(graph)
    y = _free("standardised", taken)
    for node in graph.node:
        node.output[:] = [y if o == out.name else o for o in node.output]
    scale_name, shift_name, scaled = (
        _free(n, taken) for n in ("target_scale", "target_shift", "scaled")
    )
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(scale, dtype), scale_name),
            numpy_helper.from_array(np.array(shift, dtype), shift_name),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Mul", [y, scale_name], [scaled], name="unscale"),
            helper.make_node("Add", [scaled, shift_name], [out.name], name="unshift"),
        ]
    )


def _names(graph):
    """Every value name of ``graph``."""
    names = {v.name for v in [*graph.input, *graph.output, *graph.value_info]}
    names |= {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names


def _free(name, taken):
    """``name``, with ``_`` appended until it is not in ``taken``."""
    while name in taken:
        name += "_"
    return name


def _rename(graph, mapping):
    """Rename the values of ``graph`` by ``mapping`` (old -> new), first moving
    aside any other value that holds one of the new names."""
    mapping = {old: new for old, new in mapping.items() if old != new}
    taken = _names(graph)
    wanted = set(mapping.values())
    for clash in sorted((taken & wanted) - set(mapping)):
        mapping[clash] = _free(clash, taken | wanted)
        taken.add(mapping[clash])

    def new(names):
        return [mapping.get(n, n) for n in names]

    for node in graph.node:
        node.input[:] = new(node.input)
        node.output[:] = new(node.output)
    for value in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        value.name = mapping.get(value.name, value.name)
