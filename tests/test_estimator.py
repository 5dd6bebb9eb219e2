"""The scikit-learn drop-ins: scikit-learn's own checks, parity, API, errors."""

import copy
import pickle
import warnings

import numpy as np
import pytest
from sklearn import datasets
from sklearn import neural_network as sk
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import shuffle
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastnet as fn
from fastnet.sklearn import inputs
from fastnet.sklearn.estimators import HIDDEN_ACTIVATIONS, _labels
from fastnet.sklearn.stochastic import shuffled as _shuffled

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks(
    [fn.MLPClassifier(max_iter=100), fn.MLPRegressor(max_iter=100)]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _digits():
    X, y = datasets.load_digits(return_X_y=True)
    return X / 16, y


CLASSIFIER_CONFIGS = [
    {},
    {"solver": "sgd"},
    {"solver": "sgd", "learning_rate": "invscaling"},
    {"solver": "sgd", "learning_rate": "adaptive", "n_iter_no_change": 1},
    {"solver": "sgd", "nesterovs_momentum": False, "momentum": 0.5},
    {"early_stopping": True},
    {"activation": "tanh", "batch_size": 64, "alpha": 0.01},
    {"activation": "logistic"},
    {"activation": "identity", "shuffle": False},
    {"solver": "lbfgs", "max_iter": 20},
]


@pytest.mark.parametrize("config", CLASSIFIER_CONFIGS, ids=str)
def test_classifier_reproduces_scikit_learn(config):
    X, y = _digits()
    kw = {"random_state": 0, "max_iter": 6, "hidden_layer_sizes": (20,)} | config
    ours = fn.MLPClassifier(**kw).fit(X, y)
    theirs = sk.MLPClassifier(**kw).fit(X, y)
    tol = 1e-9 if config.get("solver") == "lbfgs" else 1e-12
    for a, b in zip(
        ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_, strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    np.testing.assert_allclose(
        ours.loss_curve_ if hasattr(ours, "loss_curve_") else ours.loss_,
        theirs.loss_curve_ if hasattr(theirs, "loss_curve_") else theirs.loss_,
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-7, atol=1e-12
    )


@pytest.mark.parametrize(
    "config,target",
    [
        ({}, "single"),
        ({"solver": "sgd", "learning_rate_init": 1e-4}, "single"),
        ({}, "multi"),
        ({"loss": "poisson"}, "counts"),
    ],
    ids=str,
)
def test_regressor_reproduces_scikit_learn(config, target):
    X, y = datasets.load_diabetes(return_X_y=True)
    y = {"single": y, "multi": np.c_[y, 0.5 * y], "counts": y / 100}[target]
    kw = {"random_state": 0, "max_iter": 6, "hidden_layer_sizes": (20,)} | config
    ours = fn.MLPRegressor(**kw).fit(X, y)
    theirs = sk.MLPRegressor(**kw).fit(X, y)
    for a, b in zip(ours.coefs_, theirs.coefs_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9)


def test_multilabel_and_binary_reproduce_scikit_learn():
    X, y = _digits()
    for target in (np.c_[y % 2, y > 4], y > 4):
        ours = fn.MLPClassifier(random_state=0, max_iter=5).fit(X, target)
        theirs = sk.MLPClassifier(random_state=0, max_iter=5).fit(X, target)
        assert ours.out_activation_ == theirs.out_activation_ == "logistic"
        np.testing.assert_allclose(
            ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9
        )
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


PARITY_DATA = {
    "digits": lambda: _digits(),
    "breast_cancer": lambda: datasets.load_breast_cancer(return_X_y=True),
    "wine": lambda: datasets.load_wine(return_X_y=True),
    "iris": lambda: datasets.load_iris(return_X_y=True),
    "moons": lambda: datasets.make_moons(400, noise=0.2, random_state=0),
    "diabetes": lambda: datasets.load_diabetes(return_X_y=True),
    "friedman1": lambda: datasets.make_friedman1(400, random_state=0),
}


@pytest.mark.parametrize("name", list(PARITY_DATA))
def test_held_out_score_within_002_of_scikit_learn(name):
    X, y = PARITY_DATA[name]()
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    regress = name in ("diabetes", "friedman1")
    kw = {"random_state": 0, "max_iter": 300, "hidden_layer_sizes": (50,)}
    ours = (fn.MLPRegressor if regress else fn.MLPClassifier)(**kw).fit(Xtr, ytr)
    theirs = (sk.MLPRegressor if regress else sk.MLPClassifier)(**kw).fit(Xtr, ytr)
    assert abs(ours.score(Xte, yte) - theirs.score(Xte, yte)) <= 0.02


@pytest.mark.parametrize("activation", sorted(HIDDEN_ACTIVATIONS))
def test_every_activation_learns(activation):
    X, y = _digits()
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
    clf = fn.MLPClassifier(activation=activation, random_state=0, max_iter=60).fit(
        Xtr, ytr
    )
    assert clf.score(Xte, yte) > 0.85


def test_float32_stays_float32():
    X, y = _digits()
    clf = fn.MLPClassifier(random_state=0, max_iter=5).fit(X.astype(np.float32), y)
    assert clf.coefs_[0].dtype == np.float32
    assert clf.predict_proba(X[:3].astype(np.float32)).dtype == np.float32


def test_single_row_fast_path_equals_full_validation():
    X, y = _digits()
    clf = fn.MLPClassifier(random_state=0, max_iter=5).fit(X, y)
    row = np.ascontiguousarray(X[:1])
    np.testing.assert_array_equal(
        clf.predict_proba(row), clf.predict_proba(X[:1].tolist())
    )
    np.testing.assert_array_equal(clf.predict(row), clf.predict(X[:1].tolist()))
    bad = row.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.predict_proba(bad)
    with pytest.raises(ValueError, match="64 features"):
        clf.predict(np.ones((1, 5)))


def test_partial_fit_and_its_errors():
    X, y = _digits()
    clf = fn.MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[y < 5], y[y < 5], classes=np.arange(10))
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 1 and clf.t_ == (y < 5).sum() + len(y)
    with pytest.raises(ValueError, match="classes not in"):
        fn.MLPClassifier().partial_fit(X, y, classes=np.arange(5))
    theirs = sk.MLPClassifier(random_state=0)
    theirs.partial_fit(X[y < 5], y[y < 5], classes=np.arange(10))
    theirs.partial_fit(X, y)
    np.testing.assert_allclose(clf.coefs_[0], theirs.coefs_[0], rtol=1e-12, atol=1e-14)


def test_defects_of_scikit_learn_not_copied():
    X, y = datasets.load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="non-negative targets"):
        fn.MLPRegressor(loss="poisson").fit(X, y - 200)
    # L-BFGS on a multi-output squared error: the gradient is the loss's own.
    Y = np.c_[y, -y] / 100
    reg = fn.MLPRegressor(
        solver="lbfgs", random_state=0, max_iter=3, hidden_layer_sizes=(5,)
    )
    reg.fit(X, Y)
    assert reg.loss_ > 0


