"""ONNX export of the command line's models (``fastnet.onnx_tabular``) and the
``fastnet export`` command: models trained by ``fastnet train`` on CSV files, their
graphs run in ONNX Runtime on held-out raw rows (missing numbers, missing and
unseen categories) against ``fastnet predict`` and the model (labels equal,
float64 to 1e-9, float32 to 1e-5); one-line errors; ``fastnet info``'s line."""

import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import fastnet as fn
from fastnet.tabular import cli
from fastnet.tabular.commands import export
from fastnet.tabular.prepare import Preparation, TabularModel

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
fastnet_onnx = pytest.importorskip("fastnet.onnx")

TOL = {np.float32: 1e-5, np.float64: 1e-9}
CITIES = ["Oslo", "Lima", "Pune"]


def run(args, capsys):
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def table(n, seed):
    """Rows with a column name that is no identifier, numbers with gaps and a
    text column with gaps; ``kind`` (3 classes) and ``score`` (a number) to
    predict."""
    rng = np.random.default_rng(seed)
    f = pd.DataFrame(
        {
            "height (cm)": rng.normal(170, 10, n).round(1),
            "city": rng.choice(CITIES, n),
            "age": rng.integers(20, 61, n).astype(float),
        }
    )
    signal = f["age"] + 20 * (f["city"] == "Oslo") + (f["height (cm)"] - 170) / 2
    f["kind"] = np.array(["low", "mid", "high"])[np.digitize(signal, [40, 55])]
    f["score"] = 2.5 * signal + rng.normal(0, 1, n)
    f.loc[rng.choice(n, n // 10, replace=False), "height (cm)"] = np.nan
    f.loc[rng.choice(n, n // 10, replace=False), "city"] = np.nan
    f.loc[rng.choice(n, n // 20, replace=False), "age"] = np.nan
    return f


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The training CSV, held-out rows (with an unseen city) and the two models
    ``fastnet train`` makes of them."""
    d = tmp_path_factory.mktemp("tabular")
    train = table(300, 0)
    train.to_csv(d / "train.csv", index=False)
    new = table(40, 1).drop(columns=["kind", "score"])
    new.loc[[0, 1], "city"] = "Quito"
    new.loc[1, ["height (cm)", "age"]] = np.nan
    new.to_csv(d / "new.csv", index=False)
    tiny = ["--hidden", "4", "--epochs", "3", "--data", d / "train.csv"]
    for target, drop, out in [("kind", "score", "c"), ("score", "kind", "r")]:
        args = ["train", *tiny, "--target", target, "--drop", drop, "--out"]
        assert cli.main([str(a) for a in [*args, d / f"{out}.npz"]]) == 0
    return d


def feeds(model, frame):
    """The graph's inputs for the raw rows ``frame``: a column each, numbers in
    the model's dtype (NaN: missing), text as strings ("": missing)."""
    prep, dtype = model.preparation, model.estimator.coefs_[0].dtype
    out = {}
    for name in prep.features:
        col = frame[[name]]
        if name in prep.numeric:
            out[name] = col.to_numpy(dtype)
        else:
            out[name] = col.fillna("").astype(str).to_numpy(object)
    return out


def session(proto):
    onnx.checker.check_model(proto)
    return ort.InferenceSession(proto.SerializeToString(),
                                providers=["CPUExecutionProvider"])  # fmt: skip


def close(actual, expected, dtype):
    """Relative to the largest magnitude of the expected values."""
    expected = np.asarray(expected, np.float64)
    scale = max(np.abs(expected).max(), 1e-300)
    diff = np.abs(np.asarray(actual, np.float64) - expected).max() / scale
    assert diff <= TOL[dtype], diff


def predicted(model, frame, proba=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the unseen city
        return (model.predict_proba if proba else model.predict)(frame)


def test_a_classifier_exports_with_its_preparation(files, capsys):
    code, out, err = run(["export", files / "c.npz", files / "c.onnx"], capsys)
    assert code == 0, err
    assert out == (
        f"exported {files / 'c.npz'} to {files / 'c.onnx'}: 3 inputs (height (cm), "
        "city, age), outputs label, probabilities\n"
    )
    code, out, err = run(["predict", files / "c.npz", files / "new.csv"], capsys)
    assert code == 0 and "Quito" in err and "imputed" in err
    s = session(onnx.load(files / "c.onnx"))
    assert [(i.name, i.type, i.shape) for i in s.get_inputs()] == [
        ("height (cm)", "tensor(double)", [None, 1]),
        ("city", "tensor(string)", [None, 1]),
        ("age", "tensor(double)", [None, 1]),
    ]
    model, new = fn.load(files / "c.npz"), pd.read_csv(files / "new.csv")
    label, proba = s.run(["label", "probabilities"], feeds(model, new))
    assert [str(v) for v in label] == out.split()
    assert len(set(label)) == 3  # a test of every class
    close(proba, predicted(model, new, proba=True), np.float64)


def test_a_regressor_predicts_in_the_targets_units(files, capsys):
    code, _, err = run(["export", files / "r.npz", files / "r.onnx"], capsys)
    assert code == 0, err
    code, out, err = run(["predict", files / "r.npz", files / "new.csv"], capsys)
    assert code == 0, err
    s = session(onnx.load(files / "r.onnx"))
    (output,) = s.get_outputs()
    assert (output.name, output.type) == ("variable", "tensor(double)")
    model, new = fn.load(files / "r.npz"), pd.read_csv(files / "new.csv")
    (variable,) = s.run(None, feeds(model, new))
    assert variable.shape == (len(new), 1)
    expected = np.array(out.split(), dtype=np.float64)  # every digit
    assert np.ptp(expected) > 1 and abs(expected.mean()) > 10  # un-standardised
    close(variable.ravel(), expected, np.float64)


def python_model(task, dtype, names, impute=True, scale=True):
    """A TabularModel made in Python (any dtype, names, preparation)."""
    columns = dict(zip(["height (cm)", "city", "age"], names, strict=True))
    f = table(200, 2).rename(columns=columns)
    if not impute:
        f = f.dropna()
    prep = Preparation(names, [names[0], names[2]], [names[1]], impute, scale).fit(f)
    X = prep.transform(f).astype(dtype)
    kind = fn.MLPClassifier if task == "classify" else fn.MLPRegressor
    est = kind(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 3 epochs
        if task == "classify":
            return TabularModel(prep, est.fit(X, f["kind"]), "kind"), f
        mean, sd = f["score"].mean(), f["score"].std()
        est.fit(X, (f["score"] - mean) / sd)
        return TabularModel(prep, est, "score", mean, sd), f


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("task", ["classify", "regress"])
@pytest.mark.parametrize("impute,scale", [(True, True), (False, True), (True, False)])
def test_dtypes_preparations_and_names_that_are_taken(task, dtype, impute, scale):
    # inputs named as the graph's outputs and as its inner values keep their names
    names = ["label", "variable", "a.b c/é"]
    if task == "regress":
        names = ["variable", "probabilities", "standardised"]
    model, f = python_model(task, dtype, names, impute, scale)
    rows = f.iloc[:30].drop(columns=["kind", "score"])
    if impute:
        rows.iloc[0, 1] = "unseen"
    s = session(fastnet_onnx.to_onnx(model, rows))
    assert [i.name for i in s.get_inputs()] == names
    number = "tensor(float)" if dtype == np.float32 else "tensor(double)"
    assert s.get_inputs()[0].type == number
    outputs = [o.name for o in s.get_outputs()]
    got = s.run(None, feeds(model, rows))
    if task == "classify":
        assert outputs == ["label_", "probabilities"]
        np.testing.assert_array_equal(got[0], predicted(model, rows))
        close(got[1], predicted(model, rows, proba=True), dtype)
    else:
        assert outputs == ["variable_"]
        close(got[0].ravel(), predicted(model, rows), dtype)


def test_x_sample_is_checked():
    model, f = python_model("classify", np.float64, ["x", "y", "z"])
    with pytest.raises(ValueError, match="X lacks 1 of the model's 3 columns: z"):
        fastnet_onnx.to_onnx(model, f[["x", "y"]])


def test_estimator_and_sequential_files_export(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    est = fn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, X[:, 0])
    f32 = X.astype(np.float32)
    seq = fn.Sequential(fn.Linear(3, 4), fn.Tanh(), fn.Linear(4, 2))  # float32
    for model, name, x, expected in [
        (est, "e", X, est.predict(X)),
        (seq, "s", f32, seq.forward(f32, train=False)),
    ]:
        fn.save(model, tmp_path / f"{name}.npz")
        args = ["export", tmp_path / f"{name}.npz", tmp_path / f"{name}.onnx"]
        code, out, err = run(args, capsys)
        assert code == 0, err
        assert "1 input (X)" in out
        (got,) = session(onnx.load(tmp_path / f"{name}.onnx")).run(None, {"X": x})
        close(got.reshape(expected.shape), expected, x.dtype.type)


def graph_file(path):
    g = fn.Graph()
    g.add(fn.Tanh(), g.input("x"))
    fn.save(g, path)
    return path


def einsum_file(path):
    fn.save(fn.Sequential(fn.Linear(4, 4), fn.Einsum("bi->bi")), path)
    return path


@pytest.mark.parametrize(
    "args,words",
    [
        (["{model}", "{tmp}/no/such/m.onnx"], "no such folder"),
        (["{tmp}/missing.npz", "{tmp}/m.onnx"], "no such file: "),
        (["{garbage}", "{tmp}/m.onnx"], "not an .npz file"),
        (["{graph}", "{tmp}/m.onnx"], "a Graph has no ONNX form"),
        (["{einsum}", "{tmp}/m.onnx"], "module 1 (Einsum) has no ONNX form"),
        (["{model}", "{model}"], "is a model file: fastnet export will not write"),
        (["{model}", "{tmp}"], "is a folder"),
        (["{model}", "{tmp}/m.onnx", "extra"], "unrecognized arguments: extra"),
    ],
)
def test_export_errors_are_one_line(args, words, files, tmp_path, capsys):
    (tmp_path / "garbage.npz").write_bytes(b"\x00" * 100)
    paths = {
        "tmp": tmp_path,
        "model": files / "c.npz",
        "garbage": tmp_path / "garbage.npz",
        "graph": graph_file(tmp_path / "graph.npz"),
        "einsum": einsum_file(tmp_path / "einsum.npz"),
    }
    code, _, err = run(["export", *(a.format(**paths) for a in args)], capsys)
    assert code == 2
    assert words in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_export_without_the_onnx_extra(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "fastnet.onnx")
    monkeypatch.delattr(fn, "onnx")
    code, _, err = run(["export", files / "c.npz", tmp_path / "m.onnx"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "fastnet export needs the onnx extra: pip install 'fastnet[onnx]'" in err
    assert not (tmp_path / "m.onnx").exists()


def test_info_says_how_to_export(files, tmp_path, capsys, monkeypatch):
    code, out, err = run(["info", files / "c.npz"], capsys)
    assert code == 0, err
    line = f"export    fastnet export {files / 'c.npz'} OUT.onnx writes it as an ONNX"
    assert line in out
    monkeypatch.setattr(export, "EXTRA", ("fastnet_no_such_package",))
    code, out, _ = run(["info", files / "c.npz"], capsys)
    assert "(after pip install 'fastnet[onnx]')" in out
    code, out, err = run(["info", graph_file(tmp_path / "g.npz")], capsys)
    assert code == 0, err
    assert out.splitlines() == [
        f"model   Graph, fastnet {fn.__version__}",
        "nodes   inputs x; operations Tanh; parameters none",
        "export  none: a Graph has no ONNX form (fastnet export takes the "
        "estimators, Sequential models and the models fastnet train writes)",
    ]
    # what info says is what export does: the same rule (fastnet.onnx_forms)
    code, out, err = run(["info", einsum_file(tmp_path / "e.npz")], capsys)
    assert code == 0, err
    assert out.splitlines()[-1] == (
        "export   none: module 1 (Einsum) has no ONNX form: export takes Linear, "
        "the activations, Softmax and Dropout"
    )
