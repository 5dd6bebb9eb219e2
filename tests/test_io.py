"""Model files: round trips bit for bit, and every kind of bad file is a ValueError."""

import json
import os
import pickle
import sys
import zipfile

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits

import fastnet as fn

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


@pytest.mark.parametrize(
    "make",
    [
        lambda X, y: fn.MLPClassifier(max_iter=5, random_state=0).fit(X, y),
        lambda X, y: fn.MLPClassifier(
            max_iter=5, random_state=0, activation="gelu"
        ).fit(X.astype(np.float32), np.array(list("abcdefghij"))[y]),
        lambda X, y: fn.MLPClassifier(max_iter=5, random_state=0).fit(
            X, np.c_[y % 2, y > 4]
        ),
        lambda X, y: fn.MLPClassifier(solver="lbfgs", max_iter=5, random_state=0).fit(
            X, y > 4
        ),
        lambda X, y: fn.MLPRegressor(max_iter=5, random_state=0).fit(
            X, y.astype(float)
        ),
        lambda X, y: fn.MLPRegressor(loss="poisson", max_iter=5, random_state=0).fit(
            X, y
        ),
    ],
    ids=[
        "multiclass",
        "float32-strings",
        "multilabel",
        "binary-lbfgs",
        "regress",
        "poisson",
    ],
)
def test_estimators_round_trip_bit_for_bit(make, digits, tmp_path):
    X, y = digits
    est = make(X, y)
    Xp = X.astype(est.coefs_[0].dtype)
    path = tmp_path / "m.npz"
    fn.save(est, path)
    back = fn.load(path)
    assert type(back) is type(est) and back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.predict(Xp), est.predict(Xp))
    if hasattr(est, "predict_proba"):
        np.testing.assert_array_equal(back.predict_proba(Xp), est.predict_proba(Xp))
        np.testing.assert_array_equal(back.classes_, est.classes_)
    for a in ("n_iter_", "loss_", "out_activation_", "n_layers_", "n_outputs_"):
        assert getattr(back, a) == getattr(est, a)


def test_sequential_and_graph_round_trip(tmp_path, rng):
    seq = fn.Sequential(
        fn.Linear(5, 8, random_state=0),
        fn.LeakyReLU(0.2),
        fn.Dropout(0.3),
        fn.Linear(8, 3, dtype=np.float32, random_state=1),
        fn.Softmax(),
    )
    x = rng.standard_normal((4, 5)).astype(np.float32)
    fn.save(seq, tmp_path / "s.npz")
    back = fn.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(
        back.forward(x, train=False), seq.forward(x, train=False)
    )
    g = fn.Graph()
    a = g.input("a")
    w = g.param("W", rng.standard_normal((5, 2)))
    g.add(fn.Einsum("bi,ij->bj"), g.add(fn.Tanh(), a), w, name="out")
    fn.save(g, tmp_path / "g.npz")
    g2 = fn.load(tmp_path / "g.npz")
    xs = rng.standard_normal((3, 5))
    np.testing.assert_array_equal(g2.forward(a=xs), g.forward(a=xs))
    assert [n.name for n in g2.nodes] == [n.name for n in g.nodes]


def test_metadata_round_trip(digits, tmp_path):
    X, y = digits
    est = fn.MLPClassifier(max_iter=2).fit(X, y)
    fn.save(est, tmp_path / "m.npz", metadata={"features": ["a"], "note": 1})
    assert fn.model_files.read_metadata(tmp_path / "m.npz") == {
        "features": ["a"],
        "note": 1,
    }