@pytest.mark.parametrize("activation", sorted(HIDDEN_ACTIVATIONS))
def test_lbfgs_gradient_is_the_gradient_of_the_loss(activation):
    from scipy.optimize import check_grad

    X, y = datasets.load_diabetes(return_X_y=True)
    X, Y = X[:50], np.c_[y, -y][:50] / 100
    reg = fn.MLPRegressor(
        solver="lbfgs",
        random_state=0,
        max_iter=1,
        hidden_layer_sizes=(4,),
        activation=activation,
    )
    reg.fit(X, Y)
    p0 = np.concatenate([a.ravel() for a in reg.coefs_ + reg.intercepts_])

    def loss(p):
        return reg._loss_grad_lbfgs(p, X, Y, None)[0]

    def grad(p):
        return reg._loss_grad_lbfgs(p, X, Y, None)[1]

    assert check_grad(loss, grad, p0) < 1e-5 * max(1.0, np.linalg.norm(grad(p0)))


def _sk_loss_grad_lbfgs(est, theta, X, Y, sample_weight):
    """scikit-learn's own ``_loss_grad_lbfgs`` with its work arrays, as its
    ``test_gradient`` calls it."""
    units = [X.shape[1], *[W.shape[1] for W in est.coefs_]]
    acts = [X] + [np.empty((X.shape[0], u)) for u in units[1:]]
    deltas = [np.empty((X.shape[0], u)) for u in units[1:]]
    coef_grads = [np.empty(W.shape) for W in est.coefs_]
    intercept_grads = [np.empty(b.shape) for b in est.intercepts_]
    return est._loss_grad_lbfgs(
        theta.copy(), X, Y, sample_weight, acts, deltas, coef_grads, intercept_grads
    )


