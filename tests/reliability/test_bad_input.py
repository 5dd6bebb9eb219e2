"""A corpus of bad input across the estimators, modules, Trainer, einsum and the CLI:
each case names the exception type and words its message must contain."""

import numpy as np
import pytest
import sklearn.neural_network
from sklearn.datasets import load_digits

import fastnet as fn
from fastnet.tabular import cli

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, Y = load_digits(return_X_y=True)
X = X[:300] / 16
Y = Y[:300]


def clf(**kw):
    return fn.MLPClassifier(max_iter=3, random_state=0, **kw)


def fitted():
    return clf().fit(X, Y)


def nan_x():
    bad = X.copy()
    bad[3, 4] = np.nan
    return bad


def inf_x():
    bad = X.copy()
    bad[0, 0] = np.inf
    return bad


CASES = {
    # estimator data
    "nan in X": (lambda: clf().fit(nan_x(), Y), ValueError, "NaN"),
    "inf in X": (lambda: clf().fit(inf_x(), Y), ValueError, "infinity"),
    "nan in y (regressor)": (
        lambda: fn.MLPRegressor().fit(X, np.where(Y == 3, np.nan, Y)),
        ValueError,
        "NaN",
    ),
    "strings in X": (
        lambda: clf().fit(X.astype(str).astype(object) + "x", Y),
        ValueError,
        "could not convert",
    ),
    "complex X": (lambda: clf().fit(X + 1j, Y), ValueError, "Complex"),
    "1-D X": (lambda: clf().fit(X[:, 0], Y), ValueError, "2D array"),
    "3-D X": (lambda: clf().fit(X[:, :, None], Y), ValueError, "dim 3"),
    "zero rows": (lambda: clf().fit(X[:0], Y[:0]), ValueError, "0 sample"),
    "zero features": (lambda: clf().fit(X[:, :0], Y), ValueError, "0 feature"),
    "mismatched lengths": (
        lambda: clf().fit(X, Y[:10]),
        ValueError,
        "inconsistent numbers",
    ),
    "unseen label in partial_fit": (
        lambda: clf().partial_fit(X, Y, classes=np.arange(5)),
        ValueError,
        "classes not in",
    ),
    "first partial_fit without classes": (
        lambda: clf().partial_fit(X, Y),
        ValueError,
        "classes must be passed",
    ),
    "wrong width at predict": (
        lambda: fitted().predict(X[:, :10]),
        ValueError,
        "64 features",
    ),
    "predict before fit": (lambda: clf().predict(X), Exception, "not fitted"),
    "negative poisson target": (
        lambda: fn.MLPRegressor(loss="poisson").fit(X, Y - 5.0),
        ValueError,
        "non-negative",
    ),
    "bad sample_weight length": (
        lambda: clf().fit(X, Y, sample_weight=np.ones(3)),
        ValueError,
        "sample_weight",
    ),
    # estimator hyperparameters
    "zero hidden size": (
        lambda: clf(hidden_layer_sizes=(0,)).fit(X, Y),
        ValueError,
        "hidden_layer_sizes",
    ),
    "negative hidden size": (
        lambda: clf(hidden_layer_sizes=(-4,)).fit(X, Y),
        ValueError,
        "hidden_layer_sizes",
    ),
    "zero learning rate": (
        lambda: clf(learning_rate_init=0.0).fit(X, Y),
        ValueError,
        "learning_rate_init",
    ),
    "negative alpha": (lambda: clf(alpha=-1.0).fit(X, Y), ValueError, "alpha"),
    "zero batch size": (lambda: clf(batch_size=0).fit(X, Y), ValueError, "batch_size"),
    "unknown activation": (
        lambda: clf(activation="swish").fit(X, Y),
        ValueError,
        "activation",
    ),
    "unknown solver": (lambda: clf(solver="rmsprop").fit(X, Y), ValueError, "solver"),
    "unknown loss": (
        lambda: fn.MLPRegressor(loss="huber").fit(X, Y),
        ValueError,
        "loss",
    ),
    "zero max_iter": (
        lambda: fn.MLPClassifier(max_iter=0).fit(X, Y),
        ValueError,
        "max_iter",
    ),
    "dropout of 1": (lambda: clf(dropout=1.0).fit(X, Y), ValueError, "dropout"),
    "zero n_threads": (lambda: clf(n_threads=0).fit(X, Y), ValueError, "n_threads"),
    "momentum above 1": (
        lambda: clf(solver="sgd", momentum=1.5).fit(X, Y),
        ValueError,
        "momentum",
    ),
    # modules
    "Linear wrong width": (
        lambda: fn.Linear(3, 2).forward(np.ones((4, 5))),
        ValueError,
        "expected (n, 3)",
    ),
    "Linear object input": (
        lambda: fn.Linear(3, 2).forward(np.array([[None, 1, 2]], dtype=object)),
        TypeError,
        "numbers",
    ),
    "Linear zero size": (lambda: fn.Linear(0, 2), ValueError, "n_in"),
    "GELU unknown approximation": (lambda: fn.GELU("fast"), ValueError, "approximate"),
    "Softmax scalar": (
        lambda: fn.Softmax().forward(np.float32(1)),
        ValueError,
        "scalar",
    ),
    "label out of range": (
        lambda: fn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), [0, 3]),
        ValueError,
        "[0, 3)",
    ),
    "BCE target above 1": (
        lambda: fn.SigmoidBinaryCrossEntropy().forward(np.zeros(2), [0, 2]),
        ValueError,
        "<= 1",
    ),
    "Dropout p of 1": (lambda: fn.Dropout(1.0), ValueError, "[0, 1)"),
    "backward before forward": (
        lambda: fn.Tanh().backward(np.ones(2)),
        RuntimeError,
        "before forward",
    ),
    # Trainer
    "Trainer zero batch": (
        lambda: fn.Trainer(fn.ReLU(), fn.MSELoss(), fn.optim.SGD(), batch_size=0),
        ValueError,
        "batch_size",
    ),
    "Trainer not a loss": (
        lambda: fn.Trainer(fn.ReLU(), "mse", fn.optim.SGD()),
        TypeError,
        "loss",
    ),
    "Trainer NaN data": (
        lambda: fn.Trainer(
            fn.Linear(64, 10), fn.SoftmaxCrossEntropy(), fn.optim.SGD()
        ).fit(nan_x(), Y),
        ValueError,
        "NaN",
    ),
    "optimizer negative lr": (lambda: fn.optim.Adam(lr=-1.0), ValueError, "lr"),
    # einsum
    "einsum unknown output label": (
        lambda: fn.einsum("ij->k", np.ones((2, 2))),
        ValueError,
        "'k'",
    ),
    "einsum size mismatch": (
        lambda: fn.einsum("ij,jk", np.ones((2, 3)), np.ones((4, 2))),
        ValueError,
        "size 3",
    ),
    "einsum too many operands": (
        lambda: fn.einsum("ij", np.ones((2, 2)), np.ones((2, 2))),
        ValueError,
        "operand",
    ),
    "einsum complex": (
        lambda: fn.einsum("i->", np.ones(2, complex)),
        TypeError,
        "complex",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_a_clear_error(name):
    make, exc, words = CASES[name]
    with pytest.raises(exc) as info:
        make()
    assert words.lower() in str(info.value).lower(), str(info.value)


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    "transform",
    [
        lambda a: a[:, ::-1].copy()[:, ::-1],  # non-contiguous view of a copy
        lambda a: np.asfortranarray(a),
        lambda a: a.astype(">f8"),  # big-endian
        lambda a: a.astype(np.float32),  # mixed float32 / float64 (model is f64)
        lambda a: np.require(a, requirements="C").copy(),
    ],
    ids=["noncontiguous", "fortran", "big-endian", "float32", "copy"],
)
def test_unusual_valid_arrays_work(transform):
    est = fitted()
    Xt = transform(X)
    Xt.flags.writeable = False  # read-only too
    np.testing.assert_allclose(est.predict_proba(Xt), est.predict_proba(X), rtol=1e-5)
    clf().fit(Xt, Y)  # and train


