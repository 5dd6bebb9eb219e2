"""fastnet's estimators against scikit-learn's on the data people pass: the parity
sweep's cases and its comparison (``tests/test_parity.py`` asserts it;
``python -m tests.parity`` prints the table of the largest differences, and
``python -m tests.parity --drift`` the L-BFGS drift figures README quotes).

A case is a data set x a scaling (raw, times 1000, standardised) x a solver x an
activation x a dtype. Both estimators fit the same rows with the same settings and
seed; the comparison reports the largest relative difference of ``loss_curve_``
(``loss_`` for L-BFGS), whether ``n_iter_`` agrees, the largest difference of the
predictions, and whether the output dtypes agree.

Both run with one BLAS thread: scikit-learn's own results on two threads differ from
its one-thread results by rounding, and on badly scaled data training amplifies
that rounding, so a comparison across thread counts measures the machine.
"""

import itertools
import sys
import warnings

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import fastnet

ROWS = 240
SCALINGS = ("raw", "x1000", "standardised")
SOLVERS = ("adam", "sgd", "lbfgs")
ACTIVATIONS = ("relu", "tanh", "logistic", "identity")
DTYPES = (np.float64, np.float32)
#: epochs (or L-BFGS iterations) per fit: long enough for ``tol`` to stop some fits,
#: short enough that rounding has not grown past the tolerances on x1000 data
EPOCHS = 12


def _digits():
    X, y = datasets.load_digits(return_X_y=True)
    return X[:ROWS], y[:ROWS], "classifier"


def _breast_cancer():
    X, y = datasets.load_breast_cancer(return_X_y=True)
    return X[:ROWS], y[:ROWS], "classifier"


def _multilabel():
    X, Y = datasets.make_multilabel_classification(
        n_samples=ROWS, n_features=12, n_classes=4, random_state=0
    )
    return X, Y, "classifier"


def _diabetes():
    X, y = datasets.load_diabetes(return_X_y=True, scaled=False)
    return X[:ROWS], y[:ROWS], "regressor"


def _counts():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 50, (ROWS, 6))
    y = rng.poisson(np.exp(X[:, 0] / 25.0)).astype(float)
    return X, y, "poisson"


DATA = {
    "digits": _digits,
    "breast_cancer": _breast_cancer,
    "multilabel": _multilabel,
    "diabetes": _diabetes,
    "counts": _counts,
}


def cases():
    """Every case, as ``(data, scaling, solver, activation, dtype name)``."""
    dtypes = [np.dtype(d).name for d in DTYPES]
    return list(itertools.product(DATA, SCALINGS, SOLVERS, ACTIVATIONS, dtypes))


def case_id(case):
    return "-".join(case)


def _data(name, scaling, dtype):
    X, y, kind = DATA[name]()
    X = np.asarray(X, np.float64)
    if scaling == "x1000":
        X = X * 1000.0
    elif scaling == "standardised":
        X = StandardScaler().fit_transform(X)
    return X.astype(dtype), y, kind


def _estimators(kind, solver, activation, **extra):
    settings = dict(
        hidden_layer_sizes=(16,),
        activation=activation,
        solver=solver,
        max_iter=EPOCHS,
        random_state=0,
        **extra,
    )
    if kind == "classifier":
        return SkClassifier(**settings), fastnet.MLPClassifier(**settings)
    loss = {"loss": "poisson"} if kind == "poisson" else {}
    return SkRegressor(**loss, **settings), fastnet.MLPRegressor(**loss, **settings)


def _fit(est, X, y):
    """``est`` fitted (or the exception's type name), with one BLAS thread."""
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on x1000 data
        try:
            return est.fit(X, y)
        except (ValueError, FloatingPointError) as exc:
            return type(exc).__name__


def _curve(est, solver):
    return np.array([est.loss_] if solver == "lbfgs" else est.loss_curve_)


def _relative(a, b):
    """The largest relative difference of two arrays (0 where both are 0; inf
    where the shapes differ or exactly one is not finite)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return np.inf
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    scale = np.maximum(np.abs(a), np.abs(b))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(same, 0.0, np.abs(a - b) / scale)
    return float(np.nanmax(rel, initial=0.0)) if rel.size else 0.0


def _scaled(a, b):
    """The largest difference of two arrays relative to the larger one's largest
    magnitude (probabilities of 1e-30 against 0 are no difference)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    return float(np.abs(a - b).max(initial=0.0) / scale) if scale else 0.0


def _outputs(est, X, kind):
    with threadpool_limits(1):
        if kind == "classifier":
            return est.predict_proba(X)
        return est.predict(X)