@pytest.mark.parametrize(
    "cls,target,kw",
    [
        (fn.MLPClassifier, "binary", {"activation": "logistic"}),
        (fn.MLPClassifier, "multiclass", {"hidden_layer_sizes": (6, 5)}),
        (fn.MLPClassifier, "multilabel", {"activation": "tanh"}),
        (fn.MLPRegressor, "single", {"activation": "identity"}),
        (fn.MLPRegressor, "counts", {"loss": "poisson"}),
        (fn.MLPRegressor, "multi", {}),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_loss_grad_lbfgs_equals_scikit_learns(cls, target, kw, weighted):
    X, y = _digits()
    X, y = X[:120], y[:120]
    Y = {
        "binary": (y > 4).astype(int)[:, None],
        "multiclass": np.eye(10, dtype=int)[y],
        "multilabel": np.c_[y % 2, y > 4],
        "single": (y / 3.0)[:, None],
        "counts": (y / 3.0)[:, None],
        "multi": np.c_[y / 3.0, -y / 5.0],
    }[target]
    fit_y = Y.argmax(1) if target == "multiclass" else Y.squeeze()
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    kw = {"solver": "lbfgs", "max_iter": 2, "random_state": 0, "alpha": 0.01} | kw
    kw.setdefault("hidden_layer_sizes", (7,))
    ours = cls(**kw).fit(X, fit_y)
    theirs = getattr(sk, cls.__name__)(**kw).fit(X, fit_y)
    assert ours._coef_indptr == theirs._coef_indptr
    assert ours._intercept_indptr == theirs._intercept_indptr
    theta = np.concatenate([a.ravel() for a in ours.coefs_ + ours.intercepts_])
    loss, grad = ours._loss_grad_lbfgs(theta, X, Y, sw)
    sk_loss, sk_grad = _sk_loss_grad_lbfgs(theirs, theta, X, Y, sw)
    # Tolerance: the same float64 formulas evaluated in another order (BLAS
    # blocking, fused sums, a log-sigmoid instead of the log of a clipped sigmoid)
    # differ by rounding only: about 1e-15 relative here (measured), and BLAS
    # builds differ in their blocking, so 1e-10 leaves room for those while any
    # difference in a formula (a factor, a missing term) would show at 1e-3 or more.
    np.testing.assert_allclose(loss, sk_loss, rtol=1e-10)
    if target == "multi":
        # scikit-learn #8349: its data-term gradient is n_outputs times the true
        # one (fastnet's is the true gradient of the loss both return); the L2
        # term, on coefs only, agrees
        n_coef = sum(W.size for W in ours.coefs_)
        sw_sum = sw.sum() if weighted else len(y)
        l2 = np.zeros_like(theta)
        l2[:n_coef] = kw["alpha"] * theta[:n_coef] / sw_sum
        grad = Y.shape[1] * (grad - l2) + l2
    np.testing.assert_allclose(
        grad, sk_grad, rtol=1e-10, atol=1e-12 * abs(sk_grad).max()
    )
    # and the model now holds theta, as scikit-learn's does after the call
    np.testing.assert_array_equal(
        np.concatenate([a.ravel() for a in ours.coefs_ + ours.intercepts_]), theta
    )


def test_regressor_lbfgs_partial_fit_is_scikit_learns():
    # scikit-learn 1.9 offers MLPRegressor.partial_fit with L-BFGS (not the
    # classifier's): each call is a whole L-BFGS run from the current weights
    assert hasattr(fn.MLPRegressor(solver="lbfgs"), "partial_fit")
    assert not hasattr(fn.MLPClassifier(solver="lbfgs"), "partial_fit")
    X, y = datasets.load_diabetes(return_X_y=True)
    kw = {"solver": "lbfgs", "random_state": 0, "max_iter": 5}
    kw["hidden_layer_sizes"] = (8,)
    ours, theirs = fn.MLPRegressor(**kw), sk.MLPRegressor(**kw)
    for _ in range(2):
        ours.partial_fit(X, y / 100)
        theirs.partial_fit(X, y / 100)
        assert ours.n_iter_ == theirs.n_iter_
        np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-9)
        for a, b in zip(
            ours.coefs_ + ours.intercepts_,
            theirs.coefs_ + theirs.intercepts_,
            strict=True,
        ):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    # the second call went on from the first's weights: a lower loss
    once = fn.MLPRegressor(**kw).partial_fit(X, y / 100)
    assert ours.loss_ < once.loss_


@pytest.mark.parametrize(
    "config",
    [
        {"solver": "sgd"},
        {"solver": "sgd", "learning_rate": "invscaling", "power_t": 0.25},
        {"solver": "sgd", "learning_rate": "adaptive", "n_iter_no_change": 1},
        {"solver": "adam"},
    ],
    ids=str,
)
def test_optimizer_learning_rate_is_scikit_learns(config):
    X, y = _digits()
    kw = {"random_state": 0, "max_iter": 8, "hidden_layer_sizes": (10,)} | config
    kw["tol"] = 0.5 if config.get("learning_rate") == "adaptive" else 1e-4
    ours = fn.MLPClassifier(**kw).fit(X, y)
    theirs = sk.MLPClassifier(**kw).fit(X, y)
    assert ours._optimizer.learning_rate == pytest.approx(
        theirs._optimizer.learning_rate, rel=1e-12
    )
    if config.get("learning_rate") == "adaptive":
        assert ours._optimizer.learning_rate < kw.get("learning_rate_init", 0.001)


def test_single_class_fits_and_predicts_it_like_scikit_learn():
    X, _ = _digits()
    X = X[:40]
    for solver in ("adam", "lbfgs"):
        for label in (3, "only"):
            y = np.full(len(X), label, dtype=object if label == "only" else int)
            kw = {"solver": solver, "random_state": 0, "max_iter": 5}
            ours = fn.MLPClassifier(**kw).fit(X, y)
            theirs = sk.MLPClassifier(**kw).fit(X, y)
            assert list(ours.classes_) == list(theirs.classes_) == [label]
            assert ours.out_activation_ == theirs.out_activation_
            np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
            assert (ours.predict(X) == label).all()
            np.testing.assert_allclose(
                ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9
            )


def test_bad_input_messages_match_scikit_learn():
    X, y = _digits()
    for bad_X, bad_y in [
        (np.where(X > 0.9, np.nan, X), y),
        (X[:, :, None], y),
        (X, y[:10]),
    ]:
        with pytest.raises(ValueError) as ours:
            fn.MLPClassifier().fit(bad_X, bad_y)
        with pytest.raises(ValueError) as theirs:
            sk.MLPClassifier().fit(bad_X, bad_y)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="activation"):
        fn.MLPClassifier(activation="swish").fit(X, y)
    with pytest.raises(ValueError, match="dropout"):
        fn.MLPClassifier(dropout=1.0).fit(X, y)
    with pytest.raises(ValueError, match="stochastic solver"):
        fn.MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)


