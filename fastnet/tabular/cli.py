"""The ``fastnet`` command: ``train``, ``predict``, ``info`` and ``bench``.

``train`` reads a CSV/TSV/semicolon file (with or without a header) or an ``.npz``,
says which task it infers and why, prepares the columns (numbers median-imputed and
standardised, text one-hot encoded: :mod:`fastnet.tabular.prepare`), trains on 75 % of
the
rows and reports the held-out score; the model file holds the preparation, so
``predict`` takes raw rows of the same kind of file.

Every failure prints one line on stderr and exits with 2; never a traceback, and
never a model file overwritten by a run that then fails.
"""

import argparse
import csv
import datetime
import gc
import os
import sys
import time

import numpy as np

from .._version import __version__
from .checkpoint import resume_from as _resume_from
from .checkpoint import save_checkpoint as _save_checkpoint
from .plot import plot_history as _plot
from .plot import require_matplotlib as _require_matplotlib
from .table import TableError, few, read_table

#: the estimators' hidden activations (fastnet.sklearn.estimators.HIDDEN_ACTIVATIONS; a
#: test
#: keeps them equal), listed here so that --help and --version import no estimator
ACTIVATIONS = ("gelu", "identity", "leaky_relu", "logistic", "relu", "tanh")
#: integer targets with at most this many values are classes unless --task says
MAX_CLASSES_ALWAYS = 20
HELD_OUT = 0.25


class CliError(Exception):
    """A problem with the command's input, reported as one line."""


class Interrupted(Exception):
    """Training stopped by Ctrl-C: nothing saved but the checkpoint."""


#: train options a --resume run takes; every other one is the checkpoint's
RESUME_OPTIONS = {
    "data",
    "sep",
    "header",
    "checkpoint",
    "resume",
    "epochs",
    "out",
    "plot",
}


def _pd():
    import pandas as pd

    return pd


# -- data ------------------------------------------------------------------------------
def _digits():
    """The digits data scikit-learn ships, as a table with named columns."""
    from sklearn.datasets import load_digits

    from .table import Table

    digits = load_digits()
    frame = _pd().DataFrame(
        digits.data, columns=[f"pixel{i}" for i in range(digits.data.shape[1])]
    )
    frame["digit"] = digits.target
    return Table(frame, "the digits data", True, ",")


def _target_name(table, target):
    """The target column's name: ``--target`` as a name, or as a 1-based position
    in a file without a header; the last column by default."""
    names = list(table.frame.columns)
    if target is None:
        return names[-1]
    if target in names:
        return target
    if target.isdigit() and not table.header and 1 <= int(target) <= len(names):
        return names[int(target) - 1]
    hint = (
        f"its columns are {few(names)}{_did_you_mean(target, names)}"
        if table.header
        else f"it has no header: name the target by position, 1 to {len(names)}"
    )
    raise CliError(f"{table.path} has no column {target!r}; {hint}")


def infer_task(y, name):
    """('classify' or 'regress', why) for the target column ``y`` (no missing
    values): text is classes; non-integer numbers are regressed; integers are classes
    when there are at most MAX_CLASSES_ALWAYS of them or they are the codes 0..k-1,
    else regressed (an age, a count, a price)."""
    pd = _pd()
    text = pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y)
    if text:
        y = y.astype(str).str.strip()
    distinct = int(y.nunique())
    rows = f"{distinct} value{'s' * (distinct != 1)} in {len(y):,} rows"
    if text:
        return "classify", f"target {name!r} is text with {rows}"
    values = y.to_numpy(dtype=np.float64)
    if not np.all(values == np.round(values)):
        return "regress", f"target {name!r} has non-integer numbers"
    why = f"target {name!r} has {distinct} integer values in {len(y):,} rows"
    if distinct <= MAX_CLASSES_ALWAYS:
        return "classify", why
    labels = np.unique(values)
    if labels[0] == 0 and labels[-1] == distinct - 1 and len(y) >= 5 * distinct:
        return "classify", why + f", the codes 0 to {distinct - 1}"
    return "regress", why


