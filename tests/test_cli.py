"""The fastnet command: train, predict, errors as one line, checkpoints and resume."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits

import fastnet as fn
from fastnet import cli


def run(args, capsys):
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def write_csv(path, X, y, names=None, target="label"):
    names = names or [f"f{i}" for i in range(X.shape[1])]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*names, target])
        for row, t in zip(X, y, strict=True):
            w.writerow([*row, t])
    return path


def test_train_on_digits_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["train"], capsys)
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if "accuracy" in ln)
    assert float(line.split("accuracy ")[1].split()[0]) >= 0.97
    assert "trained in" in out and "saved model to fastnet-model.npz" in out
    assert "training" in err  # the progress bar
    assert isinstance(fn.load(tmp_path / "fastnet-model.npz"), fn.MLPClassifier)


def test_the_installed_command_runs(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastnet.cli",
            "train",
            "--epochs",
            "3",
            "--out",
            tmp_path / "m.npz",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "accuracy" in out.stdout


def test_csv_train_and_predict_with_string_labels(tmp_path, capsys):
    X, y = load_digits(return_X_y=True)
    names = np.array(list("abcdefghij"))[y]
    data = write_csv(tmp_path / "d.csv", X[:600], names[:600])
    model = tmp_path / "m.npz"
    code, out, err = run(
        [
            "train",
            "--data",
            data,
            "--target",
            "label",
            "--hidden",
            "32",
            "--epochs",
            "40",
            "--out",
            model,
        ],
        capsys,
    )
    assert code == 0, err and "accuracy" in out
    # predict ignores the target column and reorders columns by name
    shuffled = tmp_path / "p.csv"
    write_csv(
        shuffled,
        X[600:610][:, ::-1],
        names[600:610],
        [f"f{i}" for i in range(63, -1, -1)],
    )
    code, out, err = run(["predict", model, shuffled], capsys)
    assert code == 0, err
    est = fn.load(model)
    assert out.split() == list(est.predict(X[600:610]))
    code, out, err = run(["predict", model, shuffled, "--proba"], capsys)
    lines = out.strip().splitlines()
    assert lines[0] == ",".join("abcdefghij") and len(lines) == 11
    np.testing.assert_allclose(
        np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]]),
        est.predict_proba(X[600:610]),
        rtol=1e-5,
    )


def test_regression_is_inferred(tmp_path, capsys):
    X, y = load_diabetes(return_X_y=True)
    data = write_csv(tmp_path / "r.csv", X, y)
    code, out, err = run(
        [
            "train",
            "--data",
            data,
            "--epochs",
            "20",
            "--hidden",
            "16",
            "--lr",
            "0.01",
            "--out",
            tmp_path / "r.npz",
        ],
        capsys,
    )
    assert code == 0, err
    assert "R^2" in out
    assert isinstance(fn.load(tmp_path / "r.npz"), fn.MLPRegressor)


def test_npz_data(tmp_path, capsys):
    X, y = load_digits(return_X_y=True)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    code, out, err = run(
        [
            "train",
            "--data",
            tmp_path / "d.npz",
            "--epochs",
            "5",
            "--out",
            tmp_path / "m.npz",
        ],
        capsys,
    )
    assert code == 0, err
    np.savez(tmp_path / "x.npz", X=X[:4])
    code, out, err = run(["predict", tmp_path / "m.npz", tmp_path / "x.npz"], capsys)
    assert code == 0 and len(out.split()) == 4


@pytest.mark.parametrize(
    "args,words",
    [
        (["train", "--data", "missing.csv"], "no such file: missing.csv"),
        (
            ["train", "--data", "{bad}", "--target", "c"],
            "row 3, column 'b': 'zz' is not a number",
        ),
        (["train", "--data", "{bad}", "--target", "nope"], "has no column 'nope'"),
        (["train", "--data", "{empty}"], "is empty"),
        (["train", "--data", "{ragged}"], "row 2 has 2 cells"),
        (["predict", "missing.npz", "{bad}"], "no such file: missing.npz"),
        (["predict", "{model}", "{narrow}"], "lacks the column"),
        (["predict", "{garbage}", "{narrow}"], "not an .npz file"),
    ],
)
def test_errors_are_one_line_without_traceback(
    args, words, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("a,b,c\n1,2,x\n3,zz,1\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "ragged.csv").write_text("a,b,c\n1,2\n")
    (tmp_path / "narrow.csv").write_text("f0,f1\n1,2\n")
    (tmp_path / "garbage.npz").write_bytes(b"\x00" * 100)
    X, y = load_digits(return_X_y=True)
    fn.save(
        fn.MLPClassifier(max_iter=1).fit(X, y),
        tmp_path / "model.npz",
        metadata={"features": [f"f{i}" for i in range(64)]},
    )
    files = {
        k: str(tmp_path / f"{k}.{'npz' if k in ('model', 'garbage') else 'csv'}")
        for k in ("bad", "empty", "ragged", "narrow", "model", "garbage")
    }
    code, _out, err = run([a.format(**files) for a in args], capsys)
    assert code != 0
    assert words in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_width_mismatch_without_column_names(tmp_path, capsys):
    X, y = load_digits(return_X_y=True)
    fn.save(fn.MLPClassifier(max_iter=1).fit(X, y), tmp_path / "m.npz")
    np.savez(tmp_path / "x.npz", X=X[:3, :10])
    code, _out, err = run(["predict", tmp_path / "m.npz", tmp_path / "x.npz"], capsys)
    assert code == 2 and "expects 64 features" in err and "has 10" in err


def test_plot_or_a_clear_message(tmp_path, capsys):
    code, _out, err = run(
        [
            "train",
            "--epochs",
            "3",
            "--out",
            tmp_path / "m.npz",
            "--plot",
            tmp_path / "loss.png",
        ],
        capsys,
    )
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert code == 2 and "pip install 'fastnet[plot]'" in err
    else:
        assert code == 0 and (tmp_path / "loss.png").stat().st_size > 1000


def test_checkpoint_resume_equals_uninterrupted(tmp_path, capsys, monkeypatch):
    base = ["train", "--epochs", "12", "--hidden", "32", "--solver", "sgd"]
    code, _, err = run([*base, "--out", tmp_path / "straight.npz"], capsys)
    assert code == 0, err
    calls = {"n": 0}
    real_save = cli._save_checkpoint

    def dies_after_five(est, path, user):
        real_save(est, path, user)
        calls["n"] += 1
        if calls["n"] == 5:
            raise SystemError("killed")  # as if the process died after a save

    monkeypatch.setattr(cli, "_save_checkpoint", dies_after_five)
    ckpt = tmp_path / "ckpt.npz"
    code, _, err = run(
        [*base, "--checkpoint", ckpt, "--out", tmp_path / "x.npz"], capsys
    )
    assert code != 0 and "killed" in err
    monkeypatch.setattr(cli, "_save_checkpoint", real_save)
    code, _out, err = run(
        [*base, "--checkpoint", ckpt, "--resume", "--out", tmp_path / "resumed.npz"],
        capsys,
    )
    assert code == 0, err
    a, b = fn.load(tmp_path / "straight.npz"), fn.load(tmp_path / "resumed.npz")
    assert a.n_iter_ == b.n_iter_ == 12
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(p, q)
    assert a.loss_curve_ == b.loss_curve_


def test_diverging_training_is_a_one_line_error(tmp_path, capsys):
    X, y = load_diabetes(return_X_y=True)
    np.savez(tmp_path / "d.npz", X=X, y=y * 1e6)
    args = ["train", "--data", tmp_path / "d.npz", "--solver", "sgd", "--lr", "1"]
    code, _out, err = run([*args, "--epochs", "5", "--out", tmp_path / "m.npz"], capsys)
    assert code == 2 and "Traceback" not in err and not (tmp_path / "m.npz").exists()
    last = err.strip().splitlines()[-1]
    assert last.startswith("fastnet: error: training diverged") and "--lr" in last


def test_a_single_class_target_is_a_one_line_error(tmp_path, capsys):
    X, _ = load_digits(return_X_y=True)
    data = write_csv(tmp_path / "one.csv", X[:40], ["yes"] * 40)
    code, _out, err = run(["train", "--data", data], capsys)
    assert code == 2 and "Traceback" not in err
    assert "one class only (yes)" in err and len(err.strip().splitlines()) == 1