def test_dropout_trains_deterministically():
    X, y = _digits()
    a = fn.MLPClassifier(dropout=0.2, random_state=0, max_iter=20).fit(X, y)
    b = fn.MLPClassifier(dropout=0.2, random_state=0, max_iter=20).fit(X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    plain = fn.MLPClassifier(random_state=0, max_iter=20).fit(X, y)
    assert not np.array_equal(a.coefs_[0], plain.coefs_[0])
    assert a.score(X, y) > 0.9


def test_works_in_pipelines_searches_clones_and_pickles():
    X, y = _digits()
    pipe = make_pipeline(
        StandardScaler(), fn.MLPClassifier(max_iter=30, random_state=0)
    )
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.9
    grid = GridSearchCV(
        fn.MLPClassifier(max_iter=20, random_state=0),
        {"hidden_layer_sizes": [(16,), (32,)], "activation": ["relu", "gelu"]},
        cv=2,
    ).fit(X, y)
    assert grid.best_score_ > 0.7  # 20 epochs on half the data
    clf = grid.best_estimator_
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and not hasattr(twin, "coefs_")
    blob = pickle.dumps(clf)
    assert b"Dispatcher" not in blob and b"numba" not in blob
    back = pickle.loads(blob)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


def test_n_threads_and_warm_start():
    X, y = _digits()
    clf = fn.MLPClassifier(n_threads=1, max_iter=3, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        first = clf.coefs_[0].copy()
        clf.fit(X, y)
    assert not np.array_equal(first, clf.coefs_[0])
    theirs = sk.MLPClassifier(max_iter=3, random_state=0, warm_start=True)
    theirs.fit(X, y)
    theirs.fit(X, y)
    np.testing.assert_allclose(clf.coefs_[0], theirs.coefs_[0], rtol=1e-12, atol=1e-14)


class _EveryBatch(fn.callbacks.Callback):
    """A batch hook: the fit takes the module path, batch by batch."""

    def on_batch_end(self, owner, state):
        assert state.batch_rows > 0


@pytest.mark.parametrize(
    "cls,config",
    [
        (fn.MLPClassifier, {}),
        (fn.MLPClassifier, {"activation": "gelu", "hidden_layer_sizes": (12, 8)}),
        (fn.MLPClassifier, {"activation": "leaky_relu", "solver": "sgd"}),
        (fn.MLPClassifier, {"activation": "tanh", "solver": "sgd", "momentum": 0.0}),
        (fn.MLPClassifier, {"target": "multilabel"}),
        (fn.MLPRegressor, {"loss": "poisson"}),
        (fn.MLPRegressor, {"activation": "logistic", "target": "multi"}),
    ],
    ids=str,
)
def test_compiled_epoch_equals_the_module_path_bit_for_bit(cls, config):
    config = dict(config)
    target = config.pop("target", None)
    X, y = _digits()
    X = X.astype(np.float32)
    if target == "multilabel":
        y = np.c_[y % 2, y > 4]
    if cls is fn.MLPRegressor:
        y = y / 3.0 if target is None else np.c_[y, y / 2.0]
    kw = {"random_state": 0, "max_iter": 4, "hidden_layer_sizes": (16,)} | config
    compiled = cls(**kw).fit(X, y)
    assert compiled._fn_fused_state is not None  # it ran the compiled epoch
    modules = cls(**kw, callbacks=[_EveryBatch()]).fit(X, y)  # the module path
    assert getattr(modules, "_fn_fused_state", None) is None
    for a, b in zip(
        compiled.coefs_ + compiled.intercepts_,
        modules.coefs_ + modules.intercepts_,
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert compiled.loss_curve_ == modules.loss_curve_


@pytest.mark.parametrize(
    "cls,target,kw",
    [
        (fn.MLPClassifier, "multiclass", {}),
        (fn.MLPClassifier, "binary", {"activation": "gelu"}),
        (fn.MLPRegressor, "counts", {"loss": "poisson", "activation": "tanh"}),
    ],
)
def test_compiled_forward_equals_the_module_path(cls, target, kw):
    X, y = _digits()
    y = {"multiclass": y, "binary": y > 4, "counts": y / 3.0}[target]
    est = cls(max_iter=3, random_state=0, **kw).fit(X, y)
    rows = np.ascontiguousarray(X[:9])
    net = est._network()
    compiled = est._compiled_forward(rows, net).copy()
    logits = net.logits(rows, train=False)
    modules = {
        "softmax": lambda z: fn.Softmax().forward(z),
        "logistic": lambda z: fn.Sigmoid().forward(z),
        "exp": np.exp,
    }[est.out_activation_](logits)
    np.testing.assert_array_equal(compiled, modules)
    big = np.ascontiguousarray(np.tile(X, (3, 1)))
    # (BLAS blocks a 5,391-row product differently from a 9-row one: last-ulp
    # differences are BLAS's)
    np.testing.assert_allclose(est.predict(big)[:9], est.predict(rows), rtol=1e-13)


@pytest.mark.parametrize("n", [0, 1, 7, 1347])
def test_epoch_shuffles_draw_as_scikit_learn_does(n):
    ours, theirs = np.random.RandomState(3), np.random.RandomState(3)
    a = b = np.arange(n, dtype=np.int64)[::-1].copy()
    for _ in range(4):  # each epoch shuffles the previous order again
        a, b = _shuffled(a, ours), shuffle(b, random_state=theirs)
        np.testing.assert_array_equal(a, b)
    assert ours.randint(1 << 30) == theirs.randint(1 << 30)  # the streams agree


@pytest.mark.parametrize("n_classes", [2, 3, 10])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_partial_fit_quick_checks_return_what_scikit_learns_return(n_classes, dtype):
    X, y = _digits()
    X = np.asfortranarray(X.astype(dtype))  # not C-contiguous either
    y = (y % n_classes).astype(np.int32)
    clf = fn.MLPClassifier((8,), random_state=0)
    clf.partial_fit(X[:50], y[:50], classes=np.arange(n_classes))
    quick = inputs.partial_fit_input(clf, X, y, True, False)
    assert quick is not None
    Xs, ys = sk.MLPClassifier._validate_input(clf, X, y, True, False)
    np.testing.assert_array_equal(quick[0], Xs)
    assert quick[0].dtype == Xs.dtype and quick[0].flags.c_contiguous
    np.testing.assert_array_equal(quick[1], ys)
    assert quick[1].dtype == ys.dtype and quick[1].shape == ys.shape


def test_partial_fit_trains_alike_with_and_without_the_quick_checks(monkeypatch):
    X, y = _digits()
    kw = {"hidden_layer_sizes": (16,), "random_state": 0, "batch_size": 50}
    quick = fn.MLPClassifier(**kw)
    quick.partial_fit(X[:100], y[:100], classes=np.arange(10))
    for _ in range(3):
        quick.partial_fit(X, y)
    monkeypatch.setattr(inputs, "partial_fit_input", lambda *a: None)
    full = fn.MLPClassifier(**kw)
    full.partial_fit(X[:100], y[:100], classes=np.arange(10))
    for _ in range(3):
        full.partial_fit(X, y)
    ours, theirs = quick.coefs_ + quick.intercepts_, full.coefs_ + full.intercepts_
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert quick.loss_curve_ == full.loss_curve_


def test_partial_fit_quick_checks_leave_errors_to_scikit_learn():
    X, y = _digits()
    clf = fn.MLPClassifier((8,), random_state=0)
    clf.partial_fit(X[:50], y[:50] % 3, classes=np.arange(3))
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, y)  # labels 3..9 are new
    bad = X.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.partial_fit(bad, y % 3)
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :10], y % 3)
    with pytest.warns(DataConversionWarning):
        clf.partial_fit(X, (y % 3).reshape(-1, 1))  # a column: scikit-learn warns
    assert inputs.partial_fit_input(clf, X, (y % 3).astype(float), True, False) is None


