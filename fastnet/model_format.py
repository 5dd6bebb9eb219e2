"""The model file format: its version, its limits, the checks a file passes before
anything is built, and the reading of its document.

A load (:func:`fastnet.model_files.load`) reads only what the format names, and
checks before it reads. The reader is :mod:`fastnet._runtime.archive`, shared with
the training checkpoints: each member's zip entry (:data:`ENTRY_CHECKS`) before it
is opened and its ``.npy`` header (:data:`HEADER_CHECKS`) before its data is read,
the document no longer than :data:`META_BYTES` nor nested deeper than
:data:`META_DEPTH`. Here, :data:`CHECKS` compare the document with those headers:
so a file cannot make a load read more than it holds, allocate more than its arrays
declare, or build a model that fails later. A truncated, corrupted, foreign, newer
or inconsistent file raises ``ValueError`` naming the field.
"""

import numpy as np

from ._runtime.archive import (
    DEFLATE_RATIO,
    ENTRY_CHECKS,
    HEADER_CHECKS,
    META_BYTES,
    META_DEPTH,
    open_archive,
)
from ._version import __version__
from .nn import Dropout, Einsum, Linear, Softmax, activations
from .sklearn.estimators import MLPClassifier, MLPRegressor

__all__ = [
    "ATTRIBUTES",
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
    "check_document",
    "open_model_file",
    "read_document",
    "read_metadata",
    "unfitted",
]

#: the format's version: a load refuses a file of a newer one. Its limits, shared
#: with the checkpoints, are the reader's: META_BYTES, META_DEPTH, DEFLATE_RATIO
FORMAT = 1
ESTIMATORS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
#: the kinds of model the format holds (a TabularModel is stored as its
#: estimator's kind, with a preparation)
KINDS = (*ESTIMATORS, "Sequential", "Graph")
#: module type -> (its class, its constructor's keyword attributes)
MODULES = {
    "Linear": (Linear, ("n_in", "n_out")),
    **activations.MODULES,  # every registered activation module
    "Softmax": (Softmax, ()),
    "Dropout": (Dropout, ("p",)),
    "Einsum": (Einsum, ("equation",)),
}
#: module type -> its parameters' shapes from its stored attributes (modules not
#: named here have none)
PARAM_SHAPES = {"Linear": lambda s: {"W": (s["n_in"], s["n_out"]), "b": (s["n_out"],)}}
#: fitted attributes of the estimators kept in the metadata
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
#: hyperparameters that belong to a fit, not to the model: not saved, and a loaded
#: estimator has their defaults (``callbacks``: hooks into a fit, often closures)
NOT_SAVED = ("callbacks",)
#: (estimator, its label type or loss) -> the output activation its fit chooses
#: (scikit-learn's ``BaseMultilayerPerceptron._initialize``)
OUTPUTS = {
    ("MLPClassifier", "binary"): "logistic",
    ("MLPClassifier", "multilabel-indicator"): "logistic",
    ("MLPClassifier", "multiclass"): "softmax",
    ("MLPRegressor", "squared_error"): "identity",
    ("MLPRegressor", "poisson"): "exp",
}


def unfitted(cls, params):
    """An unfitted ``cls`` with the stored hyperparameters ``params`` (JSON's lists
    back to the tuples scikit-learn takes)."""
    params = dict(params)
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    return cls(**params)


def _whole(v):
    """Whether a JSON value is a whole number (``true`` is not)."""
    return isinstance(v, int) and not isinstance(v, bool)


# -- format 1: what a load checks -------------------------------------------------
# Document checks take (meta, archive); each raises ValueError naming the field.
# CHECKS below lists them in the order a load runs them.
def _check_producer(meta, archive):
    """A document of fastnet's, in a format this fastnet reads."""
    if not isinstance(meta, dict) or meta.get("producer") != "fastnet":
        raise archive.bad("not a fastnet model file")
    fmt = meta.get("format")
    if not _whole(fmt):
        raise archive.bad("no format version")
    if fmt > FORMAT:
        raise ValueError(
            f"model file {archive.path!r} has format {fmt}, written by a newer "
            f"fastnet ({meta.get('fastnet_version')}); this fastnet ({__version__}) "
            f"reads format {FORMAT}: upgrade fastnet"
        )


def _check_kind(meta, archive):
    """A kind of model the format holds."""
    if meta.get("kind") not in KINDS:
        raise archive.bad(f"unknown model kind {meta.get('kind')!r}")


def _check_params(meta, archive):
    """The class's hyperparameters, each valid by scikit-learn's own checks."""
    cls = ESTIMATORS[meta["kind"]]
    params = meta["params"]
    if not isinstance(params, dict) or set(params) != set(cls().get_params()) - set(
        NOT_SAVED
    ):
        raise archive.bad(f"hyperparameters do not match {cls.__name__}")
    try:
        unfitted(cls, params)._validate_params()
    except ValueError as exc:
        raise archive.bad(f"hyperparameters: {exc}") from exc


