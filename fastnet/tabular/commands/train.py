"""``fastnet train``: a new run (:func:`train_new`) or one that continues a
checkpoint (:func:`train_resumed`), sharing the steps between them.

It reads a CSV/TSV/semicolon file (with or without a header) or an ``.npz``, says
which task it infers and why, prepares the columns (numbers median-imputed and
standardised, text one-hot encoded: :mod:`fastnet.tabular.prepare`), trains on 75 %
of the rows and reports the held-out score; the model file holds the preparation,
so ``predict`` takes raw rows of the same kind of file.
"""

import datetime

import numpy as np

from ..checkpoint import SaveEachEpoch, load_checkpoint
from ..errors import CliError
from ..plot import plot_history, require_matplotlib
from ..table import few, read_table
from .missing import check_missing
from .outputs import check_outputs, check_resume
from .progress import fit_with_progress
from .target import infer_task, rows_with_target, target_name, target_values

HELD_OUT = 0.25


def run(args):
    """``fastnet train``: check the outputs before anything else, read the data,
    then train anew or resume."""
    from ..._runtime import native as _native

    # with a cold kernel cache, a helper process compiles while the data loads
    _native.compile_in_background()
    check_outputs(args)
    if args.plot:
        require_matplotlib(args.plot)
    if args.resume:
        check_resume(args)
    table = (
        _digits()
        if args.data is None
        else read_table(args.data, sep=args.sep, header=args.header)
    )
    return (train_resumed if args.resume else train_new)(args, table)


def train_new(args, table):
    """A new run on ``table`` with the settings of ``args``."""
    from ..prepare import Preparation, TabularModel, column_kinds

    target = target_name(table, args.target)
    features = _features(table, target, args.drop)
    frame = rows_with_target(table, target, print)
    task, why = infer_task(frame[target], target)
    if args.task:
        task, why = args.task, "--task"
    print(f"task: {'classification' if task == 'classify' else 'regression'} ({why})")
    y = target_values(table, frame[target], target, task, forced=bool(args.task))
    for note in table.notes:
        print(note)
    numeric, categorical, notes = column_kinds(table, features)
    for note in notes:
        print(note)
    prep = Preparation(
        features, numeric, categorical, impute=args.impute, scale=args.scale
    )
    check_missing(table, frame, prep, print, " (--no-impute)")
    split = _split(y, task, args.seed)
    prep.fit(frame.iloc[split[0]])
    est = _new_estimator(args, task, train_rows=len(split[0]))
    shift, scale = 0.0, 1.0
    if task == "regress":  # train on a standardised target, map back
        ytr = y[split[0]]
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
        "seed": args.seed,
    }
    return _fit_and_save(args, table, frame, y, split, model, info, resume=None)


def train_resumed(args, table):
    """Continue the run of the checkpoint ``args.checkpoint`` on ``table``, which
    must have the columns of the data it was trained on: the same split, the same
    preparation, and the fit goes on bit for bit from the last epoch saved."""
    from ..prepare import check_numbers

    model, resume, info = load_checkpoint(args.checkpoint)
    if info.get("data_columns") != [str(c) for c in table.frame.columns]:
        raise CliError(
            f"{table.path} does not have the columns of the data the checkpoint "
            f"was trained on ({info.get('data')}): give that file as --data"
        )
    target, task, prep = info["target"], info["task"], model.preparation
    frame = rows_with_target(table, target, print)
    forced = info.get("why") == "--task"
    y = target_values(table, frame[target], target, task, forced=forced)
    for note in table.notes:
        print(note)
    check_numbers(table, frame, prep.numeric)  # (column_kinds checks a new run's)
    check_missing(table, frame, prep, print, " (--no-impute)")
    split = _split(y, task, info["seed"])
    est = model.estimator
    if args.epochs is not None:
        if args.epochs <= est.n_iter_:
            raise CliError(
                f"the checkpoint has trained {est.n_iter_} epochs already: --epochs "
                "counts all epochs, so give more"
            )
        est.set_params(max_iter=args.epochs)
    est.set_params(warm_start=True)
    return _fit_and_save(args, table, frame, y, split, model, info, resume=resume)