MIXED = (np.float32, np.float64, np.float32, np.float64)


@pytest.mark.parametrize("dtypes", [(np.float64,) * 4, (np.float32,) * 4, MIXED])
def test_the_last_finite_weights_are_kept_exactly_through_many_epochs(dtypes):
    # the two buffers are used in turn: a divergence after an even or an odd
    # number of finite epochs restores the bits of the last finite one
    from fastnet.training.loop import LastFinite as _LastFinite

    rng = np.random.default_rng(0)
    shapes = [(13, 7), (7, 3), (7,), (3,)]
    weights = [
        rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes, strict=True)
    ]
    kept = _LastFinite(weights)
    history = [[w.copy() for w in weights]]
    for epoch in range(6):
        for w in weights:
            w += rng.standard_normal(w.shape).astype(w.dtype)
        assert kept.keep(weights)
        history.append([w.copy() for w in weights])
        broken = [w.copy() for w in weights]
        hit = broken[epoch % 4]
        hit.flat[epoch % hit.size] = (np.nan, np.inf, -np.inf)[epoch % 3]
        assert not kept.keep(broken)
        kept.restore(broken)  # back to the last finite weights, exactly
        for got, want in zip(broken, history[-1], strict=True):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    restored = [np.full_like(w, np.nan) for w in weights]
    kept.restore(restored)
    for got, want in zip(restored, history[-1], strict=True):
        np.testing.assert_array_equal(got, want)