def _labels(y):
    """Class labels: integers where the column holds whole numbers, else text."""
    pd = _pd()
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        values = y.to_numpy(dtype=np.float64)
        if np.all(values == np.round(values)):
            return values.astype(np.int64)
        return values
    return y.astype(str).str.strip().to_numpy(dtype=str)


def _regress_target(y, table, name):
    pd = _pd()
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        values = pd.to_numeric(y, errors="coerce")
        bad = values.isna()
        if bad.any():
            i = bad.idxmax()
            raise CliError(
                f"{table.path}: line {table.line(i)}, target {name!r}: {y[i]!r} "
                "is not a number, and regression needs numbers (--task classify?)"
            )
        y = values
    values = y.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        i = int(np.argmax(~np.isfinite(values)))
        raise CliError(
            f"{table.path}: line {table.line(y.index[i])}, target {name!r}: "
            f"{values[i]} is not finite"
        )
    return values


def _check_writable(path, what):
    """Refuse, before any training, an output path that cannot be written."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise CliError(f"{what} {path} is a folder")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise CliError(f"{what} {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK) or (
        os.path.exists(path) and not os.access(path, os.W_OK)
    ):
        raise CliError(f"{what} {path}: permission denied")


def _check_outputs(args):
    """Refuse, before training, outputs that cannot be written or that would
    destroy something: the data file, the checkpoint, a file that is not a model."""
    outs = [
        (args.out, "--out"),
        (args.plot, "--plot"),
        (args.checkpoint, "--checkpoint"),
    ]
    for path, what in outs:
        if path:
            _check_writable(path, what)
    data = os.path.abspath(args.data) if args.data else None
    for path, what in outs:
        if path and os.path.abspath(path) == data:
            raise CliError(f"{what} {path} is the data file: it would be overwritten")
    if args.checkpoint and os.path.abspath(args.checkpoint) == os.path.abspath(
        args.out
    ):
        raise CliError("--checkpoint and --out must be different files")
    from .._runtime.atomic import is_npz

    for path, what in ((args.out, "--out"), (args.checkpoint, "--checkpoint")):
        if path and os.path.isfile(path) and not is_npz(path):
            raise CliError(
                f"{what} {path} exists and is not a model file: fastnet will not "
                "overwrite it"
            )


def _check_resume(args):
    if not args.checkpoint:
        raise CliError("--resume needs --checkpoint PATH of an earlier run")
    if not os.path.exists(args.checkpoint):
        raise CliError(f"--resume: no such checkpoint {args.checkpoint}")
    fixed = sorted(set(vars(args.given)) - RESUME_OPTIONS - {"command"})
    if fixed:
        flags = ", ".join("--" + f.replace("_", "-") for f in fixed)
        raise CliError(
            f"--resume continues the checkpoint's run with its own settings: {flags} "
            "cannot change (train anew without --resume to change them)"
        )


def _given(argv):
    """The options given on the command line (a namespace without defaults)."""
    p = build_parser()
    parsers = [p, *p._subparsers._group_actions[0].choices.values()]
    for parser in parsers:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        parser._defaults = {}
    return p.parse_args(argv)


def _note_missing(prep, frame, say):
    missing = prep.missing(frame)
    if missing:
        cells = sum(missing.values())
        by = few([f"{k} ({v})" for k, v in missing.items()])
        say(f"imputed {cells} missing cell{'s' * (cells > 1)}: {by}")


def _first_missing(table, frame):
    """(line, column) of the first missing cell in ``frame``."""
    mask = frame.isna().to_numpy()
    r, c = np.argwhere(mask)[0]
    return table.line(frame.index[r]), frame.columns[c]


# -- train -----------------------------------------------------------------------------
def _train(args):
    from .._runtime import native as _native
    from .prepare import Preparation, TabularModel, check_numbers, column_kinds

    # with a cold kernel cache, a helper process compiles while the data loads
    _native.compile_in_background()

    say = print
    _check_outputs(args)
    if args.plot:
        _require_matplotlib(args.plot)
    if args.resume:
        _check_resume(args)

    table = (
        _digits()
        if args.data is None
        else read_table(args.data, sep=args.sep, header=args.header)
    )
    frame = table.frame
    if args.resume:
        model, restore, info = _resume_from(args.checkpoint)
        if info.get("data_columns") != [str(c) for c in frame.columns]:
            raise CliError(
                f"{table.path} does not have the columns of the data the checkpoint "
                f"was trained on ({info.get('data')}): give that file as --data"
            )
        target, task = info["target"], info["task"]
        prep = model.preparation
        seed = info["seed"]
    else:
        target = _target_name(table, args.target)
        seed = args.seed
    dropped = [c.strip() for c in (args.drop or "").split(",") if c.strip()]
    unknown = [c for c in dropped if c not in frame.columns]
    if unknown:
        raise CliError(f"--drop: {table.path} has no column {few(unknown)}")
    if target in dropped:
        raise CliError(f"--drop names the target {target!r}")
    features = [c for c in frame.columns if c != target and c not in dropped]
    if not features:
        raise CliError(f"{table.path} has no feature columns besides the target")

    lost = frame[target].isna()
    if lost.all():
        raise CliError(f"{table.path}: the target {target!r} has no values")
    if lost.any():
        say(f"dropped {int(lost.sum())} rows whose target {target!r} is missing")
        frame = frame[~lost]
    y_raw = frame[target]
    if not args.resume:
        task, why = infer_task(y_raw, target)
        if args.task:
            task, why = args.task, "--task"
        say(f"task: {'classification' if task == 'classify' else 'regression'} ({why})")
    if task == "classify":
        y = _labels(y_raw)
        classes, counts = np.unique(y, return_counts=True)
        if not args.task and len(classes) > max(MAX_CLASSES_ALWAYS, len(y) / 2):
            raise CliError(
                f"{table.path}: the target {target!r} has {len(classes)} different "
                f"values in {len(y):,} rows, too many to be classes: choose the target "
                "with --target (or force --task)"
            )
        if len(classes) < 2:
            # (the estimator fits a constant model, as scikit-learn's does; here it
            # is almost surely the wrong target column)
            raise CliError(
                f"{table.path}: the target has one class only ({classes[0]}); "
                "classifying needs at least 2"
            )
    else:
        y = _regress_target(y_raw, table, target)
    if len(y) < 4:
        raise CliError(f"{table.path}: {len(y)} rows are too few to train and evaluate")

    for note in table.notes:
        say(note)
    if not args.resume:
        numeric, categorical, notes = column_kinds(table, features)
        for note in notes:
            say(note)
        prep = Preparation(
            features, numeric, categorical, impute=args.impute, scale=args.scale
        )
    else:
        numeric = prep.numeric
    if args.resume:  # (column_kinds checked a new run's numbers)
        check_numbers(table, frame, numeric)
    if prep.impute:
        _note_missing(prep, frame, say)
    elif frame[features].isna().to_numpy().any():
        line, column = _first_missing(table, frame[features])
        raise CliError(
            f"{table.path}: line {line}, column {column!r} is empty (--no-impute)"
        )

    from sklearn.model_selection import train_test_split

    stratify = y if task == "classify" and counts.min() >= 2 else None
    rows = np.arange(len(y))
    tr, te = train_test_split(
        rows, test_size=HELD_OUT, random_state=seed, stratify=stratify
    )
    if not args.resume:
        prep.fit(frame.iloc[tr])
    X = prep.transform(frame)
    Xtr, Xte, ytr, yte = X[tr], X[te], y[tr], y[te]

    if args.resume:
        est = model.estimator
        done = est.n_iter_
        if args.epochs is not None:
            if args.epochs <= done:
                raise CliError(
                    f"the checkpoint has trained {done} epochs already: --epochs "
                    "counts all epochs, so give more"
                )
            est.set_params(max_iter=args.epochs)
        est.set_params(warm_start=True)
        est._fn_resume = restore
    else:
        from ..sklearn.estimators import MLPClassifier, MLPRegressor

        done = 0
        cls = MLPClassifier if task == "classify" else MLPRegressor
        est = cls(
            hidden_layer_sizes=args.hidden,
            activation=args.activation,
            solver=args.solver,
            max_iter=args.epochs or 100,
            batch_size=min(args.batch_size, len(tr)),
            learning_rate_init=args.lr,
            random_state=seed,
        )
        shift, scale = 0.0, 1.0
        if task == "regress":  # train on a standardised target, map back
            shift, scale = float(ytr.mean()), float(ytr.std()) or 1.0
        model = TabularModel(prep, est, target, shift, scale)
        info = {
            "data": table.path,
            "data_columns": [str(c) for c in table.frame.columns],
            "header": table.header,
            "sep": table.sep,
            "target": target,
            "target_position": list(table.frame.columns).index(target),
            "task": task,
            "why": why,
            "seed": seed,
        }
    fit_y = ytr if task == "classify" else (ytr - model.shift) / model.scale
    fit_yte = yte if task == "classify" else (yte - model.shift) / model.scale
    history = _fit_with_progress(est, Xtr, fit_y, Xte, fit_yte, args, model, info, done)
    est.set_params(warm_start=False)

    metric = "accuracy" if task == "classify" else "R^2"
    score = est.score(Xte, fit_yte)
    result = f"held-out {metric} {score:.4f}"
    info.update(
        train_rows=len(tr),
        held_out_rows=len(te),
        metric=metric,
        score=float(score),
        epochs=int(est.n_iter_),
        stopped=history["why"],
        trained_at=datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
    )
    if task == "regress":
        mae = float(np.mean(np.abs(model.predict(frame.iloc[te]) - yte)))
        info["mae"] = mae
        result += f", MAE {mae:.6g}"
    print(f"{result} ({len(te)} rows, {HELD_OUT:.0%} held out)")
    if len(te) < 30:
        print(f"(only {len(te)} held-out rows: the score is a rough guide)")
    print(f"trained in {history['seconds']:.2f} s: {history['why']}")
    if args.plot:
        _plot(history, metric, args.plot, f"{type(est).__name__} on {table.path}")
        print(f"saved plot to {args.plot}")
    from .. import model_files as io

    io.save(model, args.out, metadata=info)
    print(f"saved model to {args.out}")
    return 0


def _fit_with_progress(est, Xtr, ytr, Xte, yte, args, model, info, done):
    """Fit with a progress bar that ends where training stops and says why."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from tqdm.auto import tqdm

    from ..sklearn.estimators import NON_FINITE_WEIGHTS

    history = {"loss": [], "held_out": [], "first": done + 1}
    bar = tqdm(
        total=est.max_iter, initial=done, desc="training", unit="epoch", file=sys.stderr
    )

    def on_epoch(e):
        history["loss"].append(e.loss_)
        if args.plot:
            history["held_out"].append(e.score(Xte, yte))
        bar.set_postfix(loss=f"{e.loss_:.4g}", refresh=False)
        bar.update(1)
        if args.checkpoint:
            _save_checkpoint(model, args.checkpoint, info)
            history["saved"] = e.n_iter_

    est._fn_epoch_hook = on_epoch
    _work_begins()
    began = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)  # said: stopped why
            est.fit(Xtr, ytr)
        # scikit-learn's loop catches Ctrl-C and warns
        interrupted = any("interrupted by user" in str(w.message) for w in caught)
        for w in caught:
            if "interrupted by user" not in str(w.message):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    except ValueError as exc:
        if not str(exc).startswith(NON_FINITE_WEIGHTS):
            raise
        raise CliError(
            "training diverged (the weights became NaN or infinite): lower --lr"
        ) from None
    finally:
        est._fn_epoch_hook = None
        history["seconds"] = time.perf_counter() - began
        if est.solver == "lbfgs" and not history["loss"]:  # no epochs: iterations
            bar.update(est.n_iter_ - done)
            history["loss"] = list(getattr(est, "loss_curve_", []))
        bar.total = bar.n  # the bar ends where training stopped
        bar.refresh()
        bar.close()
    n = est.n_iter_
    if interrupted:
        kept = ""
        if history.get("saved"):
            kept = (
                f"; the checkpoint {args.checkpoint} holds epoch {history['saved']}: "
                "add --resume to go on"
            )
        raise Interrupted(
            f"interrupted after {n} epochs: the model file was not written{kept}"
        )
    if est.solver == "lbfgs":
        why = f"{n} iterations, " + (
            "L-BFGS converged"
            if n < est.max_iter
            else f"--epochs {est.max_iter} reached"
        )
    elif n < est.max_iter:
        why = (
            f"stopped at epoch {n} of {est.max_iter}: the training loss improved by "
            f"less than {est.tol:g} for {est.n_iter_no_change} epochs"
        )
    else:
        why = f"all {n} epochs (--epochs {est.max_iter})"
    history["why"] = why
    return history


