"""Model files: ``save(obj, path)`` and ``load(path)``, never pickle.

A model file is one ``.npz`` holding the arrays (weights, class labels) and a JSON
document (``__meta__``) with the format version, the fastnet version, the class,
its hyperparameters and fitted attributes or its layer list. Writes are atomic (a
temporary file beside the target, then a rename).

A load reads only what the format names, and checks before it reads: the zip
directory's entry and the ``.npy`` header of each member it names, the document
against those headers (the tables beside :data:`FORMAT`), and only then the data.
So a file cannot make a load read more than it holds, allocate more than its arrays
declare, or build a model that fails later: a truncated, corrupted, foreign, newer
or inconsistent file raises ``ValueError`` naming the field.
"""

import contextlib
import json
import math
import numbers
import os
import re
import zipfile
import zlib

import numpy as np
from sklearn.preprocessing import LabelBinarizer

from ._runtime.atomic import is_npz, save_npz
from ._runtime.checks import FLOAT_DTYPES
from ._version import __version__
from .nn import Dropout, Einsum, Linear, Softmax, activations
from .nn.graph import Graph
from .nn.sequential import Sequential
from .sklearn.estimators import MLPClassifier, MLPRegressor
from .tabular.prepare import Preparation, TabularModel

ESTIMATORS = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
# module type -> (constructor keyword attributes)
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
#: (estimator, its label type or loss) -> the output activation its fit chooses
#: (scikit-learn's ``BaseMultilayerPerceptron._initialize``)
OUTPUTS = {
    ("MLPClassifier", "binary"): "logistic",
    ("MLPClassifier", "multilabel-indicator"): "logistic",
    ("MLPClassifier", "multiclass"): "softmax",
    ("MLPRegressor", "squared_error"): "identity",
    ("MLPRegressor", "poisson"): "exp",
}


def _bad(path, what):
    return ValueError(f"model file {path!r} is invalid: {what}")


def _whole(v):
    """Whether a JSON value is a whole number (``true`` is not)."""
    return isinstance(v, int) and not isinstance(v, bool)


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


# -- format 1: what a load checks -------------------------------------------------
# Member checks take (archive, key, entry[, header]); document checks take
# (meta, archive). Each raises ValueError naming the field; the tables below FORMAT
# list them in the order a load runs them.
def _check_entry(archive, key, entry):
    """Stored or deflated (what ``np.savez`` and ``np.savez_compressed`` write), not
    encrypted, and no larger than its compressed bytes can honestly expand to: the
    directory's size, which a read is held to, is then bounded by the file's own."""
    if entry.flag_bits & 1:
        raise archive.bad(f"array {key!r} is encrypted")
    if entry.compress_type == zipfile.ZIP_STORED:
        honest = entry.file_size == entry.compress_size
    elif entry.compress_type == zipfile.ZIP_DEFLATED:
        honest = entry.file_size <= DEFLATE_RATIO * entry.compress_size
    else:
        raise archive.bad(f"array {key!r} has zip compression {entry.compress_type}")
    if not honest:
        raise archive.bad(
            f"array {key!r} declares {entry.file_size} bytes in "
            f"{entry.compress_size} compressed ones"
        )


def _check_meta_size(archive, key, entry):
    """``__meta__`` no longer than :data:`META_BYTES`, before it is opened."""
    if key == "__meta__" and entry.file_size > META_BYTES:
        raise archive.bad(
            f"__meta__ is {entry.file_size} bytes, more than the {META_BYTES} a "
            "model file's document may have"
        )


def _check_dtype(archive, key, entry, header):
    """Numbers, booleans or text in this machine's byte order, floats in float32 or
    float64 (the kernels' types), each element at least one byte: never objects,
    which only pickle could read."""
    dtype = header[1]
    if dtype.hasobject:
        raise archive.bad(
            f"array {key!r} holds Python objects, which cannot be read safely "
            "(that needs pickle)"
        )
    if (
        dtype.kind not in "biufU"
        or not dtype.isnative
        or (dtype.kind == "f" and dtype not in FLOAT_DTYPES)
        or dtype.itemsize == 0  # any count of elements in no bytes at all
    ):
        raise archive.bad(
            f"array {key!r} has dtype {dtype.str} ({dtype}); a model file holds "
            "float32 or float64, integers, booleans or text, in native byte order"
        )