def test_partial_fit_reuses_the_compiled_epoch_only_for_the_same_arrays():
    # consecutive partial_fit calls share the compiled epoch's workspace; weights
    # assigned anew are trained, not the old ones: bit-identical to the module path
    X, y = _digits()
    X = X[:300]
    y = y[:300]
    fused = fn.MLPClassifier((16,), batch_size=64, random_state=0)
    plain = fn.MLPClassifier(
        (16,), batch_size=64, random_state=0, callbacks=[_EveryBatch()]
    )  # a batch hook: the module path
    states = []
    for step in range(5):
        if step == 2:
            for est in (fused, plain):
                est.coefs_ = [c * 0.5 for c in est.coefs_]
                est.intercepts_ = [b + 0.25 for b in est.intercepts_]
        for est in (fused, plain):
            est.partial_fit(X, y, classes=np.arange(10))
        states.append(fused._fn_fused_state)
        assert fused.loss_ == plain.loss_
        for a, b in zip(fused.coefs_ + fused.intercepts_,
                        plain.coefs_ + plain.intercepts_, strict=True):  # fmt: skip
            np.testing.assert_array_equal(a, b)
    assert [states[i] is states[i + 1] for i in range(4)] == [True, False, True, True]
    assert "_fn_fused_state" not in vars(pickle.loads(pickle.dumps(fused)))
    # between calls only the network's part is kept: never the data
    for arr in (*fused._fn_fused_state.arrays, *fused._fn_fused_state.keep):
        assert not np.shares_memory(arr, X)