# -- predict ---------------------------------------------------------------------------
def _load_model(path):
    """(TabularModel, info) from a model file; a bare estimator's file (saved with
    fastnet.save) gets a preparation that passes its columns through."""
    from .. import model_files as io
    from ..sklearn.estimators import MLPClassifier, MLPRegressor
    from .prepare import Preparation, TabularModel

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
        f"{_did_you_mean(missing[0], names)}{unused}; the file must hold {must}"
    )


def _did_you_mean(name, names):
    import difflib

    close = difflib.get_close_matches(name, [str(n) for n in names], n=1)
    lower = [n for n in names if str(n).lower() == name.lower()]
    guess = lower[0] if lower else (close[0] if close else None)
    return f" (is {guess!r} meant as {name!r}?)" if guess else ""


def _predict(args):
    model, info = _load_model(args.model)
    if args.proba and not model.is_classifier:
        raise CliError("--proba needs a classifier model")
    table = read_table(args.data, sep=args.sep, header=args.header)
    frame = _match_columns(table, model, info)
    from .prepare import check_numbers

    prep = model.preparation
    check_numbers(table, frame, prep.numeric)

    def say(msg):
        print(f"fastnet: {msg}", file=sys.stderr)

    if prep.impute:
        _note_missing(prep, frame, say)
    elif frame.isna().to_numpy().any():
        line, column = _first_missing(table, frame)
        raise CliError(
            f"{table.path}: line {line}, column {column!r} is empty, and the model "
            "was trained without imputation"
        )
    import warnings

    _work_begins()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)  # unseen categories
        values = (model.predict_proba if args.proba else model.predict)(frame)
    for w in caught:
        say(str(w.message))
    out = sys.stdout
    writer = csv.writer(out, lineterminator="\n")
    if args.proba:
        writer.writerow([str(c) for c in model.classes_])
        for row in values:
            writer.writerow([f"{p:.6g}" for p in row])
    else:
        if model.is_classifier:
            for v in values:
                writer.writerow([v])
        else:
            out.write("".join(f"{float(v)!r}\n" for v in values))
    return 0


