"""The fastnet command on the files people have: headers or none, other delimiters,
byte-order marks, missing cells, text columns, unscaled numbers; predict, info,
errors as one line, checkpoints and resume."""

import csv
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_digits, load_iris

import fastnet as fn
from fastnet.tabular import checkpoint, cli
from fastnet.tabular.prepare import TabularModel


def run(args, capsys):
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse: --help, --version and its own errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def train(capsys, *args):
    code, out, err = run(["train", *args], capsys)
    assert code == 0, err
    return out, err


def held_out(out, metric="accuracy"):
    line = next(ln for ln in out.splitlines() if ln.startswith("held-out"))
    return float(line.split(f"{metric} ")[1].split()[0].rstrip(","))


def write_csv(path, X, y, names=None, target="label"):
    names = names or [f"f{i}" for i in range(X.shape[1])]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*names, target])
        for row, t in zip(X, y, strict=True):
            w.writerow([*row, t])
    return path


def iris(species=("setosa, small", "versicolor", "virginica")):
    f = load_iris(as_frame=True).frame
    f.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "sp"]
    f["species"] = np.array(species)[f.pop("sp")]
    return f


def predictions(out):
    return out.split("\n")[:-1]


def test_train_on_digits_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, err = train(capsys)
    assert "task: classification (target 'digit' has 10 integer values" in out
    assert held_out(out) >= 0.95
    assert "trained in" in out and "saved model to fastnet-model.npz" in out
    model = fn.load(tmp_path / "fastnet-model.npz")
    assert isinstance(model, TabularModel) and model.target == "digit"
    # the bar ends at the epoch where training stopped, and the output says why
    n = model.estimator.n_iter_
    assert f"{n}/{n} [" in err.replace("\r", "\n").splitlines()[-1]
    assert ("stopped at epoch" in out) == (n < 100)


