"""Model files: ``save(obj, path)`` and ``load(path)``, never pickle.

A model file is one ``.npz`` holding the arrays (weights, class labels) and a JSON
document (``__meta__``) with the format version, the fastnet version, the class,
its hyperparameters and fitted attributes or its layer list. Writes are atomic (a
temporary file beside the target, then a rename).

The format itself, its version, its limits and the checks a file passes before
anything is built, is :mod:`fastnet.model_format` (its names are importable from
here too). A load reads only what the format names: every check first, against the
arrays' headers, then the arrays, then the builder of :data:`BUILDERS`.
"""

import numbers

import numpy as np
from sklearn.preprocessing import LabelBinarizer

from ._runtime.atomic import save_npz
from ._version import __version__
from .model_format import (
    ATTRIBUTES,
    CHECKS,
    DEFLATE_RATIO,
    ENTRY_CHECKS,
    ESTIMATORS,
    FORMAT,
    HEADER_CHECKS,
    KINDS,
    META_BYTES,
    META_DEPTH,
    MODULES,
    NOT_SAVED,
    OUTPUTS,
    PARAM_SHAPES,
    check_document,
    open_model_file,
    read_document,
    read_metadata,
    target_standardisation,
    unfitted,
)
from .nn import Linear
from .nn.graph import Graph
from .nn.sequential import Sequential
from .sklearn.estimators import MLPClassifier
from .tabular.prepare import Preparation, TabularModel

#: the public names, the format's (:mod:`fastnet.model_format`) among them: they
#: were all defined here once, and stay importable from here
__all__ = [
    "ATTRIBUTES",
    "BUILDERS",
    "CHECKS",
    "DEFLATE_RATIO",
    "ENTRY_CHECKS",
    "ESTIMATORS",
    "FORMAT",
    "HEADER_CHECKS",
    "KINDS",
    "META_BYTES",
    "META_DEPTH",
    "MODULES",
    "NOT_SAVED",
    "OUTPUTS",
    "PARAM_SHAPES",
    "load",
    "read_document",
    "read_metadata",
    "save",
]


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
    # the target's standardisation under keys of its own: "scale" is the
    # preparation's flag (files before wrote the target's scale over it)
    prep.update(target=model.target, target_shift=model.shift,
                target_scale=model.scale)  # fmt: skip
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
    """Read a model file written by :func:`save`; returns the estimator or model.

    The document passes every check of :data:`CHECKS` against the headers of the
    arrays it names before one of them is read; members it does not name are
    never read.
    """
    with open_model_file(path) as archive:
        meta = archive.document()
        try:
            check_document(meta, archive)
            return BUILDERS[meta["kind"]](meta, archive)
        except (KeyError, TypeError, AttributeError) as exc:
            raise archive.bad(f"missing or malformed field ({exc})") from exc


def _weights(archive, key):
    """A float array, which must be finite (a NaN weight predicts NaN everywhere)."""
    a = archive.array(key)
    if not np.isfinite(a).all():
        raise archive.bad(f"array {key!r} holds NaN or infinity")
    return np.ascontiguousarray(a)


def _load_estimator(meta, archive):
    cls = ESTIMATORS[meta["kind"]]
    est = unfitted(cls, meta["params"])
    for a, value in meta["attributes"].items():
        setattr(est, a, value)
    n = est.n_layers_ - 1
    est.coefs_ = [_weights(archive, f"coef_{i}") for i in range(n)]
    est.intercepts_ = [_weights(archive, f"intercept_{i}") for i in range(n)]
    if "feature_names_in" in archive:
        est.feature_names_in_ = archive.array("feature_names_in").astype(object)
    if cls is MLPClassifier:
        classes = archive.array("classes")
        lb = LabelBinarizer()
        lb.classes_, lb.y_type_, lb.sparse_input_ = classes, meta["label_type"], False
        est._label_binarizer, est.classes_ = lb, classes
    if "preparation" in meta:
        return _load_tabular(meta["preparation"], est, archive)
    return est


class _Members:
    """The arrays under ``prefix``, read as :meth:`Preparation.from_state` asks for
    them (``get``), and only those."""

    def __init__(self, archive, prefix):
        self.archive, self.prefix = archive, prefix

    def get(self, key):
        key = self.prefix + key
        return self.archive.array(key) if key in self.archive else None


def _load_tabular(prep, est, archive):
    shift, scale = target_standardisation(prep)
    if "target_scale" not in prep:
        # a file from before: its "scale" held the target's scale, over the
        # preparation's flag, which the arrays tell (means only where it scaled)
        prep = {**prep, "scale": "prep/mean" in archive}
    try:
        preparation = Preparation.from_state(_Members(archive, "prep/"), prep)
    except ValueError as exc:
        raise archive.bad(str(exc)) from exc
    if len(preparation.output_names()) != est.n_features_in_:
        raise archive.bad("the preparation's output does not match the weights")
    return TabularModel(preparation, est, prep["target"], shift, scale)


def _load_sequential(meta, archive):
    return Sequential(*_load_modules(archive, meta["layers"], ""))


def _load_modules(archive, layers, prefix):
    modules = []
    for i, spec in enumerate(layers):
        cls, keys = MODULES[spec["type"]]
        kwargs = {k: spec[k] for k in keys}
        if cls is Linear:
            kwargs["dtype"] = spec["dtype"]
        try:
            module = cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise archive.bad(f"layer {i} ({spec['type']}): {exc}") from exc
        for pname in module.params:
            module.params[pname] = _weights(archive, f"{prefix}{i}.{pname}")
        modules.append(module)
    return modules


def _load_graph(meta, archive):
    g = Graph()
    by_name = {}
    for spec in meta["nodes"]:
        name, kind = spec["name"], spec["kind"]
        if kind == "input":
            node = g.input(name)
        elif kind == "param":
            node = g.param(name, _weights(archive, f"param:{name}"))
        else:
            (module,) = _load_modules(archive, [spec["module"]], f"op:{name}:")
            try:
                inputs = [by_name[n] for n in spec["inputs"]]
            except KeyError as exc:
                raise archive.bad(f"node {name!r} uses an unknown node {exc}") from exc
            node = g.add(module, *inputs, name=name)
        by_name[name] = node
    return g


#: model kind -> the builder of its object from a checked document and archive
BUILDERS = {
    "MLPClassifier": _load_estimator,
    "MLPRegressor": _load_estimator,
    "Sequential": _load_sequential,
    "Graph": _load_graph,
}
