"""The ``fastnet`` command: ``train``, ``predict`` and ``bench``.

Errors (a missing file, an unknown column, a cell that is not a number, a model and
data of different widths) print one line on stderr and exit non-zero; never a
traceback.
"""

import argparse
import csv
import math
import os
import sys
import time

import numpy as np
from sklearn.model_selection import train_test_split

from . import io
from ._atomic import load_npz, save_npz
from .estimator import (
    HIDDEN_ACTIVATIONS,
    NON_FINITE_WEIGHTS,
    MLPClassifier,
    MLPRegressor,
)


class CliError(Exception):
    """A problem with the command's input, reported as one line."""


# -- data ------------------------------------------------------------------------------
def _read_csv(path, target):
    """(X, y or None, feature names, target name) from a CSV file with a header row.

    ``target``: the target column's name; ``None`` means the last column. With
    ``target=False`` every column is a feature.
    """
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CliError(f"{path} is not a readable CSV file: {exc}") from exc
    if not rows:
        raise CliError(f"{path} is empty")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    body = [r for r in body if r and any(c.strip() for c in r)]
    if not body:
        raise CliError(f"{path} has a header but no data rows")
    if target is None:
        t = len(header) - 1
    elif target is False:
        t = None
    elif target in header:
        t = header.index(target)
    else:
        raise CliError(
            f"{path} has no column {target!r}; its columns are {', '.join(header)}"
        )
    features = [h for i, h in enumerate(header) if i != t]
    if not features:
        raise CliError(f"{path} has no feature columns besides the target")
    X = np.empty((len(body), len(features)))
    y = []
    for r, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise CliError(
                f"{path}: row {r} has {len(row)} cells, the header has {len(header)}"
            )
        j = 0
        for i, cell in enumerate(row):
            if i == t:
                y.append(cell.strip())
                continue
            try:
                X[r - 2, j] = float(cell)
            except ValueError:
                raise CliError(
                    f"{path}: row {r}, column {header[i]!r}: {cell!r} is not a number"
                ) from None
            if not math.isfinite(X[r - 2, j]):
                raise CliError(
                    f"{path}: row {r}, column {header[i]!r}: {cell!r} is not finite"
                )
            j += 1
    return (
        X,
        (np.array(y) if t is not None else None),
        features,
        (header[t] if t is not None else None),
    )


def _csv_header(path):
    try:
        with open(path, newline="") as f:
            return [h.strip() for h in next(csv.reader(f), [])]
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CliError(f"{path} is not a readable CSV file: {exc}") from exc


def _read_npz(path, need_y):
    try:
        with np.load(path, allow_pickle=False) as data:
            if "X" not in data.files or (need_y and "y" not in data.files):
                raise CliError(
                    f"{path} must hold arrays named 'X'"
                    + (" and 'y'" if need_y else "")
                )
            X = data["X"]
            y = data["y"] if "y" in data.files else None
    except CliError:
        raise
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise CliError(
            f"{path}: X must be a 2-D numeric array, got {X.dtype} {X.shape}"
        )
    names = [f"x{i}" for i in range(X.shape[1])]
    return X.astype(np.float64), y, names, "y"


def _load_data(path, target, need_y=True):
    if path is None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        names = [f"pixel{i}" for i in range(digits.data.shape[1])]
        return digits.data, digits.target, names, "digit"
    if not os.path.exists(path):
        raise CliError(f"no such file: {path}")
    if path.endswith(".npz"):
        return _read_npz(path, need_y)
    return _read_csv(path, target)


def _infer_task(y):
    """'regress' for targets that are real numbers, else 'classify'."""
    try:
        values = y.astype(np.float64)
    except ValueError:
        return "classify"
    if np.all(values == np.round(values)) and len(np.unique(values)) <= max(
        20, len(y) // 20
    ):
        return "classify"
    return "regress"


def _targets(y, task, path):
    if task == "regress":
        try:
            return y.astype(np.float64)
        except ValueError:
            raise CliError(
                f"{path or 'data'}: the target must be numeric to regress"
            ) from None
    if y.dtype.kind in "U":
        try:
            as_int = y.astype(np.int64)
            if np.array_equal(as_int.astype(str), y):
                return as_int
        except ValueError:
            pass
    return y


