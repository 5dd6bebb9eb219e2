"""Model files: ``save(obj, path)`` and ``load(path)``, never pickle.

A model file is one ``.npz`` holding the arrays (weights, class labels) and a JSON
document (``__meta__``) with the format version, the fastnet version, the class,
its hyperparameters and fitted attributes or its layer list. Loading reads it with
``allow_pickle=False`` and checks every field before building anything; a
truncated, corrupted, foreign or newer file raises ``ValueError`` saying which.
Writes are atomic (a temporary file beside the target, then a rename).
"""

import numbers

import numpy as np
from sklearn.preprocessing import LabelBinarizer

from ._runtime.atomic import load_npz, save_npz
from ._version import __version__
from .nn import Dropout, Einsum, Linear, Softmax, activations
from .nn.graph import Graph
from .nn.sequential import Sequential
from .sklearn.estimators import MLPClassifier, MLPRegressor
from .tabular.prepare import Preparation, TabularModel

FORMAT = 1
ESTIMATORS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
# module type -> (constructor keyword attributes)
MODULES = {
    "Linear": (Linear, ("n_in", "n_out")),
    **activations.MODULES,  # every registered activation module
    "Softmax": (Softmax, ()),
    "Dropout": (Dropout, ("p",)),
    "Einsum": (Einsum, ("equation",)),
}
# fitted attributes of the estimators kept in the metadata
ATTRIBUTES = (
    "n_features_in_",
    "n_outputs_",
    "n_layers_",
    "out_activation_",
    "n_iter_",
    "t_",
    "loss_",
    "best_loss_",
    "loss_curve_",
    "validation_scores_",
    "best_validation_score_",
)


def _bad(path, what):
    return ValueError(f"model file {path!r} is invalid: {what}")


def _json_value(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):
        return [_json_value(x) for x in v]
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    if isinstance(v, float) and v != v:
        return None
    return v


# -- saving ----------------------------------------------------------------------------
def save(obj, path, metadata=None):
    """Write ``obj`` (a fitted MLPClassifier / MLPRegressor, a TabularModel, a
    Sequential or a Graph) to ``path`` as an ``.npz`` model file, atomically.

    ``metadata``: optional JSON-able dict stored alongside (the ``fastnet`` command
    keeps its column names there); :func:`read_metadata` returns it.
    """
    if isinstance(obj, tuple(ESTIMATORS.values())):
        arrays, meta = _estimator_state(obj)
    elif isinstance(obj, TabularModel):
        arrays, meta = _tabular_state(obj)
    elif isinstance(obj, Sequential):
        arrays, layers = _modules_state(obj.modules)
        meta = {"kind": "Sequential", "layers": layers}
    elif isinstance(obj, Graph):
        arrays, meta = _graph_state(obj)
    else:
        raise TypeError(
            "fastnet.save takes a fastnet MLPClassifier, MLPRegressor, TabularModel, "
            f"Sequential or Graph, got {type(obj).__name__}"
        )
    meta.update(
        {"format": FORMAT, "fastnet_version": __version__, "producer": "fastnet"}
    )
    meta["user"] = {} if metadata is None else dict(metadata)
    save_npz(path, arrays, meta)


def read_metadata(path):
    """The ``metadata`` dict given to :func:`save` (empty if none)."""
    _, meta = load_npz(path, "model file")
    user = meta.get("user", {}) if isinstance(meta, dict) else None
    if not isinstance(user, dict):
        raise _bad(path, "metadata is not a JSON object")
    return user


#: hyperparameters that belong to a fit, not to the model: not saved, and a loaded
#: estimator has their defaults (``callbacks``: hooks into a fit, often closures)
NOT_SAVED = ("callbacks",)


def _estimator_state(est):
    if not hasattr(est, "coefs_"):
        raise ValueError(f"{type(est).__name__} is not fitted: nothing to save")
    params = est.get_params()
    for name in NOT_SAVED:
        params.pop(name, None)
    if not (
        params["random_state"] is None
        or isinstance(params["random_state"], numbers.Integral)
    ):
        params["random_state"] = None  # a RandomState object has no file form
    meta = {
        "kind": type(est).__name__,
        "params": {k: _json_value(v) for k, v in params.items()},
        "attributes": {
            a: _json_value(getattr(est, a)) for a in ATTRIBUTES if hasattr(est, a)
        },
    }
    arrays = {f"coef_{i}": W for i, W in enumerate(est.coefs_)}
    arrays.update({f"intercept_{i}": b for i, b in enumerate(est.intercepts_)})
    if hasattr(est, "feature_names_in_"):
        arrays["feature_names_in"] = np.asarray(est.feature_names_in_, dtype=str)
    if hasattr(est, "classes_"):
        classes = np.asarray(est.classes_)
        if classes.dtype.kind == "O":
            classes = classes.astype(str)
        arrays["classes"] = classes
        meta["label_type"] = est._label_binarizer.y_type_
    return arrays, meta