def _check_size(archive, key, entry, header):
    """The member's size in the directory is exactly its header plus its shape times
    its itemsize: reading it then allocates what the file's bytes hold, no more."""
    shape, dtype, start = header
    if (
        min(shape, default=0) < 0
        or entry.file_size != start + math.prod(shape) * dtype.itemsize
    ):
        raise archive.bad(
            f"array {key!r} declares shape {shape} of {dtype}, but its member holds "
            f"{entry.file_size - start} bytes of data"
        )


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
    if meta.get("kind") not in BUILDERS:
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
        _estimator(cls, params)._validate_params()
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


def _check_target_scale(meta, archive):
    """A TabularModel's target standardisation: finite, with a positive scale."""
    if "preparation" in meta:
        shift, scale = meta["preparation"]["shift"], meta["preparation"]["scale"]
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


FORMAT = 1
#: the longest ``__meta__`` member, and the deepest nesting of its JSON, a load
#: reads (JSON's parser recurses; a user's metadata holds column names)
META_BYTES = 16 * 2**20
META_DEPTH = 64
#: deflate's largest ratio of output to input (a 258-byte run in about two bits)
DEFLATE_RATIO = 1032
#: Format 1's checks, in the order a load runs them. A new format version edits
#: these lists. Each member the format names passes ENTRY_CHECKS (its zip entry)
#: before it is opened and HEADER_CHECKS (its .npy header) before its data is read;
#: CHECKS, ``(kinds, check)`` (None: every kind), compare the document with those
#: headers before any weight is read or model built.
ENTRY_CHECKS = (_check_entry, _check_meta_size)
HEADER_CHECKS = (_check_dtype, _check_size)
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


# -- reading ---------------------------------------------------------------------------
class _Archive:
    """The members of an open model file, each read only when the format names it,
    and checked first: its zip entry (:data:`ENTRY_CHECKS`) before it is opened, its
    ``.npy`` header (:data:`HEADER_CHECKS`) before its data is decompressed or an
    array allocated. Members the format does not name (a checkpoint's optimizer
    state, anything else) are never opened."""

    def __init__(self, path, zf):
        self.path = path
        self._zip = zf
        self._entries = {e.filename: e for e in zf.infolist()}
        self._headers = {}

    def bad(self, what):
        """The ValueError saying this file is invalid, and why."""
        return _bad(self.path, what)

    def __contains__(self, key):
        return f"{key}.npy" in self._entries

    def header(self, key):
        """``(shape, dtype)`` of array ``key`` from its checked header; its data
        unread."""
        if key not in self._headers:
            entry = self._entries.get(f"{key}.npy")
            if entry is None:
                raise self.bad(f"array {key!r} is missing")
            for check in ENTRY_CHECKS:
                check(self, key, entry)
            with self._reading(key) as f:
                header = _npy_header(f)
            for check in HEADER_CHECKS:
                check(self, key, entry, header)
            self._headers[key] = header[:2]
        return self._headers[key]

    def array(self, key):
        """Array ``key``, read once its header has passed the checks."""
        self.header(key)
        with self._reading(key) as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    @contextlib.contextmanager
    def _reading(self, key):
        """The member's stream; a read that fails is a ValueError naming it."""
        try:
            with self._zip.open(self._entries[f"{key}.npy"]) as f:
                yield f
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise self.bad(f"array {key!r} is truncated or corrupt: {exc}") from exc
        except ValueError as exc:  # not .npy, or its data cut short
            raise self.bad(f"array {key!r} is not a readable .npy: {exc}") from exc


#: the .npy format versions ``np.save`` writes -> their header's reader
_NPY_HEADERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _npy_header(f):
    """``(shape, dtype, offset of the data)`` from an ``.npy`` stream's header."""
    version = np.lib.format.read_magic(f)
    if version not in _NPY_HEADERS:
        raise ValueError(f".npy format version {version}")
    shape, _, dtype = _NPY_HEADERS[version](f)
    return shape, dtype, f.tell()