# -- checkpoints -----------------------------------------------------------------------
def _save_checkpoint(est, path, meta_user):
    arrays, meta = io._estimator_state(est)
    opt = est._optimizer.state_dict()
    for name, slots in opt.pop("slots").items():
        arrays.update({f"opt/{name}/{s}": a for s, a in slots.items()})
    kind, keys, pos, has_gauss, cached = est._random_state.get_state()
    arrays["rng_keys"] = keys
    arrays["sample_order"] = est._fn_sample_idx
    meta.update(
        format=io.FORMAT,
        producer="fastnet",
        fastnet_version=io.__version__,
        user=meta_user,
        checkpoint={
            "optimizer": opt,
            "rng": [kind, int(pos), int(has_gauss), float(cached)],
            "no_improvement_count": est._no_improvement_count,
            "n_iter": est.n_iter_,
        },
    )
    save_npz(path, arrays, meta)


def _resume_from(path):
    """(estimator, restore callback, command metadata) from a checkpoint."""
    est = io.load(path)
    arrays, meta = load_npz(path, "checkpoint")
    state = meta.get("checkpoint")
    if not isinstance(state, dict):
        raise CliError(f"{path} is a model file, not a training checkpoint")
    slots = {}
    for key, a in arrays.items():
        if key.startswith("opt/"):
            name, slot = key[4:].rsplit("/", 1)
            slots.setdefault(name, {})[slot] = a

    def restore(est_, sample_idx):
        est_._optimizer.load_state_dict({**state["optimizer"], "slots": slots})
        kind, pos, has_gauss, cached = state["rng"]
        est_._random_state.set_state((kind, arrays["rng_keys"], pos, has_gauss, cached))
        est_._no_improvement_count = state["no_improvement_count"]
        est_.n_iter_ = state["n_iter"]
        order = arrays["sample_order"]
        if order.shape != sample_idx.shape:
            raise CliError("the checkpoint was made on other data")
        return order

    return est, restore, meta.get("user", {})


# -- commands --------------------------------------------------------------------------
def _train(args):
    X, y, features, target = _load_data(args.data, args.target)
    if y is None:
        raise CliError("training needs a target column")
    task = args.task or _infer_task(y)
    y = _targets(y, task, args.data)
    if task == "classify" and len(np.unique(y)) < 2:
        # (the estimator fits a constant model, as scikit-learn's does; here it is
        # almost surely the wrong target column)
        raise CliError(
            f"{args.data or 'data'}: the target has one class only ({y[0]}); "
            "classifying needs at least 2"
        )
    if len(y) < 4:
        raise CliError(f"{args.data}: {len(y)} rows are too few to train and evaluate")
    stratify = (
        y
        if task == "classify" and np.min(np.unique(y, return_counts=True)[1]) >= 2
        else None
    )
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.25, random_state=args.seed, stratify=stratify
    )
    user = {"features": features, "target": target, "task": task}
    if args.resume:
        if not args.checkpoint or not os.path.exists(args.checkpoint):
            raise CliError("--resume needs --checkpoint PATH of an earlier run")
        est, restore, user = _resume_from(args.checkpoint)
        est.set_params(warm_start=True)
        est._fn_resume = restore
    else:
        cls = MLPClassifier if task == "classify" else MLPRegressor
        est = cls(
            hidden_layer_sizes=args.hidden,
            activation=args.activation,
            solver=args.solver,
            max_iter=args.epochs,
            batch_size=args.batch_size,
            learning_rate_init=args.lr,
            random_state=args.seed,
        )
    from tqdm.auto import tqdm

    history = {"loss": [], "held_out": []}
    bar = tqdm(total=est.max_iter, desc="training", unit="epoch", file=sys.stderr)
    bar.update(getattr(est, "n_iter_", 0) if args.resume else 0)

    def on_epoch(e):
        history["loss"].append(e.loss_)
        if args.plot:
            history["held_out"].append(e.score(Xte, yte))
        bar.set_postfix(loss=f"{e.loss_:.4g}", refresh=False)
        bar.update(1)
        if args.checkpoint:
            _save_checkpoint(e, args.checkpoint, user)

    est._fn_epoch_hook = on_epoch
    began = time.perf_counter()
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            est.fit(Xtr, ytr)
        except ValueError as exc:
            if not str(exc).startswith(NON_FINITE_WEIGHTS):
                raise
            bar.close()
            raise CliError(
                "training diverged (the weights became NaN or infinite): lower --lr"
            ) from None
    seconds = time.perf_counter() - began
    bar.close()
    est._fn_epoch_hook = None
    est.set_params(warm_start=False)
    score = est.score(Xte, yte)
    metric = "accuracy" if task == "classify" else "R^2"
    print(f"held-out {metric} {score:.4f} ({len(yte)} rows, 25% held out)")
    print(f"trained in {seconds:.2f} s ({est.n_iter_} epochs)")
    io.save(est, args.out, metadata=user)
    print(f"saved model to {args.out}")
    if args.plot:
        _plot(history, est, metric, args.plot)
        print(f"saved plot to {args.plot}")
    return 0