def _tabular_state(model):
    """An estimator's state plus its preparation: arrays under ``prep/``."""
    arrays, meta = _estimator_state(model.estimator)
    prep_arrays, prep = model.preparation.state()
    arrays.update({f"prep/{k}": a for k, a in prep_arrays.items()})
    prep.update(target=model.target, shift=model.shift, scale=model.scale)
    meta["preparation"] = prep
    return arrays, meta


def _modules_state(modules, prefix=""):
    arrays, layers = {}, []
    for i, m in enumerate(modules):
        name = type(m).__name__
        if name not in MODULES or type(m) is not MODULES[name][0]:
            raise TypeError(f"fastnet.save cannot store a {name} module")
        spec = {
            "type": name,
            **{a: _json_value(getattr(m, a)) for a in MODULES[name][1]},
        }
        if name == "Linear":
            spec["dtype"] = m.dtype.name
        layers.append(spec)
        for pname, arr in m.params.items():
            arrays[f"{prefix}{i}.{pname}"] = arr
    return arrays, layers


def _graph_state(g):
    nodes, arrays = [], {}
    for node in g.nodes:
        spec = {"name": node.name, "kind": node.kind}
        if node.kind == "param":
            arrays[f"param:{node.name}"] = node.value
        elif node.kind == "op":
            sub, (layer,) = _modules_state([node.module], prefix=f"op:{node.name}:")
            arrays.update(sub)
            spec["module"] = layer
            spec["inputs"] = [n.name for n in node.inputs]
        nodes.append(spec)
    return arrays, {"kind": "Graph", "nodes": nodes}


# -- loading ---------------------------------------------------------------------------
def load(path):
    """Read a model file written by :func:`save`; returns the estimator or model."""
    arrays, meta = load_npz(path, "model file")
    if not isinstance(meta, dict) or meta.get("producer") != "fastnet":
        raise _bad(path, "not a fastnet model file")
    fmt = meta.get("format")
    if not isinstance(fmt, int):
        raise _bad(path, "no format version")
    if fmt > FORMAT:
        raise ValueError(
            f"model file {path!r} has format {fmt}, written by a newer fastnet "
            f"({meta.get('fastnet_version')}); this fastnet ({__version__}) reads "
            f"format {FORMAT}: upgrade fastnet"
        )
    kind = meta.get("kind")
    try:
        if kind in ESTIMATORS:
            est = _load_estimator(path, arrays, meta)
            if "preparation" in meta:
                return _load_tabular(path, arrays, meta["preparation"], est)
            return est
        if kind == "Sequential":
            return Sequential(*_load_modules(path, arrays, meta.get("layers"), ""))
        if kind == "Graph":
            return _load_graph(path, arrays, meta)
    except (KeyError, TypeError, AttributeError) as exc:
        raise _bad(path, f"missing or malformed field ({exc})") from exc
    raise _bad(path, f"unknown model kind {kind!r}")