# -- info ------------------------------------------------------------------------------
def _info(args):
    model, info = _load_model(args.model)
    est = model.estimator
    sizes = [est.coefs_[0].shape[0], *(W.shape[1] for W in est.coefs_)]
    weights = sum(
        W.size + b.size for W, b in zip(est.coefs_, est.intercepts_, strict=True)
    )
    from .. import model_files as io

    _, meta = io.load_npz(args.model, "model file")
    version = meta.get("fastnet_version", "?")
    when = info.get("trained_at")
    lines = [
        (
            "model",
            f"{type(est).__name__}, fastnet {version}"
            + (f", trained {when}" if when else ""),
        ),
        (
            "layers",
            " -> ".join(str(s) for s in sizes)
            + f" ({est.activation}; {est.out_activation_} output), {weights:,} "
            f"weights, {est.coefs_[0].dtype}",
        ),
    ]
    if model.is_classifier:
        lines.append(
            ("classes", f"{few(list(est.classes_), 10)} ({len(est.classes_)})")
        )
    if model.target is not None:
        t = f"{model.target!r}"
        if not model.is_classifier and (model.shift, model.scale) != (0.0, 1.0):
            t += (
                f" (trained standardised: mean {model.shift:.6g}, sd {model.scale:.6g})"
            )
        lines.append(("target", t))
    if "why" in info:
        task = "classification" if info["task"] == "classify" else "regression"
        lines.append(("task", f"{task} ({info['why']})"))
    if "train_rows" in info:
        lines.append(("data", f"{info['data']}: {info['train_rows']:,} training rows"))
        score = f"{info['metric']} {info['score']:.4f}"
        if "mae" in info:
            score += f", MAE {info['mae']:.6g}"
        lines.append(("held-out", f"{score} on {info['held_out_rows']:,} rows"))
    p = est.get_params()
    lines.append(
        (
            "training",
            f"{est.solver}, learning rate {p['learning_rate_init']:g}, batch "
            f"{p['batch_size']}, alpha {p['alpha']:g}; "
            + info.get("stopped", f"{est.n_iter_} epochs"),
        )
    )
    prep = model.preparation
    described = prep.describe()
    lines.append(
        ("features", f"{len(prep.features)} -> {est.n_features_in_} prepared columns")
    )
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    show = described if args.all else described[:30]
    for line in show:
        print(f"{'':<{width}}  {line}")
    if len(show) < len(described):
        print(f"{'':<{width}}  ... {len(described) - len(show)} more (--all)")
    return 0