def _plot(history, est, metric, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError("--plot needs matplotlib: pip install 'fastnet[plot]'") from None
    fig, ax = plt.subplots(figsize=(6, 4))
    losses = getattr(est, "loss_curve_", None) or history["loss"]
    ax.plot(range(1, len(losses) + 1), losses, label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if history["held_out"]:
        ax2 = ax.twinx()
        ax2.plot(
            range(1, len(history["held_out"]) + 1),
            history["held_out"],
            color="C1",
            label=f"held-out {metric}",
        )
        ax2.set_ylabel(f"held-out {metric}")
        fig.legend(loc="upper center")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _predict(args):
    if not os.path.exists(args.model):
        raise CliError(f"no such file: {args.model}")
    try:
        model = io.load(args.model)
        user = io.read_metadata(args.model)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not isinstance(model, (MLPClassifier, MLPRegressor)):
        raise CliError(f"{args.model} holds a {type(model).__name__}, not an estimator")
    features = user.get("features")
    if args.data.endswith(".npz"):
        X, _, _, _ = _load_data(args.data, None, need_y=False)
    else:
        target = user.get("target")
        if not (target and target in _csv_header(args.data)):
            target = False  # no target column: every column is a feature
        X, _, names, _ = _load_data(args.data, target, need_y=False)
        if features:
            missing = [f for f in features if f not in names]
            if missing:
                raise CliError(
                    f"{args.data} lacks the column(s) {', '.join(missing)} the model "
                    "was trained on"
                )
            X = X[:, [names.index(f) for f in features]]
    if X.shape[1] != model.n_features_in_:
        raise CliError(
            f"the model expects {model.n_features_in_} features, {args.data} has "
            f"{X.shape[1]}"
        )
    out = sys.stdout
    if args.proba:
        if not hasattr(model, "predict_proba"):
            raise CliError("--proba needs a classifier model")
        proba = model.predict_proba(X)
        out.write(",".join(str(c) for c in model.classes_) + "\n")
        for row in proba:
            out.write(",".join(f"{p:.6g}" for p in row) + "\n")
    else:
        for value in model.predict(X):
            out.write(
                f"{value}\n" if not isinstance(value, float) else f"{value:.6g}\n"
            )
    return 0


def _bench(args):
    from . import _bench

    return _bench.main(quick=args.quick)


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


def build_parser():
    p = argparse.ArgumentParser(prog="fastnet", description="Fast MLPs on the CPU.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model (default: the digits data)")
    t.add_argument("--data", help="CSV with a header row, or .npz with X and y")
    t.add_argument("--target", help="target column of the CSV (default: the last)")
    t.add_argument(
        "--task", choices=["classify", "regress"], help="inferred when absent"
    )
    t.add_argument("--hidden", type=_hidden, default=(128, 64), help="e.g. 128,64")
    t.add_argument("--activation", choices=sorted(HIDDEN_ACTIVATIONS), default="relu")
    t.add_argument("--solver", choices=["adam", "sgd", "lbfgs"], default="adam")
    t.add_argument("--epochs", type=_positive(int), default=100)
    t.add_argument("--batch-size", type=_positive(int), default=64)
    t.add_argument("--lr", type=_positive(float), default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="fastnet-model.npz")
    t.add_argument("--plot", metavar="PNG", help="save loss and held-out score curves")
    t.add_argument("--checkpoint", metavar="PATH", help="save a checkpoint every epoch")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    t.set_defaults(func=_train)
    q = sub.add_parser("predict", help="predict with a saved model")
    q.add_argument("model")
    q.add_argument("data", help="CSV with the training columns, or .npz with X")
    q.add_argument("--proba", action="store_true", help="CSV of class probabilities")
    q.set_defaults(func=_predict)
    b = sub.add_parser("bench", help="benchmark fastnet against its peers")
    b.add_argument(
        "--quick", action="store_true", help="5 repetitions of short samples, not 11"
    )
    b.set_defaults(func=_bench)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as exc:
        print(f"fastnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastnet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # one line, never a traceback
        print(f"fastnet: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