@pytest.mark.parametrize("n_classes", [2, 3, 10])
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8, np.int8])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_quick_checks_set_what_scikit_learns_set(n_classes, label_dtype, dtype):
    # fit's quick path for float arrays and integer labels leaves the estimator as
    # scikit-learn's checks do: the binarizer's state attribute by attribute, the
    # classes, the binarized targets, the feature count; feature names removed
    X, y = _digits()
    X = np.ascontiguousarray(X[:200].astype(dtype))
    y = (y[:200] % n_classes * 3 - 2 * (label_dtype != np.uint8)).astype(label_dtype)
    quick = fn.MLPClassifier((8,), random_state=0)
    quick.feature_names_in_ = np.array(["stale"], object)
    got = inputs.fit_input(quick, X, y, incremental=False, reset=True)
    assert got is not None and "feature_names_in_" not in vars(quick)
    ref = fn.MLPClassifier((8,), random_state=0)
    want = sk.MLPClassifier._validate_input(ref, X, y, incremental=False, reset=True)
    assert got[0] is X or np.array_equal(got[0], want[0])
    assert got[1].dtype == want[1].dtype and np.array_equal(got[1], want[1])
    ours, theirs = vars(quick._label_binarizer), vars(ref._label_binarizer)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, np.ndarray):
            assert ours[key].dtype == value.dtype and np.array_equal(ours[key], value)
        else:
            assert ours[key] == value
    assert quick.classes_ is quick._label_binarizer.classes_
    assert quick.n_features_in_ == ref.n_features_in_ == X.shape[1]
    # the fits agree to the bit with scikit-learn's checks in their place
    quick.fit(X, y)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(inputs, "fit_input", lambda *a: None)
        full = fn.MLPClassifier((8,), random_state=0).fit(X, y)
    for a, b in zip(quick.coefs_ + quick.intercepts_,
                    full.coefs_ + full.intercepts_, strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(quick.predict(X), full.predict(X))


def test_fit_quick_checks_leave_the_rest_to_scikit_learn():
    X, y = _digits()
    est = fn.MLPClassifier((8,), max_iter=5, random_state=0)
    cases = [
        (np.asfortranarray(X), y),  # not C-contiguous
        (X, y.astype(float)),  # float labels
        (X, y.astype(str)),  # string labels
        (X, np.zeros_like(y)),  # one class
        (X, y.reshape(-1, 1)),  # a column
        (X.tolist(), y),  # not an array
    ]
    for Xc, yc in cases:
        assert inputs.fit_input(est, Xc, yc, incremental=False, reset=True) is None
    bad = X.copy()
    bad[3, 4] = np.nan
    assert inputs.fit_input(est, bad, y, incremental=False, reset=True) is None
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad, y)
    est.fit(X, y)
    warm = fn.MLPClassifier((8,), warm_start=True, max_iter=5, random_state=0)
    warm.fit(X, y)
    assert inputs.fit_input(warm, X, y, incremental=False, reset=True) is None
    assert inputs.fit_input(est, X, y, incremental=True, reset=False) is None