def _bench(args):
    from .._bench import workloads as _bench

    _work_begins()
    return _bench.main(quick=args.quick)


def _compile(args):
    from .._runtime import precompile as _precompile

    _work_begins()
    start = time.perf_counter()

    def each(name, seconds):
        if args.verbose:
            print(f"{name:<48} {seconds:6.2f} s", flush=True)

    try:
        compiled, cached, jobs, folder = _precompile.precompile(args.jobs, each)
    except RuntimeError as exc:
        raise CliError(_one_line(exc)) from None
    took = time.perf_counter() - start
    if compiled:
        also = f"; {cached} were cached already" if cached else ""
        print(
            f"compiled {len(compiled)} kernels in {took:.1f} s with {jobs} "
            f"process{'es' * (jobs != 1)}{also} (cache: {folder})"
        )
    else:
        print(f"all {cached} kernels are compiled already (cache: {folder})")
    return 0


# -- arguments -------------------------------------------------------------------------
def _hidden(text):
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden takes sizes like 128,64, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"--hidden sizes must be positive, got {text!r}"
        )
    return sizes


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive number, got {text!r}"
            ) from None
        if not value > 0:
            raise argparse.ArgumentTypeError(
                f"expected a positive number, got {text!r}"
            )
        return value

    return parse