def _array(path, arrays, key, ndim=None, kinds="f"):
    a = arrays.get(key)
    if a is None:
        raise _bad(path, f"array {key!r} is missing")
    if a.dtype.kind not in kinds or (ndim is not None and a.ndim != ndim):
        raise _bad(path, f"array {key!r} has dtype {a.dtype} and shape {a.shape}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise _bad(path, f"array {key!r} holds NaN or infinity")
    return np.ascontiguousarray(a)


def _load_estimator(path, arrays, meta):
    cls = ESTIMATORS[meta["kind"]]
    params = dict(meta["params"])
    if not isinstance(params, dict) or set(params) != set(cls().get_params()) - set(
        NOT_SAVED
    ):
        raise _bad(path, f"hyperparameters do not match {cls.__name__}")
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    est = cls(**params)
    try:
        est._validate_params()
    except ValueError as exc:
        raise _bad(path, f"hyperparameters: {exc}") from exc
    attrs = meta["attributes"]
    n_layers = attrs["n_layers_"]
    if not isinstance(n_layers, int) or n_layers < 2:
        raise _bad(path, f"n_layers_ = {n_layers!r}")
    coefs = [_array(path, arrays, f"coef_{i}", 2) for i in range(n_layers - 1)]
    intercepts = [
        _array(path, arrays, f"intercept_{i}", 1) for i in range(n_layers - 1)
    ]
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        if b.shape != (W.shape[1],) or (i and W.shape[0] != coefs[i - 1].shape[1]):
            raise _bad(path, f"layer {i} has inconsistent shapes {W.shape}, {b.shape}")
        if W.dtype != coefs[0].dtype or b.dtype != coefs[0].dtype:
            raise _bad(path, "layers have different dtypes")
    if (
        attrs["n_features_in_"] != coefs[0].shape[0]
        or attrs["n_outputs_"] != coefs[-1].shape[1]
    ):
        raise _bad(path, "n_features_in_ / n_outputs_ do not match the weights")
    if attrs["out_activation_"] not in ("softmax", "logistic", "identity", "exp"):
        raise _bad(path, f"out_activation_ = {attrs['out_activation_']!r}")
    for a, value in attrs.items():
        if a not in ATTRIBUTES:
            raise _bad(path, f"unknown attribute {a!r}")
        setattr(est, a, value)
    est.coefs_, est.intercepts_ = coefs, intercepts
    if "feature_names_in" in arrays:
        names = _array(path, arrays, "feature_names_in", 1, kinds="U")
        if names.shape[0] != est.n_features_in_:
            raise _bad(path, "feature_names_in_ has the wrong length")
        est.feature_names_in_ = names.astype(object)
    if cls is MLPClassifier:
        classes = _array(path, arrays, "classes", 1, kinds="biufU")
        lb = LabelBinarizer()
        lb.classes_ = classes
        lb.y_type_ = meta["label_type"]
        if lb.y_type_ not in ("binary", "multiclass", "multilabel-indicator"):
            raise _bad(path, f"label type {lb.y_type_!r}")
        lb.sparse_input_ = False
        est._label_binarizer = lb
        est.classes_ = classes
    return est


def _load_tabular(path, arrays, prep, est):
    sub = {k[5:]: a for k, a in arrays.items() if k.startswith("prep/")}
    try:
        preparation = Preparation.from_state(sub, prep)
    except ValueError as exc:
        raise _bad(path, str(exc)) from exc
    if len(preparation.output_names()) != est.n_features_in_:
        raise _bad(path, "the preparation's output does not match the weights")
    shift, scale = float(prep["shift"]), float(prep["scale"])
    if not (np.isfinite(shift) and np.isfinite(scale) and scale > 0):
        raise _bad(path, f"target standardisation {shift}, {scale}")
    return TabularModel(preparation, est, prep["target"], shift, scale)


def _load_modules(path, arrays, layers, prefix):
    if not isinstance(layers, list) or not layers:
        raise _bad(path, "no layer list")
    modules = []
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or spec.get("type") not in MODULES:
            raise _bad(path, f"layer {i} is {spec!r}")
        cls, keys = MODULES[spec["type"]]
        kwargs = {k: spec[k] for k in keys}
        if cls is Linear:
            kwargs["dtype"] = spec["dtype"]
        try:
            module = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise _bad(path, f"layer {i} ({spec['type']}): {exc}") from exc
        for pname, current in module.params.items():
            arr = _array(path, arrays, f"{prefix}{i}.{pname}", current.ndim)
            if arr.shape != current.shape or arr.dtype != current.dtype:
                raise _bad(path, f"layer {i} parameter {pname!r} has shape {arr.shape}")
            module.params[pname] = arr
        modules.append(module)
    return modules


def _load_graph(path, arrays, meta):
    g = Graph()
    by_name = {}
    for spec in meta["nodes"]:
        name, kind = spec["name"], spec["kind"]
        if kind == "input":
            node = g.input(name)
        elif kind == "param":
            node = g.param(name, _array(path, arrays, f"param:{name}"))
        elif kind == "op":
            (module,) = _load_modules(path, arrays, [spec["module"]], f"op:{name}:")
            try:
                inputs = [by_name[n] for n in spec["inputs"]]
            except KeyError as exc:
                raise _bad(path, f"node {name!r} uses an unknown node {exc}") from exc
            node = g.add(module, *inputs, name=name)
        else:
            raise _bad(path, f"node {name!r} has kind {kind!r}")
        by_name[name] = node
    return g