# -- the steps both share --------------------------------------------------------------
def _digits():
    """The digits data scikit-learn ships, as a table with named columns."""
    import pandas as pd
    from sklearn.datasets import load_digits

    from ..table import Table

    digits = load_digits()
    frame = pd.DataFrame(
        digits.data, columns=[f"pixel{i}" for i in range(digits.data.shape[1])]
    )
    frame["digit"] = digits.target
    return Table(frame, "the digits data", True, ",")


def _features(table, target, drop):
    """The feature columns: all but the target and those ``--drop`` names."""
    frame = table.frame
    dropped = [c.strip() for c in (drop or "").split(",") if c.strip()]
    unknown = [c for c in dropped if c not in frame.columns]
    if unknown:
        raise CliError(f"--drop: {table.path} has no column {few(unknown)}")
    if target in dropped:
        raise CliError(f"--drop names the target {target!r}")
    features = [c for c in frame.columns if c != target and c not in dropped]
    if not features:
        raise CliError(f"{table.path} has no feature columns besides the target")
    return features


def _split(y, task, seed):
    """(training rows, held-out rows): HELD_OUT of the rows held out, stratified
    by class where every class has two rows."""
    from sklearn.model_selection import train_test_split

    stratify = None
    if task == "classify" and np.unique(y, return_counts=True)[1].min() >= 2:
        stratify = y
    rows = np.arange(len(y))
    return train_test_split(
        rows, test_size=HELD_OUT, random_state=seed, stratify=stratify
    )


def _new_estimator(args, task, train_rows):
    from ...sklearn.estimators import MLPClassifier, MLPRegressor

    cls = MLPClassifier if task == "classify" else MLPRegressor
    return cls(
        hidden_layer_sizes=args.hidden,
        activation=args.activation,
        solver=args.solver,
        max_iter=args.epochs or 100,
        batch_size=min(args.batch_size, train_rows),
        learning_rate_init=args.lr,
        random_state=args.seed,
    )


def _fit_and_save(args, table, frame, y, split, model, info, resume):
    """Fit ``model``'s estimator on the training rows (after ``resume``, a
    checkpoint's callback, where given), report the held-out score, plot, and save
    the model file."""
    tr, te = split
    classify = info["task"] == "classify"  # (an unfitted model cannot say)
    X = model.preparation.transform(frame)
    fit_y = y if classify else (y - model.shift) / model.scale
    est = model.estimator
    checkpoint = None
    if args.checkpoint:
        checkpoint = SaveEachEpoch(model, args.checkpoint, info)
    history = fit_with_progress(
        est,
        (X[tr], fit_y[tr]),
        (X[te], fit_y[te]),
        done=est.n_iter_ if resume is not None else 0,
        plot=args.plot,
        checkpoint=checkpoint,
        resume=resume,
    )
    est.set_params(warm_start=False)
    metric = "accuracy" if classify else "R^2"
    score = est.score(X[te], fit_y[te])
    info.update(train_rows=len(tr), **_outcome(est, te, metric, score, history))
    result = f"held-out {metric} {score:.4f}"
    if not classify:
        info["mae"] = float(np.mean(np.abs(model.predict(frame.iloc[te]) - y[te])))
        result += f", MAE {info['mae']:.6g}"
    print(f"{result} ({len(te)} rows, {HELD_OUT:.0%} held out)")
    if len(te) < 30:
        print(f"(only {len(te)} held-out rows: the score is a rough guide)")
    print(f"trained in {history.seconds:.2f} s: {history.why}")
    if args.plot:
        title = f"{type(est).__name__} on {table.path}"
        plot_history(history, metric, args.plot, title)
        print(f"saved plot to {args.plot}")
    from ... import model_files as io

    io.save(model, args.out, metadata=info)
    print(f"saved model to {args.out}")
    return 0


def _outcome(est, te, metric, score, history):
    """What the model file's metadata says of the training."""
    return {
        "held_out_rows": len(te),
        "metric": metric,
        "score": float(score),
        "epochs": int(est.n_iter_),
        "stopped": history.why,
        "trained_at": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
    }
