"""``fastnet info MODEL``: what a model file holds, one aspect a line."""

from ..table import few
from .predict import load_model


def run(args):
    """``fastnet info``: the model's description, then its features (the first
    30 unless ``--all``)."""
    from ... import model_files as io

    model, info = load_model(args.model)
    version = io.read_document(args.model).get("fastnet_version", "?")
    lines = _describe(model, info, version)
    prep = model.preparation
    described = prep.describe()
    lines.append(
        (
            "features",
            f"{len(prep.features)} -> {model.estimator.n_features_in_} prepared "
            "columns",
        )
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
