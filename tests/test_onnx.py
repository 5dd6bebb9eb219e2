"""ONNX export (``fastnet.onnx``) proved in ONNX Runtime: every estimator kind,
activation and dtype, ``Sequential``, and scikit-learn pipelines through skl2onnx,
against fastnet's own outputs on held-out rows (float64 to 1e-9, float32 to 1e-5,
labels equal)."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    make_multilabel_classification,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastnet as fn

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
skl2onnx = pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
fastnet_onnx = pytest.importorskip("fastnet.onnx")

ACTIVATIONS = ["relu", "tanh", "logistic", "identity", "gelu", "leaky_relu"]
DTYPES = [np.float32, np.float64]
TOL = {np.float32: 1e-5, np.float64: 1e-9}


def run(proto, **inputs):
    onnx.checker.check_model(proto)
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    return session.run(None, inputs)


def fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def close(actual, expected, dtype):
    """Relative to the largest magnitude of the expected outputs."""
    expected = np.asarray(expected, np.float64)
    scale = max(np.abs(expected).max(), 1e-300)
    diff = np.abs(np.asarray(actual, np.float64) - expected).max() / scale
    assert diff <= TOL[dtype], diff


def split(X):
    return X[: len(X) // 2], X[len(X) // 2 :]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_multiclass_classifier(activation, dtype):
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(dtype)
    (X_fit, X_new), (y_fit, _) = split(X), split(y)
    est = fit(fn.MLPClassifier((24,), activation=activation, max_iter=30,
                               random_state=0), X_fit, y_fit)  # fmt: skip
    proto = fastnet_onnx.to_onnx(est)
    label, proba = run(proto, X=X_new)
    assert proba.dtype == dtype and label.dtype == np.int64
    close(proba, est.predict_proba(X_new), dtype)
    np.testing.assert_array_equal(label, est.predict(X_new))


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_classifier_with_string_labels(dtype):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(dtype)
    labels = np.array(["benign", "malignant"])[y]
    (X_fit, X_new), (y_fit, _) = split(X), split(labels)
    est = fit(fn.MLPClassifier((8,), activation="gelu", max_iter=30, random_state=0),
              X_fit, y_fit)  # fmt: skip
    label, proba = run(fastnet_onnx.to_onnx(est), X=X_new)
    assert proba.shape == (len(X_new), 2)
    close(proba, est.predict_proba(X_new), dtype)
    np.testing.assert_array_equal(label, est.predict(X_new))


@pytest.mark.parametrize("dtype", DTYPES)
def test_multilabel_classifier(dtype):
    X, Y = make_multilabel_classification(300, 10, n_classes=4, random_state=0)
    X = X.astype(dtype)
    (X_fit, X_new), (Y_fit, _) = split(X), split(Y)
    est = fit(fn.MLPClassifier((12,), activation="leaky_relu", max_iter=40,
                               random_state=0), X_fit, Y_fit)  # fmt: skip
    label, proba = run(fastnet_onnx.to_onnx(est), X=X_new)
    close(proba, est.predict_proba(X_new), dtype)
    np.testing.assert_array_equal(label, est.predict(X_new))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("outputs", [1, 2])
def test_regressor(activation, dtype, outputs):
    X, y = load_diabetes(return_X_y=True)
    X = X.astype(dtype)
    Y = y if outputs == 1 else np.c_[y, -2 * y]
    (X_fit, X_new), (Y_fit, _) = split(X), split(Y)
    est = fit(fn.MLPRegressor(hidden_layer_sizes=(16,), activation=activation,
                              max_iter=40, random_state=0), X_fit, Y_fit)  # fmt: skip
    (out,) = run(fastnet_onnx.to_onnx(est), X=X_new)
    assert out.shape == (len(X_new), outputs) and out.dtype == dtype
    close(out, est.predict(X_new).reshape(out.shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_regressor(dtype):
    X, y = load_diabetes(return_X_y=True)
    X = X.astype(dtype)
    est = fit(fn.MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=40,
                              random_state=0), X[:300], y[:300])  # fmt: skip
    (out,) = run(fastnet_onnx.to_onnx(est), X=X[300:])
    close(out.ravel(), est.predict(X[300:]), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_with_every_activation(dtype, rng):
    x = rng.standard_normal((50, 6)).astype(dtype)
    for i, act in enumerate([fn.ReLU(), fn.Tanh(), fn.Sigmoid(), fn.GELU(),
                             fn.GELU(approximate="tanh"), fn.LeakyReLU(0.2),
                             fn.Identity()]):  # fmt: skip
        model = fn.Sequential(fn.Linear(6, 9, dtype=dtype, random_state=i), act,
                              fn.Dropout(0.3), fn.Linear(9, 4, dtype=dtype,
                              random_state=i + 1), fn.Softmax())  # fmt: skip
        (out,) = run(fastnet_onnx.to_onnx(model), X=x)
        close(out, model.forward(x, train=False), dtype)


def test_gelu_erfc_over_its_range():
    # the erfc built from ONNX nodes, through GELU, far into both tails (float64)
    x = np.concatenate([np.linspace(-40, 40, 4001), [-1e3, 1e3, 0.0]])[:, None]
    model = fn.Sequential(fn.Linear(1, 1, dtype=np.float64), fn.GELU())
    model.modules[0].params["W"][:] = 1.0
    model.modules[0].params["b"][:] = 0.0
    (out,) = run(fastnet_onnx.to_onnx(model), X=x)
    want = model.forward(x, train=False)
    # beyond z = 12 (x < -16.97) the series' erfc is 0, fastnet's libm's below 1e-63
    shown = np.abs(want) > 1e-60
    np.testing.assert_allclose(out[shown], want[shown], rtol=1e-10)
    np.testing.assert_allclose(out[~shown], 0.0, atol=1e-60)


def test_a_pipeline_through_skl2onnx():
    X, y = load_digits(return_X_y=True)
    pipe = fit(make_pipeline(StandardScaler(), fn.MLPClassifier((16,), max_iter=20,
                                                                random_state=0)),
               X[:1000], y[:1000])  # fmt: skip
    proto = skl2onnx.to_onnx(pipe, X[:1].astype(np.float32),
                             options={"zipmap": False})  # fmt: skip
    label, proba = run(proto, X=X[1000:].astype(np.float32))
    np.testing.assert_allclose(proba, pipe.predict_proba(X[1000:]), atol=1e-5)
    assert (label == pipe.predict(X[1000:])).mean() > 0.995


def test_written_to_a_path(tmp_path):
    X, y = load_digits(return_X_y=True)
    est = fit(fn.MLPClassifier((8,), max_iter=5, random_state=0), X, y)
    path = tmp_path / "m.onnx"
    proto = fastnet_onnx.to_onnx(est, X[:2], path=path)
    assert onnx.load(path) == proto
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary left


def test_what_cannot_be_exported():
    X, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match="not fitted"):
        fastnet_onnx.to_onnx(fn.MLPClassifier())
    est = fit(fn.MLPClassifier((8,), max_iter=2, random_state=0), X, y)
    with pytest.raises(ValueError, match="X_sample has 3 columns; the model takes 64"):
        fastnet_onnx.to_onnx(est, X[:, :3])
    model = fn.Sequential(fn.Linear(4, 4), fn.Einsum("bi->bi"))
    with pytest.raises(ValueError, match=r"module 1 \(Einsum\) has no ONNX form"):
        fastnet_onnx.to_onnx(model)
    with pytest.raises(TypeError, match="not dict"):
        fastnet_onnx.to_onnx({})


def test_import_fastnet_does_not_import_onnx():
    code = ("import sys, fastnet; fastnet.MLPClassifier; "
            "print(sorted(m for m in ('onnx', 'skl2onnx', 'onnxruntime') "
            "if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    assert out.strip() == "[]"


def test_fastnet_to_onnx_is_the_function():
    assert fn.to_onnx is fastnet_onnx.to_onnx