def _check_attributes(meta, archive):
    """Only known fitted attributes; the network's sizes among them, whole numbers."""
    attrs = meta["attributes"]
    if not isinstance(attrs, dict):
        raise archive.bad("attributes is not a JSON object")
    for a in attrs:
        if a not in ATTRIBUTES:
            raise archive.bad(f"unknown attribute {a!r}")
    for a, least in (("n_features_in_", 1), ("n_outputs_", 1), ("n_layers_", 2)):
        if not _whole(attrs.get(a)) or attrs[a] < least:
            raise archive.bad(f"{a} = {attrs.get(a)!r}")


def _check_layers(meta, archive):
    """``coef_i`` (n_in, n_out) and ``intercept_i`` (n_out,) for each of the
    ``n_layers_ - 1`` layers, from their headers: no layer of zero width, each taking
    what the one before gives (the first ``n_features_in_``, the last giving
    ``n_outputs_``), all in one float dtype."""
    attrs = meta["attributes"]
    width, first = attrs["n_features_in_"], None
    for i in range(attrs["n_layers_"] - 1):
        W, Wt = archive.header(f"coef_{i}")
        b, bt = archive.header(f"intercept_{i}")
        if Wt.kind != "f" or (first is not None and Wt != first) or bt != Wt:
            raise archive.bad(
                f"layers have different or non-float dtypes: coef_{i} {Wt}, "
                f"intercept_{i} {bt}" + (f", coef_0 {first}" if i else "")
            )
        first = Wt
        if len(W) == 2 and 0 in W:
            raise archive.bad(f"coef_{i} has shape {W}: a layer of zero width")
        if len(W) != 2 or W[0] != width or b != (W[1],):
            raise archive.bad(
                f"layer {i} has inconsistent shapes: coef_{i} {W} and intercept_{i} "
                f"{b} after "
                + (f"coef_{i - 1}'s {width} outputs" if i else f"{width} features")
            )
        width = W[1]
    if attrs["n_outputs_"] != width:
        raise archive.bad(
            f"n_outputs_ = {attrs['n_outputs_']}, but the last layer gives {width}"
        )


def _check_output(meta, archive):
    """``out_activation_`` the one the estimator's fit chooses (:data:`OUTPUTS`): a
    classifier's probabilities sum to one, a regressor's outputs are its loss's."""
    kind, attrs = meta["kind"], meta["attributes"]
    how = meta["label_type"] if kind == "MLPClassifier" else meta["params"]["loss"]
    if (kind, how) not in OUTPUTS:
        raise archive.bad(f"label type {how!r}")
    if attrs["out_activation_"] != OUTPUTS[kind, how]:
        raise archive.bad(
            f"out_activation_ = {attrs['out_activation_']!r}, but a {kind} for "
            f"{how!r} outputs {OUTPUTS[kind, how]!r}"
        )


def _check_classes(meta, archive):
    """``classes_`` as many as the outputs say, so that no prediction indexes past
    them: a binary classifier has one output and two classes (one, if it saw one),
    a multiclass or multilabel one a class per output."""
    shape = archive.header("classes")[0]
    k, how = meta["attributes"]["n_outputs_"], meta["label_type"]
    if how == "binary" and k != 1:
        raise archive.bad(f"n_outputs_ = {k}, but a binary classifier has one output")
    counts = (1, 2) if how == "binary" else (k,)
    if len(shape) != 1 or shape[0] not in counts:
        raise archive.bad(
            f"classes_ has shape {shape}, but a {how} classifier with {k} outputs "
            f"has {' or '.join(map(str, counts))} classes"
        )


def _check_feature_names(meta, archive):
    """``feature_names_in_``, if saved: text, one name per input."""
    if "feature_names_in" in archive:
        shape, dtype = archive.header("feature_names_in")
        if dtype.kind != "U" or shape != (meta["attributes"]["n_features_in_"],):
            raise archive.bad(f"feature_names_in_ has shape {shape} of {dtype}")


def target_standardisation(prep):
    """``(shift, scale)`` of a TabularModel's target from its ``preparation``
    entry: ``target_shift`` / ``target_scale``, or in files before them ``shift`` /
    ``scale`` (where ``scale`` was written over the preparation's own flag)."""
    if "target_scale" in prep:
        return prep["target_shift"], prep["target_scale"]
    return prep.get("shift"), prep.get("scale")


def _check_target_scale(meta, archive):
    """A TabularModel's target standardisation: finite, with a positive scale."""
    if "preparation" in meta:
        shift, scale = target_standardisation(meta["preparation"])
        given = [v for v in (shift, scale) if isinstance(v, (int, float))]
        if len(given) < 2 or not np.isfinite(given).all() or scale <= 0:
            raise archive.bad(f"target standardisation {shift!r}, {scale!r}")


