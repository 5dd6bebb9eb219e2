"""Every code block in README.md runs: the Python examples as they are, the command
lines through fastnet.tabular.cli on small stand-in files."""

import pathlib
import re
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from fastnet.tabular import cli

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()
PYTHON = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
CONSOLE = [
    line[2:].split("#")[0].strip()
    for block in re.findall(r"```console\n(.*?)```", TEXT, flags=re.S)
    for line in block.splitlines()
    if line.startswith("$ ")
]
FIRST = re.search(r"```\n(.*?)```", TEXT, flags=re.S).group(1).splitlines()


def test_readme_opens_with_the_two_commands():
    assert FIRST == [
        "pip install . && fastnet train",
        "pip install -e '.[test]' && pytest",
    ]
    assert PYTHON and CONSOLE


@pytest.mark.parametrize("code", PYTHON, ids=[f"python{i}" for i in range(len(PYTHON))])
def test_python_block_runs(code, tmp_path, monkeypatch):
    if "dask" in code:
        pytest.importorskip("distributed")  # the dist extra (the test extra has it)
    monkeypatch.chdir(tmp_path)
    if 'if __name__ == "__main__":' in code:
        # as a user runs it: saved as a script (worker processes import it)
        (tmp_path / "example.py").write_text(code)
        done = subprocess.run(
            [sys.executable, "example.py"], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})


def write_stand_in_files(folder):
    """The files README's command-line session uses: houses.csv (unscaled numbers, a
    text column, missing cells), new.csv (rows to predict, one with a city never
    seen) and digits.csv (64 pixel columns, no header)."""
    rng = np.random.default_rng(0)
    n = 2000
    area = rng.uniform(30, 300, n).round(1)
    lot = rng.uniform(100, 1e5, n).round()
    built = rng.integers(1900, 2025, n).astype(float)
    city = rng.choice(["Oslo", "Lima", "Pune"], n).astype(object)
    price = 2000 * area + 0.5 * lot + 300 * (built - 1900) + 40_000 * (city == "Oslo")
    price = (price + rng.normal(0, 5000, n)).round(-2)
    built[rng.choice(n, 41, replace=False)] = np.nan
    city[rng.choice(n, 20, replace=False)] = None
    frame = pd.DataFrame(
        {"area": area, "lot": lot, "built": built, "city": city, "price": price}
    )
    frame.to_csv(folder / "houses.csv", index=False)
    new = frame.drop(columns="price").iloc[:4].copy()
    new.loc[1, "city"] = "Quito"
    new.to_csv(folder / "new.csv", index=False)
    np.savetxt(folder / "digits.csv", load_digits().data[:3], fmt="%g", delimiter=",")


@pytest.fixture
def stand_in_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_stand_in_files(tmp_path)
    return tmp_path


def test_console_lines_run(stand_in_files, capsys):
    ran = []
    for line in CONSOLE:
        words = shlex.split(line)
        if words[0] == "python":  # a helper line: run it as it is
            subprocess.run([sys.executable, *words[1:]], check=True)
            continue
        argv = words[1:]
        if argv[:1] in (["bench"], ["compile"]):
            continue  # minutes long: the benchmark suite, test_precompile run them
        if argv[0] == "train" and "--epochs" not in argv:
            argv += ["--epochs", "20"]
        code = cli.main(argv)
        out = capsys.readouterr()
        assert code == 0, (line, out.err)
        ran.append(argv[0])
    assert ran.count("train") == 3 and ran.count("predict") == 2