@contextlib.contextmanager
def _opened(path):
    """The model file at ``path`` as an :class:`_Archive`: its zip directory read,
    none of its members."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"model file {path!r} does not exist")
    if not is_npz(path):
        raise ValueError(
            f"model file {path!r} is not an .npz file: truncated, corrupt or of "
            "another format"
        )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"model file {path!r} is truncated or corrupt: {exc}") from exc
    with zf:
        yield _Archive(path, zf)


def _document(archive):
    """The JSON document of ``__meta__``: a text ``.npy`` of at most
    :data:`META_BYTES`, nested at most :data:`META_DEPTH` deep (counted before
    parsing, which recurses)."""
    if "__meta__" not in archive:
        raise ValueError(
            f"model file {archive.path!r} is not a fastnet file (no metadata)"
        )
    shape, dtype = archive.header("__meta__")
    if dtype.kind != "U" or shape != ():
        raise archive.bad(f"__meta__ holds {dtype} of shape {shape}, not JSON text")
    text = str(archive.array("__meta__"))
    if _nesting(text, META_DEPTH) > META_DEPTH:
        raise archive.bad(f"__meta__ nests deeper than {META_DEPTH} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise archive.bad(f"__meta__ is not JSON: {exc}") from exc


#: what the nesting of JSON text turns on: an escape pair, a quote, a bracket
_JSON_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


def _nesting(text, most):
    """How deep the brackets of JSON ``text`` nest outside its strings, counted
    without recursion and up to ``most + 1`` (a hostile depth stops the count)."""
    depth = deepest = 0
    in_string = False
    for token in _JSON_TOKENS.finditer(text):
        c = token.group()
        if c == '"':
            in_string = not in_string
        elif in_string or len(c) == 2:
            continue
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > most:
                break
        else:
            depth -= 1
    return deepest


def read_document(path):
    """The whole JSON document of the model file at ``path`` (format, fastnet
    version, kind, ...), read without any of its arrays."""
    with _opened(path) as archive:
        return _document(archive)


def read_metadata(path):
    """The ``metadata`` dict given to :func:`save` (empty if none)."""
    meta = read_document(path)
    user = meta.get("user", {}) if isinstance(meta, dict) else None
    if not isinstance(user, dict):
        raise _bad(path, "metadata is not a JSON object")
    return user


# -- loading ---------------------------------------------------------------------------
def load(path):
    """Read a model file written by :func:`save`; returns the estimator or model.

    The document passes every check of :data:`CHECKS` against the headers of the
    arrays it names before one of them is read; members it does not name are
    never read.
    """
    with _opened(path) as archive:
        meta = _document(archive)
        try:
            for kinds, check in CHECKS:
                if kinds is None or meta["kind"] in kinds:
                    check(meta, archive)
            return BUILDERS[meta["kind"]](meta, archive)
        except (KeyError, TypeError, AttributeError) as exc:
            raise archive.bad(f"missing or malformed field ({exc})") from exc


def _estimator(cls, params):
    """An unfitted ``cls`` with the stored hyperparameters."""
    params = dict(params)
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    return cls(**params)


def _weights(archive, key):
    """A float array, which must be finite (a NaN weight predicts NaN everywhere)."""
    a = archive.array(key)
    if not np.isfinite(a).all():
        raise archive.bad(f"array {key!r} holds NaN or infinity")
    return np.ascontiguousarray(a)


def _load_estimator(meta, archive):
    cls = ESTIMATORS[meta["kind"]]
    est = _estimator(cls, meta["params"])
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
    try:
        preparation = Preparation.from_state(_Members(archive, "prep/"), prep)
    except ValueError as exc:
        raise archive.bad(str(exc)) from exc
    if len(preparation.output_names()) != est.n_features_in_:
        raise archive.bad("the preparation's output does not match the weights")
    shift, scale = float(prep["shift"]), float(prep["scale"])
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