def _check_sequential(meta, archive):
    """Each layer a module the format stores, whose parameters have the shapes its
    attributes declare; each Linear taking what the Linear before gives."""
    layers = meta.get("layers")
    if not isinstance(layers, list) or not layers:
        raise archive.bad("no layer list")
    width = None
    for i, spec in enumerate(layers):
        _check_module(archive, spec, f"{i}.", f"layer {i}")
        if spec["type"] == "Linear":
            if width is not None and spec["n_in"] != width:
                raise archive.bad(
                    f"layer {i} (Linear) has n_in = {spec['n_in']}, but the Linear "
                    f"before gives {width}"
                )
            width = spec["n_out"]
        elif spec["type"] == "Einsum":
            width = None  # changes the width in ways only its inputs say


def _check_graph(meta, archive):
    """Each node an input, a parameter (a float array) or an op whose module passes
    the checks of a Sequential's layers."""
    nodes = meta["nodes"]
    if not isinstance(nodes, list):
        raise archive.bad("no node list")
    for spec in nodes:
        name, kind = spec["name"], spec["kind"]
        if kind == "param" and archive.header(f"param:{name}")[1].kind != "f":
            raise archive.bad(f"parameter node {name!r} is not a float array")
        if kind == "op":
            _check_module(archive, spec["module"], f"op:{name}:0.", f"node {name!r}")
        elif kind not in ("input", "param"):
            raise archive.bad(f"node {name!r} has kind {kind!r}")


def _check_module(archive, spec, prefix, where):
    """One module: a type of :data:`MODULES`, its attributes present, and each
    parameter's header (members ``prefix + name``) the shape those attributes
    declare, in the dtype it names: no declared size is allocated before the file
    is known to hold it."""
    if not isinstance(spec, dict) or spec.get("type") not in MODULES:
        raise archive.bad(f"{where} is {spec!r}")
    name, keys = spec["type"], MODULES[spec["type"]][1]
    for k in keys:
        if k not in spec:
            raise archive.bad(f"{where} ({name}) has no {k}")
    if name not in PARAM_SHAPES:
        return
    sizes = [spec[k] for k in keys]
    if not all(_whole(n) and n > 0 for n in sizes):
        raise archive.bad(
            f"{where} ({name}) has sizes {sizes}: zero width or not whole"
        )
    if spec.get("dtype") not in ("float32", "float64"):
        raise archive.bad(f"{where} ({name}) has dtype {spec.get('dtype')!r}")
    for pname, shape in PARAM_SHAPES[name](spec).items():
        held = archive.header(prefix + pname)
        if held != (shape, np.dtype(spec["dtype"])):
            raise archive.bad(
                f"{where} ({name}) declares {pname} {shape} of {spec['dtype']}, but "
                f"array {prefix + pname!r} holds {held[0]} of {held[1]}"
            )


#: Format 1's document checks, ``(kinds, check)`` (None: every kind), in the order
#: a load runs them: they compare the document with the headers of the arrays it
#: names (each member passing ENTRY_CHECKS and HEADER_CHECKS on the way) before any
#: weight is read or model built. A new format version edits this list.
CHECKS = (
    (None, _check_producer),  # fastnet's, of a format this fastnet reads
    (None, _check_kind),  # a kind of model the format holds
    (tuple(ESTIMATORS), _check_params),  # the class's, valid hyperparameters
    (tuple(ESTIMATORS), _check_attributes),  # known attributes, whole sizes
    (tuple(ESTIMATORS), _check_layers),  # coef_/intercept_: chained, no zero width
    (tuple(ESTIMATORS), _check_output),  # out_activation_ by label type or loss
    (("MLPClassifier",), _check_classes),  # classes_ as many as the outputs say
    (tuple(ESTIMATORS), _check_feature_names),  # one name per input
    (tuple(ESTIMATORS), _check_target_scale),  # a TabularModel's, finite
    (("Sequential",), _check_sequential),  # layers' sizes are their arrays'
    (("Graph",), _check_graph),  # params float, op modules as layers
)


def check_document(meta, archive):
    """Run every check of :data:`CHECKS` that applies to the document ``meta``'s
    kind, against the headers of ``archive``'s arrays."""
    for kinds, check in CHECKS:
        if kinds is None or meta["kind"] in kinds:
            check(meta, archive)


# -- reading the document --------------------------------------------------------------
def open_model_file(path):
    """The model file at ``path`` as an :class:`~fastnet._runtime.archive.Archive`
    (a context manager): its zip directory read, none of its members."""
    return open_archive(path, "model file")


def read_document(path):
    """The whole JSON document of the model file at ``path`` (format, fastnet
    version, kind, ...), read without any of its arrays."""
    with open_model_file(path) as archive:
        return archive.document()


def read_metadata(path):
    """The ``metadata`` dict given to :func:`~fastnet.model_files.save` (empty if
    none)."""
    with open_model_file(path) as archive:
        meta = archive.document()
        user = meta.get("user", {}) if isinstance(meta, dict) else None
        if not isinstance(user, dict):
            raise archive.bad("metadata is not a JSON object")
    return user
