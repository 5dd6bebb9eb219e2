"""``fastnet info MODEL``: what a model file holds, one aspect a line."""

import os

from ..errors import CliError
from ..table import few
from .export import info_line
from .predict import load_model


def run(args):
    """``fastnet info``: the model's description, then its features (the first
    30 unless ``--all``); of a ``Sequential`` or a ``Graph``, its modules."""
    from ... import model_files as io

    if not os.path.exists(args.model):
        raise CliError(f"no such file: {args.model}")
    document = io.read_document(args.model)
    version = document.get("fastnet_version", "?")
    if document.get("kind") in ("Sequential", "Graph"):
        model = io.load(args.model)
        lines = _describe_modules(model, version)
        lines.append(("export", info_line(model, args.model)))
        _print(lines)
        return 0
    model, info = load_model(args.model)
    lines = _describe(model, info, version)
    lines.append(("export", info_line(model, args.model)))
    prep = model.preparation
    described = prep.describe()
    lines.append(
        (
            "features",
            f"{len(prep.features)} -> {model.estimator.n_features_in_} prepared "
            "columns",
        )
    )
    width = _print(lines)
    show = described if args.all else described[:30]
    for line in show:
        print(f"{'':<{width}}  {line}")
    if len(show) < len(described):
        print(f"{'':<{width}}  ... {len(described) - len(show)} more (--all)")
    return 0


def _print(lines):
    """Print the (aspect, text) pairs aligned; the aspects' width."""
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    return width


def _describe_modules(model, version):
    """(aspect, text) pairs of a ``Sequential`` or a ``Graph``."""
    kind = type(model).__name__
    lines = [("model", f"{kind}, fastnet {version}")]
    if kind == "Sequential":
        names = [type(m).__name__ for m in model.modules]
        shown = " -> ".join(names) if len(names) <= 12 else few(names, 12)
        lines.append(("modules", shown))
    else:
        names = {
            k: [n.name for n in model.nodes if n.kind == k] for k in ("input", "param")
        }
        ops = [type(n.module).__name__ for n in model.nodes if n.kind == "op"]
        lines.append(
            (
                "nodes",
                f"inputs {few(names['input']) or 'none'}; operations "
                f"{few(ops) or 'none'}; parameters {few(names['param']) or 'none'}",
            )
        )
    return lines


def _describe(model, info, version):
    """(aspect, text) pairs: the model, its layers, classes, target, task, data and
    score, and how it was trained."""
    est = model.estimator
    sizes = [est.coefs_[0].shape[0], *(W.shape[1] for W in est.coefs_)]
    weights = sum(
        W.size + b.size for W, b in zip(est.coefs_, est.intercepts_, strict=True)
    )
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
    lines += _run_lines(info)
    p = est.get_params()
    lines.append(
        (
            "training",
            f"{est.solver}, learning rate {p['learning_rate_init']:g}, batch "
            f"{p['batch_size']}, alpha {p['alpha']:g}; "
            + info.get("stopped", f"{est.n_iter_} epochs"),
        )
    )
    return lines


def _run_lines(info):
    """The task, data and held-out score that ``fastnet train`` noted."""
    lines = []
    if "why" in info:
        task = "classification" if info["task"] == "classify" else "regression"
        lines.append(("task", f"{task} ({info['why']})"))
    if "train_rows" in info:
        lines.append(("data", f"{info['data']}: {info['train_rows']:,} training rows"))
        score = f"{info['metric']} {info['score']:.4f}"
        if "mae" in info:
            score += f", MAE {info['mae']:.6g}"
        lines.append(("held-out", f"{score} on {info['held_out_rows']:,} rows"))
    return lines