def _sep(text):
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    sep = named.get(text.lower(), text)
    if sep not in (",", ";", "\t", "|"):
        raise argparse.ArgumentTypeError(f"--sep takes , ; | or tab, got {text!r}")
    return sep


def _reading(p):
    p.add_argument(
        "--sep", type=_sep, help="delimiter: , ; tab or | (default: detected)"
    )
    h = p.add_mutually_exclusive_group()
    h.add_argument(
        "--header",
        dest="header",
        action="store_true",
        default=None,
        help="the first row names the columns (default: detected)",
    )
    h.add_argument(
        "--no-header",
        dest="header",
        action="store_false",
        help="the first row is data; columns are col1, col2, ...",
    )


class _Help(argparse.HelpFormatter):
    """Help that shows each option's default, where it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if not any(action.default is v for v in (None, False, True, argparse.SUPPRESS)):
            text += f" (default: {action.default})"
        return text


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    fmt = _Help
    p = _Parser(prog="fastnet", description="Fast MLPs on the CPU.")
    p.add_argument("--version", action="version", version=f"fastnet {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    t = sub.add_parser(
        "train", help="train a model (default: the digits data)", formatter_class=fmt
    )
    t.add_argument(
        "--data", help="CSV/TSV file, or .npz with X and y (default: the digits data)"
    )
    t.add_argument(
        "--target",
        help="target column: a name, or a position 1..n in a file without a header "
        "(default: the last column)",
    )
    t.add_argument("--drop", metavar="COLS", help="columns to leave out, e.g. id,name")
    _reading(t)
    t.add_argument(
        "--task", choices=["classify", "regress"], help="default: inferred and said"
    )
    t.add_argument(
        "--no-scale",
        dest="scale",
        action="store_false",
        help="do not standardise numeric columns",
    )
    t.add_argument(
        "--no-impute",
        dest="impute",
        action="store_false",
        help="a missing cell is an error instead of the column's median / mode",
    )
    t.add_argument("--hidden", type=_hidden, default="128,64", help="layer sizes")
    t.add_argument(
        "--activation",
        choices=ACTIVATIONS,
        default="relu",
        help="hidden layers' activation",
    )
    t.add_argument(
        "--solver", choices=["adam", "sgd", "lbfgs"], default="adam", help="optimizer"
    )
    t.add_argument(
        "--epochs",
        type=_positive(int),
        help="epochs in all (default: 100; with --resume: the checkpoint's)",
    )
    t.add_argument("--batch-size", type=_positive(int), default=64, help="rows")
    t.add_argument(
        "--lr", type=_positive(float), default=1e-3, help="initial learning rate"
    )
    t.add_argument(
        "--seed", type=int, default=0, help="weights, shuffling and the held-out split"
    )
    t.add_argument("--out", default="fastnet-model.npz", help="model file")
    t.add_argument("--plot", metavar="PNG", help="save loss and held-out score curves")
    t.add_argument("--checkpoint", metavar="PATH", help="save a checkpoint every epoch")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    t.set_defaults(func=_train)
    q = sub.add_parser(
        "predict", help="predict with a saved model", formatter_class=fmt
    )
    q.add_argument("model")
    q.add_argument(
        "data", help="CSV/TSV with the training columns (by name or position), or .npz"
    )
    _reading(q)
    q.add_argument("--proba", action="store_true", help="CSV of class probabilities")
    q.set_defaults(func=_predict)
    i = sub.add_parser("info", help="describe a saved model", formatter_class=fmt)
    i.add_argument("model")
    i.add_argument("--all", action="store_true", help="every feature, not the first 30")
    i.set_defaults(func=_info)
    b = sub.add_parser(
        "bench", help="benchmark fastnet against its peers", formatter_class=fmt
    )
    b.add_argument(
        "--quick", action="store_true", help="5 repetitions of short samples, not 11"
    )
    b.set_defaults(func=_bench)
    c = sub.add_parser(
        "compile",
        help="compile every kernel ahead of time, so that no later fit waits for "
        "the compiler",
        formatter_class=fmt,
    )
    c.add_argument(
        "--jobs",
        type=_positive(int),
        help="worker processes (default: the cores this process may use)",
    )
    c.add_argument(
        "-v", "--verbose", action="store_true", help="each kernel's compile time"
    )
    c.set_defaults(func=_compile)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.given = _given(argv)
    try:
        return args.func(args)
    except Interrupted as exc:
        print(f"fastnet: {exc}", file=sys.stderr)
        return 130
    except (CliError, TableError) as exc:
        print(f"fastnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        print(f"fastnet: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, never a traceback
        print(
            f"fastnet: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr
        )
        return 1


#: set by :func:`command` while the program starts; see :func:`_work_begins`
_STARTING = False


def _work_begins():
    """Where the program's work (training, predicting, benchmarking) begins: the
    collector, off while the program started (:func:`command`), comes back on, with
    every object made so far frozen out of its walks. Nothing here when :func:`main`
    is called in-process (tests, scripts): their collector is theirs."""
    global _STARTING
    if _STARTING:
        _STARTING = False
        gc.freeze()
        gc.enable()


def command():
    """The ``fastnet`` program: :func:`main` on the process's arguments, then exit.

    The program owns its process, so it sets the garbage collector's schedule:

    - off while it starts (the imports of scikit-learn, Numba and the kernels, and
      reading the data), which create some 300,000 objects that live until exit and
      no cyclic garbage worth a collection: walking them took 0.2-0.3 s of a 1.6 s
      warm ``fastnet train`` here;
    - on, with those objects frozen (``gc.freeze``), from where the work begins
      (:func:`_work_begins`), so a long training run collects as usual but never
      walks the startup objects again;
    - frozen at the end: the interpreter's collections at exit would otherwise walk
      every object once more. Every file the command wrote is closed and renamed by
      then, and Python flushes the standard streams at exit as before."""
    global _STARTING
    gc.disable()
    _STARTING = True
    try:
        code = main()
    finally:
        _work_begins()
    gc.freeze()
    return code


def _one_line(exc):
    text = " ".join(str(exc).split())
    return text if len(text) < 400 else text[:397] + "..."


if __name__ == "__main__":
    sys.exit(command())