def test_huge_finite_values_give_finite_output_or_a_clear_error():
    est = fitted()
    assert np.isfinite(est.predict_proba(np.full((2, 64), 1e30))).all()
    reg = fn.MLPRegressor(max_iter=5, learning_rate_init=10.0, random_state=0)
    try:
        reg.fit(X * 1e30, Y * 1e30)
    except ValueError as exc:
        assert "non-finite" in str(exc) or "infinity" in str(exc)
    else:
        assert np.isfinite(reg.predict(X)).all()


@pytest.mark.parametrize("other", [1, 2.5, None])
def test_mixed_type_labels(other):
    # a TypeError, as scikit-learn's (code catching it must catch ours), that
    # names the types
    labels = np.array(["a", other, "b"] * 100, dtype=object)
    with pytest.raises(TypeError, match="mixes labels of types"):
        clf().fit(X, labels)
    with pytest.raises(TypeError):
        sklearn.neural_network.MLPClassifier(max_iter=1).fit(X, labels)


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    # a column of numbers with one cell that is not (a column of text would be a
    # category)
    rows = "".join(f"{i % 2},{i}\n" for i in range(30))
    (tmp_path / "bad.csv").write_text("a,b\n" + rows + "1,oops\n")
    assert (
        cli.main(["train", "--data", str(tmp_path / "bad.csv"), "--target", "a"]) == 2
    )
    err = capsys.readouterr().err
    assert "line 32, column 'b': 'oops' is not a number" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
