"""``fastnet predict MODEL DATA``: one prediction per row of DATA (a label, a
number, or with ``--proba`` a CSV of class probabilities), and the model file
reader that ``info`` shares."""

import csv
import os
import sys

from .. import collector
from ..errors import CliError, did_you_mean
from ..table import few, read_table
from .missing import check_missing


def run(args):
    """``fastnet predict``: the rows' predictions on stdout, notes on stderr."""
    from ..prepare import check_numbers

    model, info = load_model(args.model)
    if args.proba and not model.is_classifier:
        raise CliError("--proba needs a classifier model")
    table = read_table(args.data, sep=args.sep, header=args.header)
    frame = _match_columns(table, model, info)
    check_numbers(table, frame, model.preparation.numeric)

    def say(msg):
        print(f"fastnet: {msg}", file=sys.stderr)

    check_missing(
        table,
        frame,
        model.preparation,
        say,
        ", and the model was trained without imputation",
    )
    import warnings

    collector.work_begins()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)  # unseen categories
        values = (model.predict_proba if args.proba else model.predict)(frame)
    for w in caught:
        say(str(w.message))
    _write(values, model, args.proba, sys.stdout)
    return 0


def _write(values, model, proba, out):
    writer = csv.writer(out, lineterminator="\n")
    if proba:
        writer.writerow([str(c) for c in model.classes_])
        for row in values:
            writer.writerow([f"{p:.6g}" for p in row])
    elif model.is_classifier:
        for v in values:
            writer.writerow([v])
    else:  # every digit
        out.write("".join(f"{float(v)!r}\n" for v in values))


def load_model(path):
    """(TabularModel, info) from a model file; a bare estimator's file (saved with
    fastnet.save) gets a preparation that passes its columns through."""
    from ... import model_files as io
    from ...sklearn.estimators import MLPClassifier, MLPRegressor
    from ..prepare import Preparation, TabularModel

    if not os.path.exists(path):
        raise CliError(f"no such file: {path}")
    model = io.load(path)
    info = io.read_metadata(path)
    if isinstance(model, (MLPClassifier, MLPRegressor)):
        n = model.n_features_in_
        names = info.get("features") or (
            list(model.feature_names_in_)
            if hasattr(model, "feature_names_in_")
            else [f"x{i}" for i in range(n)]
        )
        if len(names) != n:
            names = [f"x{i}" for i in range(n)]
        plain = {"features": names, "numeric": names, "categorical": []}
        prep = Preparation.from_state({}, {**plain, "impute": False, "scale": False})
        model = TabularModel(prep, model, info.get("target"))
    elif not isinstance(model, TabularModel):
        raise CliError(f"{path} holds a {type(model).__name__}, not a trained model")
    return model, info


def _match_columns(table, model, info):
    """The rows' feature columns: by name when the header holds the model's names,
    by position when the file has no header and its width fits."""
    frame, features = table.frame, model.preparation.features
    names = list(frame.columns)
    if table.path.endswith(".npz"):
        x = [c for c in names if c != "y"]
        if len(x) == len(features):
            return frame[x].set_axis(features, axis=1)
        raise CliError(
            f"the model expects {len(features)} features, {table.path} has {len(x)}"
        )
    if table.header and all(f in names for f in features):
        extra = [c for c in names if c not in features and c != model.target]
        if extra:
            print(
                f"fastnet: ignoring columns the model does not use: {few(extra)}",
                file=sys.stderr,
            )
        return frame[features]
    must = (
        f"{len(features)} columns named {few(features)} (with a header), or "
        f"{len(features)} columns without a header, in the training order"
    )
    if not table.header:
        if len(names) == len(features):
            return frame.set_axis(features, axis=1)
        pos, width = info.get("target_position"), len(info.get("data_columns", ()))
        if pos is not None and width == len(names) == len(features) + 1:
            return frame.drop(columns=names[pos]).set_axis(features, axis=1)
        raise CliError(
            f"{table.path} has {len(names)} columns and no header; the model needs "
            f"{must}"
        )
    missing = [f for f in features if f not in names]
    extra = [str(c) for c in names if c not in features and c != model.target]
    unused = f" and has {len(extra)} it does not use ({few(extra)})" if extra else ""
    raise CliError(
        f"{table.path} lacks {len(missing)} of the model's columns ({few(missing)})"
        f"{did_you_mean(missing[0], names)}{unused}; the file must hold {must}"
    )