def test_the_installed_command_runs_without_warnings(tmp_path):
    # an empty kernel cache: the first run compiles, and prints no warnings
    env = {**os.environ, "FASTNET_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("NUMBA_CACHE_DIR", None)
    args = ["train", "--epochs", "3", "--out", tmp_path / "m.npz"]
    out = subprocess.run(
        [sys.executable, "-m", "fastnet.tabular.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "accuracy" in out.stdout
    assert "Warning" not in out.stderr, out.stderr


def test_the_program_exits_with_mains_code_and_a_frozen_collector(tmp_path):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts == {"fastnet": "fastnet.tabular.cli:command"}
    # command() runs main on sys.argv and returns its code, after gc.freeze: the
    # process ends next, and the exit's collections would walk every object
    code = (
        "import gc, sys; from fastnet import cli; "
        "sys.argv = ['fastnet', 'predict', sys.argv[1], sys.argv[1]]; "
        "rc = cli.command(); print(rc, gc.get_freeze_count() > 0, gc.isenabled())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "missing.npz")],
        capture_output=True,
        text=True,
    )
    # an error before the work began: the collector is back on all the same
    assert out.stdout.split() == ["2", "True", "True"], out.stderr
    assert len(out.stderr.splitlines()) == 1 and "missing.npz" in out.stderr


# each epoch prints whether the collector is on and how many objects are frozen;
# after the program, the same; from the start, main runs with the collector off
_SCHEDULE = """
import gc, sys
from fastnet.tabular import cli
from fastnet.sklearn import estimators as estimator
seen = []
fit = estimator.MLPClassifier._fit
def spy(self, *a, **k):
    seen.append(("fit", gc.isenabled(), gc.get_freeze_count()))
    return fit(self, *a, **k)
estimator.MLPClassifier._fit = spy
parse = cli.build_parser
def spy_parse():
    seen.append(("start", gc.isenabled(), gc.get_freeze_count()))
    return parse()
cli.build_parser = spy_parse
sys.argv = ["fastnet", "train", "--epochs", "2", "--out", sys.argv[1]]
rc = cli.command()
seen.append(("end", gc.isenabled(), gc.get_freeze_count()))
print(rc, seen)
"""


def test_the_program_collects_garbage_from_where_its_work_begins(tmp_path):
    env = {**os.environ, "FASTNET_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-c", _SCHEDULE, str(tmp_path / "m.npz")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    rc, seen = out.stdout.splitlines()[-1].split(" ", 1)
    assert rc == "0", out.stderr
    seen = eval(seen)
    fits = [s for s in seen if s[0] == "fit"]
    assert len(fits) == 1, seen
    (start, on0, frozen0), (fit, on1, frozen1), (end, on2, frozen2) = (
        seen[0],
        fits[0],
        seen[-1],
    )
    assert (start, on0, frozen0) == ("start", False, 0)
    # the startup's objects (scikit-learn, Numba, the kernels) frozen, then collected
    assert (fit, on1) == ("fit", True) and frozen1 > 100_000
    assert (end, on2) == ("end", True) and frozen2 >= frozen1
    # in-process, main leaves the caller's collector alone
    assert gc_untouched_by_main(tmp_path)


def gc_untouched_by_main(tmp_path):
    import gc

    frozen = gc.get_freeze_count()
    gc.collect()
    assert gc.isenabled()
    code = cli.main(["info", str(tmp_path / "m.npz")])
    return code == 0 and gc.isenabled() and gc.get_freeze_count() == frozen


def test_help_and_version_start_at_once():
    from fastnet.sklearn.estimators import HIDDEN_ACTIVATIONS

    assert list(cli.ACTIVATIONS) == sorted(HIDDEN_ACTIVATIONS)
    # --help and --version import no estimator (scikit-learn) and no kernels (Numba)
    code = (
        "import sys; from fastnet import cli; cli.build_parser(); "
        "print('sklearn' in sys.modules, 'numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_version_and_help_show_defaults(capsys):
    assert run(["--version"], capsys)[:2] == (0, f"fastnet {fn.__version__}\n")
    code, text, _ = run(["train", "--help"], capsys)
    assert code == 0
    text = " ".join(text.split())
    for default in [
        "(default: 128,64)",
        "(default: relu)",
        "(default: fastnet-model.npz)",
    ]:
        assert default in text


def test_headerless_csv_trains_and_predicts_on_the_same_kind_of_file(tmp_path, capsys):
    X, y = load_digits(return_X_y=True)
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, y]), fmt="%g", delimiter=",")
    out, _ = train(
        capsys,
        "--data",
        tmp_path / "d.csv",
        "--epochs",
        "30",
        "--out",
        tmp_path / "m.npz",
    )
    assert "target 'col65'" in out and "1,797 rows" in out  # no row lost
    assert held_out(out) >= 0.93
    model = fn.load(tmp_path / "m.npz")
    # the same kind of file: the target column is recognised by position
    code, out, err = run(["predict", tmp_path / "m.npz", tmp_path / "d.csv"], capsys)
    assert code == 0, err
    labels = np.array(predictions(out), dtype=int)
    np.testing.assert_array_equal(labels, model.predict(X))
    assert (labels == y).mean() > 0.97  # as in training: columns matched right
    # without the target column, by position too
    np.savetxt(tmp_path / "x.csv", X[:5], fmt="%g", delimiter=",")
    code, out, err = run(["predict", tmp_path / "m.npz", tmp_path / "x.csv"], capsys)
    assert code == 0 and predictions(out) == [str(v) for v in labels[:5]]
    # a target named by position
    out, _ = train(
        capsys,
        "--data",
        tmp_path / "d.csv",
        "--target",
        "65",
        "--epochs",
        "2",
        "--out",
        tmp_path / "m2.npz",
    )
    assert "target 'col65'" in out


def test_digits_model_predicts_a_plain_64_column_file(tmp_path, capsys):
    train(capsys, "--epochs", "5", "--out", tmp_path / "m.npz")
    X, _ = load_digits(return_X_y=True)
    np.savetxt(tmp_path / "x.csv", X[:7], fmt="%g", delimiter=",")
    code, out, err = run(["predict", tmp_path / "m.npz", tmp_path / "x.csv"], capsys)
    assert code == 0, err
    assert predictions(out) == [
        str(v) for v in fn.load(tmp_path / "m.npz").predict(X[:7])
    ]
    (tmp_path / "w.csv").write_text("a,b,c\n1,2,3\n")
    code, _, err = run(["predict", tmp_path / "m.npz", tmp_path / "w.csv"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "lacks 64 of the model's columns (pixel0, pixel1" in err
    assert "and has 3 it does not use (a, b, c)" in err
    assert "64 columns without a header" in err


@pytest.mark.parametrize(
    "name,sep,bom",
    [("i.tsv", "\t", False), ("i.csv", ";", False), ("b.csv", ",", True)],
)
def test_other_delimiters_quotes_and_bom(tmp_path, capsys, name, sep, bom):
    f = iris()
    with open(tmp_path / name, "w", encoding="utf-8-sig" if bom else "utf-8") as fh:
        f.to_csv(fh, sep=sep, index=False)
    out, _ = train(
        capsys,
        "--data",
        tmp_path / name,
        "--target",
        "species",
        "--epochs",
        "60",
        "--out",
        tmp_path / "m.npz",
    )
    assert "text with 3 values in 150 rows" in out
    model = fn.load(tmp_path / "m.npz")
    assert model.preparation.features[0] == "sepal_length"  # no BOM in the name
    code, out, err = run(
        ["predict", tmp_path / "m.npz", tmp_path / name, "--proba"], capsys
    )
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))  # valid CSV: a class holds a comma
    assert rows[0] == ["setosa, small", "versicolor", "virginica"]
    np.testing.assert_allclose(
        np.array(rows[1:], dtype=float), model.predict_proba(f), rtol=1e-5
    )


def test_missing_cells_text_columns_and_an_integer_target(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 1000
    f = pd.DataFrame(
        {
            "height": rng.normal(170, 10, n).round(1),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
            "age": rng.integers(20, 61, n),
        }
    )
    f["score"] = f["age"] * 2 + (f["city"] == "Oslo") * 30 + rng.normal(0, 1, n)
    f = f[["height", "city", "score", "age"]]
    f.loc[rng.choice(n, 30, replace=False), "height"] = np.nan
    f.loc[rng.choice(n, 20, replace=False), "city"] = np.nan
    f.loc[[5, 9], "age"] = np.nan
    f.to_csv(tmp_path / "p.csv", index=False)
    out, _ = train(
        capsys,
        "--data",
        tmp_path / "p.csv",
        "--epochs",
        "60",
        "--out",
        tmp_path / "m.npz",
    )
    assert "dropped 2 rows whose target 'age' is missing" in out
    assert "task: regression (target 'age' has 41 integer values in 998 rows)" in out
    assert "imputed 50 missing cells: height (30), city (20)" in out
    assert held_out(out, "R^2") > 0.9 and "MAE" in out
    # --task overrides; --no-impute names the first missing cell
    out, _ = train(
        capsys,
        "--data",
        tmp_path / "p.csv",
        "--task",
        "classify",
        "--epochs",
        "2",
        "--out",
        tmp_path / "c.npz",
    )
    assert "task: classification (--task)" in out
    code, _, err = run(["train", "--data", tmp_path / "p.csv", "--no-impute"], capsys)
    first = f.drop(columns="age").isna().any(axis=1).idxmax()  # first row with a gap
    column = "height" if np.isnan(f.loc[first, "height"]) else "city"
    assert f"line {first + 2}, column {column!r} is empty (--no-impute)" in err
    # predict: imputes and says so; an unseen city encodes as zeros and is said once
    new = f.drop(columns="age").iloc[:6].copy()
    new.loc[0, "city"], new.loc[1, "city"] = "Quito", "Quito"
    new.loc[2, "height"] = np.nan
    new.to_csv(tmp_path / "new.csv", index=False)
    code, out, err = run(["predict", tmp_path / "m.npz", tmp_path / "new.csv"], capsys)
    assert code == 0, err
    assert err.count("Quito") == 1 and "encode as zeros" in err
    assert "imputed" in err
    model = fn.load(tmp_path / "m.npz")
    np.testing.assert_allclose(
        np.array(predictions(out), dtype=float), model.predict(new), rtol=1e-5
    )


def test_unscaled_numbers_train_as_well_as_scaled(tmp_path, capsys):
    rng = np.random.default_rng(1)
    m = 2000
    area, lot = rng.uniform(30, 300, m), rng.uniform(100, 1e5, m)
    rooms = rng.integers(1, 8, m)
    price = 2000 * area + 0.5 * lot + 1e4 * rooms + rng.normal(0, 5000, m)
    pd.DataFrame({"area": area, "lot": lot, "rooms": rooms, "price": price}).to_csv(
        tmp_path / "h.csv", index=False
    )
    out, _ = train(
        capsys,
        "--data",
        tmp_path / "h.csv",
        "--epochs",
        "100",
        "--out",
        tmp_path / "m.npz",
    )
    assert "task: regression (target 'price' has non-integer numbers)" in out
    assert held_out(out, "R^2") > 0.99
    code, out, _ = run(["info", tmp_path / "m.npz"], capsys)
    assert code == 0
    assert "lot: number, missing -> " in out and "standardised (mean 49" in out
    assert "trained standardised: mean" in out and "held-out  R^2 0.99" in out


def test_free_text_is_refused_and_can_be_dropped(tmp_path, capsys):
    f = iris()
    f.insert(0, "id", [f"plant-{i}" for i in range(len(f))])
    f.to_csv(tmp_path / "i.csv", index=False)
    code, _, err = run(["train", "--data", tmp_path / "i.csv"], capsys)
    assert code == 2 and "column 'id' is text with 150 different values" in err
    assert err.strip().endswith("leave it out with --drop id")
    train(
        capsys,
        "--data",
        tmp_path / "i.csv",
        "--drop",
        "id",
        "--epochs",
        "5",
        "--out",
        tmp_path / "m.npz",
    )
    # predict ignores the extra column, and says so
    code, out, err = run(["predict", tmp_path / "m.npz", tmp_path / "i.csv"], capsys)
    assert code == 0 and len(predictions(out)) == 150
    assert "ignoring columns the model does not use: id" in err


def test_info_describes_the_model(tmp_path, capsys):
    f = iris()
    f.to_csv(tmp_path / "i.csv", index=False)
    train(
        capsys,
        "--data",
        tmp_path / "i.csv",
        "--epochs",
        "5",
        "--hidden",
        "8",
        "--out",
        tmp_path / "m.npz",
    )
    code, out, err = run(["info", tmp_path / "m.npz"], capsys)
    assert code == 0, err
    for words in [
        "MLPClassifier, fastnet " + fn.__version__,
        "4 -> 8 -> 3 (relu; softmax output)",
        "setosa, small, versicolor, virginica (3)",
        "target    'species'",
        "112 training rows",
        "on 38 rows",
        "adam, learning rate 0.001",
        "5 epochs",
        "4 -> 4 prepared columns",
        "petal_width: number",
    ]:
        assert words in out, (words, out)


def test_npz_data(tmp_path, capsys):
    X, y = load_digits(return_X_y=True)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    train(
        capsys,
        "--data",
        tmp_path / "d.npz",
        "--epochs",
        "5",
        "--out",
        tmp_path / "m.npz",
    )
    np.savez(tmp_path / "x.npz", X=X[:4])
    code, out, err = run(["predict", tmp_path / "m.npz", tmp_path / "x.npz"], capsys)
    assert code == 0 and len(out.split()) == 4
    np.savez(tmp_path / "n.npz", X=X[:3, :10])
    code, _, err = run(["predict", tmp_path / "m.npz", tmp_path / "n.npz"], capsys)
    assert code == 2 and "expects 64 features" in err and "has 10" in err


def test_models_saved_from_python_still_predict(tmp_path, capsys):
    X, y = load_digits(return_X_y=True)
    est = fn.MLPClassifier(max_iter=3).fit(X, y)
    fn.save(est, tmp_path / "m.npz")
    np.savetxt(tmp_path / "x.csv", X[:3], fmt="%g", delimiter=",")
    code, out, err = run(["predict", tmp_path / "m.npz", tmp_path / "x.csv"], capsys)
    assert code == 0, err
    assert predictions(out) == [str(v) for v in est.predict(X[:3])]


@pytest.mark.parametrize(
    "args,words",
    [
        (["train", "--data", "missing.csv"], "no such file: missing.csv"),
        (["train", "--data", "{bad}", "--target", "nope"], "has no column 'nope'"),
        (["train", "--data", "{empty}"], "is empty"),
        (["train", "--data", "{dup}"], "names a more than once"),
        (["train", "--data", "{stray}"], "line 42, column 'b': 'zz' is not a number"),
        (["train", "--data", "{bad}", "--drop", "q"], "--drop: "),
        (["train", "--data", "{ids}"], "has 60 different values in 60 rows"),
        (["train", "--out", "no/such/dir/m.npz"], "no such folder"),
        (["train", "--out", "."], "is a folder"),
        (["train", "--sep", "x"], "--sep takes , ; | or tab"),
        (["train", "--hidden", "0"], "--hidden sizes must be positive"),
        (["predict", "missing.npz", "{bad}"], "no such file: missing.npz"),
        (["predict", "{model}", "{narrow}"], "lacks 62 of the model's columns"),
        (["predict", "{model}", "{nohead}"], "has 3 columns and no header"),
        (["predict", "{garbage}", "{narrow}"], "not an .npz file"),
        (["predict", "{model}", "{narrow}", "--proba", "--sep", ";"], "lacks"),
        (["info", "{garbage}"], "not an .npz file"),
    ],
)
def test_errors_are_one_line_without_traceback(
    args, words, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("a,b,c\n1,2,x\n3,zz,1\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "dup.csv").write_text("a,b,a\n1,2,3\n")
    (tmp_path / "stray.csv").write_text(
        "a,b,c\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(40)) + "1,zz,0\n"
    )
    (tmp_path / "narrow.csv").write_text("f0,f1\n1,2\n")
    (tmp_path / "ids.csv").write_text(
        "x,name\n" + "".join(f"{i},n{i}\n" for i in range(60))
    )
    (tmp_path / "nohead.csv").write_text("1,2,3\n4,5,6\n")
    (tmp_path / "garbage.npz").write_bytes(b"\x00" * 100)
    X, y = load_digits(return_X_y=True)
    fn.save(
        fn.MLPClassifier(max_iter=1).fit(X, y),
        tmp_path / "model.npz",
        metadata={"features": [f"f{i}" for i in range(64)]},
    )
    names = ("bad", "empty", "dup", "stray", "narrow", "nohead", "ids", "model")
    names += ("garbage",)
    files = {
        k: str(tmp_path / f"{k}.{'npz' if k in ('model', 'garbage') else 'csv'}")
        for k in names
    }
    code, _out, err = run([a.format(**files) for a in args], capsys)
    assert code == 2
    assert words in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_failing_run_keeps_the_old_model_file(tmp_path, capsys, monkeypatch):
    model = tmp_path / "m.npz"
    model.write_bytes(b"PK\x03\x04 the old model")
    # --plot without matplotlib fails before training
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run(
        ["train", "--epochs", "2", "--out", model, "--plot", tmp_path / "p.png"],
        capsys,
    )
    assert code == 2 and "--plot needs matplotlib" in err
    assert "training" not in err and model.read_bytes() == b"PK\x03\x04 the old model"


def test_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "loss.png"
    train(capsys, "--epochs", "4", "--out", tmp_path / "m.npz", "--plot", png)
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000


def test_checkpoint_resume_equals_uninterrupted(tmp_path, capsys, monkeypatch):
    base = ["--hidden", "32", "--solver", "sgd"]
    train(capsys, *base, "--epochs", "12", "--out", tmp_path / "straight.npz")
    calls = {"n": 0}
    real_save = checkpoint.save_checkpoint

    def dies_after_five(model, path, info, sample_order):
        real_save(model, path, info, sample_order)
        calls["n"] += 1
        if calls["n"] == 5:
            raise SystemError("killed")  # as if the process died after a save

    monkeypatch.setattr(checkpoint, "save_checkpoint", dies_after_five)
    ckpt = tmp_path / "ckpt.npz"
    code, _, err = run(
        [
            "train",
            *base,
            "--epochs",
            "8",
            "--checkpoint",
            ckpt,
            "--out",
            tmp_path / "x.npz",
        ],
        capsys,
    )
    assert code != 0 and "killed" in err
    monkeypatch.setattr(checkpoint, "save_checkpoint", real_save)
    # --epochs counts all epochs: 5 done, 7 more
    code, _out, err = run(
        [
            "train",
            "--checkpoint",
            ckpt,
            "--resume",
            "--epochs",
            "12",
            "--out",
            tmp_path / "resumed.npz",
        ],
        capsys,
    )
    assert code == 0, err
    a = fn.load(tmp_path / "straight.npz").estimator
    b = fn.load(tmp_path / "resumed.npz").estimator
    assert a.n_iter_ == b.n_iter_ == 12
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(p, q)
    assert a.loss_curve_ == b.loss_curve_
    code, _, err = run(
        ["train", "--checkpoint", ckpt, "--resume", "--epochs", "3"], capsys
    )
    assert code == 2 and "has trained 12 epochs already" in err


def test_resume_from_the_last_checkpoint_of_a_stopped_run(
    tmp_path, capsys, monkeypatch
):
    # the run stops by the tol / n_iter_no_change rule; a kill after its last
    # checkpoint and before the model's save resumes to the same model, no epoch more
    base = ["--hidden", "16", "--lr", "0.03", "--epochs", "300"]
    saves = {"n": 0}
    real_save = checkpoint.save_checkpoint

    def counting(model, path, info, sample_order):
        real_save(model, path, info, sample_order)
        saves["n"] += 1

    monkeypatch.setattr(checkpoint, "save_checkpoint", counting)
    train(capsys, *base, "--checkpoint", tmp_path / "a.npz", "--out", tmp_path / "a")
    straight = fn.load(tmp_path / "a").estimator
    assert straight.n_iter_ == saves["n"] < 300  # it stopped, one save an epoch
    last = saves["n"]

    def dies_after_the_last(model, path, info, sample_order):
        real_save(model, path, info, sample_order)
        saves["n"] += 1
        if saves["n"] == 2 * last:
            raise SystemError("killed")  # after the last save, before the model's

    monkeypatch.setattr(checkpoint, "save_checkpoint", dies_after_the_last)
    ckpt = tmp_path / "b.npz"
    code, _, err = run(["train", *base, "--checkpoint", ckpt, "--out", tmp_path / "x"],
                       capsys)  # fmt: skip
    assert code != 0 and "killed" in err
    monkeypatch.setattr(checkpoint, "save_checkpoint", real_save)
    code, _, err = run(["train", "--checkpoint", ckpt, "--resume", "--out",
                        tmp_path / "resumed"], capsys)  # fmt: skip
    assert code == 0, err
    resumed = fn.load(tmp_path / "resumed").estimator
    assert resumed.n_iter_ == straight.n_iter_
    assert resumed.loss_curve_ == straight.loss_curve_
    for p, q in zip(straight.coefs_ + straight.intercepts_,
                    resumed.coefs_ + resumed.intercepts_, strict=True):  # fmt: skip
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_no_scale_model_loads_and_predicts(task, tmp_path, capsys):
    # its preparation's scale flag and the target's scale once shared a key, so a
    # --no-scale model could not be loaded; files written so still load
    data = []
    if task == "regression":
        X, y = load_diabetes(return_X_y=True)
        np.savez(tmp_path / "d.npz", X=X, y=y)
        data = ["--data", tmp_path / "d.npz"]
    model = tmp_path / "m.npz"
    train(capsys, *data, "--no-scale", "--hidden", "8", "--epochs", "2", "--out", model)
    loaded = fn.load(model)
    assert not loaded.preparation.scale
    rows = loaded.preparation.features
    frame = pd.DataFrame(np.ones((3, len(rows))), columns=rows)
    want = loaded.predict(frame)
    # the same file as the format wrote it before: shift / scale over the flag
    with zipfile.ZipFile(model) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(np.load(io.BytesIO(members["__meta__.npy"])).item())
    prep = meta["preparation"]
    prep["shift"], prep["scale"] = prep.pop("target_shift"), prep.pop("target_scale")
    buffer = io.BytesIO()
    np.save(buffer, np.array(json.dumps(meta)))
    members["__meta__.npy"] = buffer.getvalue()
    old = tmp_path / "old.npz"
    with zipfile.ZipFile(old, "w") as z:
        for name, data_bytes in members.items():
            z.writestr(name, data_bytes)
    before = fn.load(old)
    assert not before.preparation.scale and before.scale == loaded.scale
    np.testing.assert_array_equal(before.predict(frame), want)


def test_diverging_training_is_a_one_line_error(tmp_path, capsys):
    X, y = load_diabetes(return_X_y=True)
    np.savez(tmp_path / "d.npz", X=X * 1e6, y=y)
    args = ["train", "--data", tmp_path / "d.npz", "--no-scale", "--solver", "sgd"]
    code, _out, err = run(
        [*args, "--lr", "1", "--epochs", "5", "--out", tmp_path / "m.npz"], capsys
    )
    assert code == 2 and "Traceback" not in err and not (tmp_path / "m.npz").exists()
    last = err.strip().splitlines()[-1]
    assert last.startswith("fastnet: error: training diverged") and "--lr" in last


def test_a_single_class_target_is_a_one_line_error(tmp_path, capsys):
    X, _ = load_digits(return_X_y=True)
    data = write_csv(tmp_path / "one.csv", X[:40], ["yes"] * 40)
    code, _out, err = run(["train", "--data", data], capsys)
    assert code == 2 and "Traceback" not in err
    assert "one class only (yes)" in err and len(err.strip().splitlines()) == 1


def test_a_run_never_writes_over_its_data_or_a_file_that_is_not_a_model(
    tmp_path, capsys
):
    iris().to_csv(tmp_path / "i.csv", index=False)
    before = (tmp_path / "i.csv").read_bytes()
    (tmp_path / "notes.txt").write_text("mine")
    cases = [
        (["--out", tmp_path / "i.csv"], "--out"),
        (["--out", tmp_path / "notes.txt"], "is not a model file"),
        (
            ["--checkpoint", tmp_path / "m.npz", "--out", tmp_path / "m.npz"],
            "different",
        ),
        (["--plot", tmp_path / "p.txt"], "--plot"),
    ]
    for extra, words in cases:
        if "--plot" in extra:
            pytest.importorskip("matplotlib")
        code, _out, err = run(["train", "--data", tmp_path / "i.csv", *extra], capsys)
        assert code == 2 and words in err and "training" not in err, err
    assert (tmp_path / "i.csv").read_bytes() == before
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_ctrl_c_keeps_the_old_model_and_says_where_the_checkpoint_is(
    tmp_path, capsys, monkeypatch
):
    model = tmp_path / "m.npz"
    train(capsys, "--epochs", "2", "--hidden", "8", "--out", model)
    old = model.read_bytes()
    real_save = checkpoint.save_checkpoint
    calls = {"n": 0}

    def ctrl_c_after_three(m, path, info, sample_order):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        real_save(m, path, info, sample_order)

    monkeypatch.setattr(checkpoint, "save_checkpoint", ctrl_c_after_three)
    ckpt = tmp_path / "c.npz"
    code, out, err = run(
        ["train", "--hidden", "8", "--out", model, "--checkpoint", ckpt], capsys
    )
    assert code == 130 and "Warning" not in err and "held-out" not in out
    assert err.strip().splitlines()[-1] == (
        f"fastnet: interrupted after 4 epochs: the model file was not written; the "
        f"checkpoint {ckpt} holds epoch 3: add --resume to go on"
    )
    assert model.read_bytes() == old


def test_checkpoints_go_through_callbacks_that_leave_no_trace(tmp_path, capsys):
    f = iris()
    f.to_csv(tmp_path / "i.csv", index=False)
    ckpt, model = tmp_path / "c.npz", tmp_path / "m.npz"
    data = ["--data", tmp_path / "i.csv"]
    train(capsys, *data, "--epochs", "2", "--checkpoint", ckpt, "--out", model)
    # the fit's callbacks are the fit's: neither file carries them
    for path in (ckpt, model):
        assert fn.load(path).estimator.get_params()["callbacks"] is None
    # the optimizer's state in the codec every fastnet checkpoint uses, and the
    # order of the last epoch's rows
    with np.load(ckpt, allow_pickle=False) as saved:
        arrays = {k: saved[k] for k in saved.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    assert any(k.startswith("opt/") for k in arrays)
    assert sorted(arrays["sample_order"]) == list(range(len(arrays["sample_order"])))
    assert meta["checkpoint"]["n_iter"] == 2
    # the same columns but other rows: the saved order does not fit them
    f.iloc[::2].to_csv(tmp_path / "i.csv", index=False)
    code, _, err = run(
        ["train", *data, "--checkpoint", ckpt, "--resume", "--epochs", "4"], capsys
    )
    assert code == 2 and err.strip().splitlines()[-1] == (
        "fastnet: error: the checkpoint was made on other data"
    )


def test_resume_refuses_settings_it_cannot_change(tmp_path, capsys):
    ckpt = tmp_path / "c.npz"
    train(
        capsys,
        "--epochs",
        "3",
        "--hidden",
        "8",
        "--checkpoint",
        ckpt,
        "--out",
        tmp_path / "m.npz",
    )
    code, _, err = run(
        [
            "train",
            "--checkpoint",
            ckpt,
            "--resume",
            "--epochs",
            "5",
            "--lr",
            "0.5",
            "--hidden",
            "10",
        ],
        capsys,
    )
    assert code == 2 and "--hidden, --lr cannot change" in err
    code, _, err = run(
        ["train", "--checkpoint", tmp_path / "no.npz", "--resume"], capsys
    )
    assert code == 2 and "no such checkpoint" in err
    iris().to_csv(tmp_path / "i.csv", index=False)
    code, _, err = run(
        ["train", "--data", tmp_path / "i.csv", "--checkpoint", ckpt, "--resume"],
        capsys,
    )
    assert code == 2 and "trained on (the digits data)" in err


def test_european_files_saved_indexes_and_question_marks(tmp_path, capsys):
    wine = load_wine_frame()
    wine.to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False)
    out, _ = train(
        capsys,
        "--data",
        tmp_path / "eu.csv",
        "--epochs",
        "40",
        "--out",
        tmp_path / "m.npz",
    )
    assert "read numbers with decimal commas" in out and held_out(out) > 0.9
    # pandas' to_csv with its index: an unnamed first column
    f = iris()
    f.loc[[3, 7], "sepal_width"] = np.nan
    f.to_csv(tmp_path / "i.csv", na_rep="?")
    out, _ = train(
        capsys,
        "--data",
        tmp_path / "i.csv",
        "--epochs",
        "5",
        "--out",
        tmp_path / "i.npz",
    )
    assert "left out the first column: it has no name (a saved index)" in out
    assert "imputed 2 missing cells: sepal_width (2)" in out
    assert fn.load(tmp_path / "i.npz").preparation.features[0] == "sepal_length"


def load_wine_frame():
    from sklearn.datasets import load_wine

    f = load_wine(as_frame=True).frame
    f["target"] = np.array(["a", "b", "c"])[f["target"]]
    return f


def test_booleans_with_gaps_and_full_precision_regression(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 300
    smoker = rng.choice([True, False], n)
    bmi = rng.normal(25, 4, n)
    f = pd.DataFrame({"smoker": smoker, "bmi": bmi})
    f["cost"] = 1_000_000 + 5e5 * smoker + 1e4 * bmi + rng.normal(0, 1e3, n)
    f.to_csv(tmp_path / "c.csv", index=False)
    train(
        capsys,
        "--data",
        tmp_path / "c.csv",
        "--epochs",
        "30",
        "--out",
        tmp_path / "m.npz",
    )
    (tmp_path / "new.csv").write_text("smoker,bmi\nTrue,30\n,25\nFalse,22\n")
    code, out, err = run(["predict", tmp_path / "m.npz", tmp_path / "new.csv"], capsys)
    assert code == 0, err
    assert "imputed 1 missing cell: smoker (1)" in err
    values = [float(v) for v in predictions(out)]
    model = fn.load(tmp_path / "m.npz")
    expected = model.predict(pd.read_csv(tmp_path / "new.csv"))
    assert values == list(expected)  # every digit, no 6-digit rounding