def test_weights_of_any_layout_and_dtype_changes_train_as_scikit_learns_do():
    # Fortran-ordered weights (a transpose from elsewhere) predict and train; data
    # of another float dtype than the fitted weights trains in the weights' dtype
    X, y = _digits()
    X, y = X[:200], y[:200]
    est = fn.MLPClassifier((8,), max_iter=3, random_state=0).fit(X, y)
    ref = clone(est).fit(X, y)
    est.coefs_ = [np.asfortranarray(c) for c in est.coefs_]
    np.testing.assert_array_equal(est.predict_proba(X), ref.predict_proba(X))
    est.partial_fit(X, y)
    ref.partial_fit(X, y)
    for a, b in zip(est.coefs_, ref.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    est.partial_fit(X.astype(np.float32), y)  # float64 weights: trains in float64
    ref.partial_fit(X, y)
    assert est.n_iter_ == 1 and est.coefs_[0].dtype == np.float64
    for a, b in zip(est.coefs_, ref.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    warm = fn.MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, warm_start=True)
    warm.fit(X.astype(np.float32), y.astype(np.float32))
    warm.fit(X, y)  # float64 data, float32 weights: trains them in float32
    assert warm.coefs_[0].dtype == np.float32 and warm.n_iter_ == 2


def test_set_params_after_fit_changes_the_network():
    # the network over coefs_ is cached; a changed activation or dropout rebuilds
    # it (the reference: a copy, which carries no cached network)
    X, y = _digits()
    X, y = X[:200], y[:200]
    est = fn.MLPClassifier((8,), max_iter=3, random_state=0).fit(X, y)
    relu = est.predict_proba(X)
    est.set_params(activation="tanh")
    ref = copy.deepcopy(est)
    assert "_fn_net" not in vars(ref) and "_fn_net" in vars(est)
    np.testing.assert_array_equal(est.predict_proba(X), ref.predict_proba(X))
    assert not np.array_equal(est.predict_proba(X), relu)
    est.partial_fit(X, y)
    ref.partial_fit(X, y)
    for a, b in zip(est.coefs_, ref.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not est._network().dropout
    est.set_params(dropout=0.5)
    assert est._network().dropout  # the next fit trains with dropout


def test_big_endian_labels_give_native_classes_as_scikit_learns():
    X, y = _digits()
    X, y = X[:200], y[:200]
    ours = fn.MLPClassifier((8,), max_iter=2, random_state=0).fit(X, y.astype(">i8"))
    theirs = sk.MLPClassifier((8,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X, y.astype(">i8"))
    assert ours.classes_.dtype == theirs.classes_.dtype
    assert ours.predict(X).dtype == theirs.predict(X).dtype


@pytest.mark.parametrize(
    "labels",
    ["digits", "names", "binary", "binary names", "booleans", "multilabel"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_gives_scikit_learns_labels(labels, dtype):
    """predict picks labels from the outputs without the label binarizer's
    inverse_transform (multilabel still uses it): the same labels, of the same
    dtype, as scikit-learn's predict on the same fitted estimator, for one row and
    many, binary and multiclass, numbers, strings and booleans."""
    X, y = _digits()
    X = X.astype(dtype)
    y = {
        "digits": y,
        "names": np.array("zero one two three four five six seven eight nine".split())[
            y
        ],
        "binary": np.where(y > 4, 7, -3),
        "binary names": np.where(y > 4, "big", "small"),
        "booleans": y % 2 == 0,
        "multilabel": np.stack([y > 4, y % 2 == 0, y == 3], axis=1).astype(int),
    }[labels]
    est = fn.MLPClassifier((16,), max_iter=5, random_state=0).fit(X, y)
    for rows in (X[:1], X[:1].astype(np.float64), X[5:6], X[:333], X):
        got = est.predict(rows)
        expected = sk.MLPClassifier.predict(est, rows)  # its binarizer's labels
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    # a probability exactly at the binary threshold takes the negative class, as
    # the binarizer's "> threshold" does; ties in a multiclass row the first class
    binarizer = est._label_binarizer
    if binarizer.y_type_ == "binary":
        outputs = np.array([0.5, np.nextafter(0.5, 1), 0.0, 1.0], dtype)
    elif binarizer.y_type_ == "multiclass":
        outputs = np.zeros((3, len(binarizer.classes_)), dtype)
        outputs[0, [2, 5]] = 0.5
        outputs[1, :] = 0.1
        outputs[2, -1] = 1.0
    else:
        outputs = np.full((2, 3), 0.5, dtype)
    np.testing.assert_array_equal(
        _labels(binarizer, outputs), binarizer.inverse_transform(outputs)
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda est: est.coefs_.__setitem__(0, est.coefs_[0].astype(np.float32)),
         r"intercepts_\[0\] is float64 where coefs_\[0\] is float32"),
        (lambda est: est.coefs_.__setitem__(1, est.coefs_[1][:, :2]),
         r"coefs_\[1\] has shape \(16, 2\) and intercepts_\[1\] \(10,\)"),
        (lambda est: est.coefs_.__setitem__(1, np.zeros((5, 10))),
         r"coefs_\[1\] takes 5 inputs but coefs_\[0\] gives 16 outputs"),
        (lambda est: setattr(est, "coefs_", est.coefs_[:1]),
         r"coefs_ has 1 arrays and intercepts_ 2"),
        (lambda est: est.intercepts_.__setitem__(0, est.intercepts_[0].astype(int)),
         r"intercepts_\[0\] is int64 where coefs_\[0\] is float64"),
    ],
)  # fmt: skip
def test_assigned_weights_the_kernels_cannot_take_are_named(change, message):
    """A user's coefs_/intercepts_ that fastnet cannot compute with (mixed dtypes,
    which scikit-learn computes in the wider type; shapes that do not chain) are a
    ValueError naming the attribute, not an error about fastnet's internals."""
    X, y = _digits()
    est = fn.MLPClassifier((16,), max_iter=2, random_state=0).fit(X, y)
    change(est)
    for method in (est.predict, est.predict_proba):
        with pytest.raises(ValueError, match=message):
            method(X[:5])