def test_save_rejects_what_it_cannot_store(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        fn.save(fn.MLPClassifier(), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="takes a fastnet"):
        fn.save({"W": 1}, tmp_path / "m.npz")


@pytest.fixture
def model_file(digits, tmp_path):
    X, y = digits
    path = tmp_path / "m.npz"
    fn.save(fn.MLPClassifier(max_iter=2, random_state=0).fit(X, y), path)
    return path


def _rewrite(path, mutate):
    """Rewrite the JSON metadata of a model file through ``mutate(meta)``."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    mutate(meta)
    np.savez(path, __meta__=np.array(json.dumps(meta)), **arrays)


def test_truncated_file(model_file):
    data = model_file.read_bytes()
    model_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        fn.load(model_file)


def test_random_bytes(model_file, rng):
    model_file.write_bytes(rng.bytes(5000))
    with pytest.raises(ValueError, match=r"not an \.npz file"):
        fn.load(model_file)


def test_pickle_payload_never_runs(model_file, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    model_file.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError):
        fn.load(model_file)
    np.save(tmp_path / "x.npy", np.array([Evil()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(model_file, "w") as z:
        z.write(tmp_path / "x.npy", "__meta__.npy")
    with pytest.raises(ValueError, match="cannot be read safely"):
        fn.load(model_file)
    assert not marker.exists()


def test_object_arrays_are_refused(model_file):
    with np.load(model_file, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["coef_0"] = np.array([None, 1], dtype=object)
    np.savez(model_file, **arrays)
    with pytest.raises(ValueError, match="cannot be read safely"):
        fn.load(model_file)


def test_future_version_and_foreign_files(model_file, tmp_path):
    _rewrite(model_file, lambda m: m.update(format=99))
    with pytest.raises(ValueError, match="newer fastnet"):
        fn.load(model_file)
    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not a fastnet file"):
        fn.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="does not exist"):
        fn.load(tmp_path / "missing.npz")


@pytest.mark.parametrize(
    "mutate,words",
    [
        (lambda m: m.update(kind="Transformer"), "unknown model kind"),
        (lambda m: m["params"].update(activation="swish"), "hyperparameters"),
        (lambda m: m["params"].pop("alpha"), "hyperparameters do not match"),
        (lambda m: m["attributes"].update(n_layers_=7), "missing"),
        (lambda m: m["attributes"].update(out_activation_="cube"), "out_activation_"),
        (lambda m: m.update(label_type="continuous"), "label type"),
        (lambda m: m.pop("params"), "missing or malformed"),
    ],
)
def test_corrupted_fields(model_file, mutate, words):
    _rewrite(model_file, mutate)
    with pytest.raises(ValueError, match=words):
        fn.load(model_file)


def test_corrupted_weights(model_file):
    with np.load(model_file, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["coef_1"] = arrays["coef_1"][:3]
    np.savez(model_file, **arrays)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        fn.load(model_file)
    arrays["coef_1"] = np.full((100, 10), np.nan)
    np.savez(model_file, **arrays)
    with pytest.raises(ValueError, match="NaN"):
        fn.load(model_file)


def test_writes_are_atomic(model_file, monkeypatch, digits):
    before = model_file.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    X, y = digits
    with pytest.raises(OSError, match="disk full"):
        fn.save(
            fn.MLPRegressor(max_iter=1).fit(X[:50], y[:50].astype(float)), model_file
        )
    assert model_file.read_bytes() == before
    assert [p.name for p in model_file.parent.iterdir()] == [model_file.name]


def test_regressor_file_rejects_classifier_fields(tmp_path):
    X, y = load_diabetes(return_X_y=True)
    path = tmp_path / "r.npz"
    fn.save(fn.MLPRegressor(max_iter=2).fit(X, y), path)
    assert isinstance(fn.load(path), fn.MLPRegressor)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_saved_files_get_the_umask_mode_or_keep_the_existing_one(tmp_path):
    from fastnet._runtime.atomic import save_npz

    old = os.umask(0o027)  # (restored below; this test runs in the main thread)
    try:
        save_npz(tmp_path / "new.npz", {"a": np.zeros(2)}, {})
        assert (tmp_path / "new.npz").stat().st_mode & 0o777 == 0o640
        (tmp_path / "old.npz").write_bytes(b"")
        os.chmod(tmp_path / "old.npz", 0o604)
        save_npz(tmp_path / "old.npz", {"a": np.zeros(2)}, {})
        assert (tmp_path / "old.npz").stat().st_mode & 0o777 == 0o604
    finally:
        os.umask(old)