def compare(case, **extra):
    """The differences of one case: a dict with ``loss_curve`` (largest relative
    difference), ``n_iter`` (scikit-learn's, fastnet's), ``outputs`` (largest
    difference of ``predict_proba`` / ``predict`` on the training rows and on the
    rows times 10, relative to the largest output), ``dtype`` (the output dtypes,
    for input of the model's dtype, float64 and float64 times 10), ``types``
    (whether ``loss_`` and ``loss_curve_`` are NumPy float64 in both), ``error``
    (the exceptions, where either failed), and
    for float32 ``float32_spread``: the larger of each project's float32 loss curve
    against its own float64 one (the scale of float32's rounding on the case;
    scikit-learn's float32 fits keep the last layer's gradients in float64, its
    targets' dtype, fastnet's are float32 throughout)."""
    name, scaling, solver, activation, dtype = case
    X, y, kind = _data(name, scaling, dtype)
    sk, fn = _estimators(kind, solver, activation, **extra)
    sk, fn = _fit(sk, X, y), _fit(fn, X, y)
    if isinstance(sk, str) or isinstance(fn, str):
        return {
            "error": (
                sk if isinstance(sk, str) else "",
                fn if isinstance(fn, str) else "",
            )
        }
    out = {
        "loss_curve": _relative(_curve(sk, solver), _curve(fn, solver)),
        "n_iter": (sk.n_iter_, fn.n_iter_),
        "outputs": 0.0,
        "dtype": [],
        "types": all(
            type(e.loss_) is np.float64
            and all(type(v) is np.float64 for v in getattr(e, "loss_curve_", []))
            for e in (sk, fn)
        ),
    }
    if np.dtype(dtype) == np.float32:
        # how far float32 is from float64 in each project's own fits
        X64, _, _ = _data(name, scaling, np.float64)
        spread = 0.0
        fresh = _estimators(kind, solver, activation, **extra)
        for est, est32 in zip(fresh, (sk, fn), strict=True):
            est64 = _fit(est, X64, y)
            if isinstance(est64, str):
                spread = np.inf
                break
            spread = max(
                spread, _relative(_curve(est32, solver), _curve(est64, solver))
            )
        out["float32_spread"] = spread
    for rows in (X, X.astype(np.float64), (X * 10).astype(np.float64)):
        a, b = _outputs(sk, rows, kind), _outputs(fn, rows, kind)
        out["outputs"] = max(out["outputs"], _scaled(a, b))
        out["dtype"].append((a.dtype.name, b.dtype.name))
    return out


def lbfgs_drift(iterations=(10, 50, 100, 200)):
    """README's L-BFGS figures: diabetes, standardised, 64 hidden units, float64:
    the relative difference of the weights (all layers' coefficients as one vector)
    after each number of iterations, fastnet against scikit-learn, and scikit-learn
    on one BLAS thread against two."""
    X, y = datasets.load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rows = []
    for n in iterations:
        fits = []
        for est, threads in (
            (SkRegressor, 1),
            (fastnet.MLPRegressor, 1),
            (SkRegressor, 2),
        ):
            model = est(hidden_layer_sizes=(64,), solver="lbfgs", max_iter=n,
                        random_state=0)  # fmt: skip
            with warnings.catch_warnings(), threadpool_limits(threads):
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, y)
            fits.append(np.concatenate([c.ravel() for c in model.coefs_]))
        ref = np.linalg.norm(fits[0])
        rows.append(
            (
                n,
                np.linalg.norm(fits[1] - fits[0]) / ref,
                np.linalg.norm(fits[2] - fits[0]) / ref,
            )
        )
    return rows


def _table():
    """The sweep's largest differences per data set x scaling x dtype (over the
    solvers and activations), as a Markdown table."""
    groups = {}
    for case in cases():
        result = compare(case)
        key = (case[0], case[1], case[4])
        g = groups.setdefault(key, {"n": 0, "curve": 0.0, "out": 0.0, "iters": 0,
                                    "errors": 0})  # fmt: skip
        g["n"] += 1
        if "error" in result:
            g["errors"] += 1
            continue
        g["curve"] = max(g["curve"], result["loss_curve"])
        g["out"] = max(g["out"], result["outputs"])
        g["iters"] += result["n_iter"][0] != result["n_iter"][1]
    head = ("data", "scaling", "dtype", "cases", "loss_curve_ rel. diff",
            "outputs diff", "n_iter_ differs", "failed alike")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for (data, scaling, dt), g in groups.items():
        cells = (data, scaling, dt, g["n"], f"{g['curve']:.1e}", f"{g['out']:.1e}",
                 g["iters"], g["errors"])  # fmt: skip
        print("| " + " | ".join(map(str, cells)) + " |")


if __name__ == "__main__":
    if "--drift" in sys.argv:
        head = ("L-BFGS iterations", "fastnet vs scikit-learn",
                "scikit-learn, 1 vs 2 threads")  # fmt: skip
        print("| " + " | ".join(head) + " |")
        print("| --- | --- | --- |")
        for n, fn_rel, sk_rel in lbfgs_drift():
            print(f"| {n} | {fn_rel:.1e} | {sk_rel:.1e} |")
    else:
        _table()
