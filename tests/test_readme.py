"""Every code block in README.md runs: the Python examples as they are, the command
lines through fastnet.cli on small stand-in files."""

import pathlib
import re
import shlex

import numpy as np
import pytest
from sklearn.datasets import load_digits

from fastnet import cli

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
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})


@pytest.fixture
def stand_in_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    price = X @ [3.0, -1.0, 0.5, 2.0] + rng.standard_normal(200) * 0.1
    header = "rooms,age,floor,area"
    rows = "\n".join(",".join(f"{v:.4f}" for v in r) for r in X)
    (tmp_path / "houses.csv").write_text(
        header
        + ",price\n"
        + "\n".join(
            f"{r},{p:.4f}" for r, p in zip(rows.splitlines(), price, strict=True)
        )
    )
    (tmp_path / "new.csv").write_text(header + "\n" + "\n".join(rows.splitlines()[:5]))
    pixels = ",".join(f"pixel{i}" for i in range(64))
    digits = "\n".join(",".join(str(v) for v in r) for r in load_digits().data[:5])
    (tmp_path / "digits.csv").write_text(pixels + "\n" + digits)
    return tmp_path


def test_console_lines_run(stand_in_files, capsys):
    ran = []
    for line in CONSOLE:
        argv = shlex.split(line)[1:]
        if argv[:1] == ["bench"]:
            continue  # minutes long: the benchmark suite runs it
        if argv[0] == "train" and "--epochs" not in argv:
            argv += ["--epochs", "20"]
        code = cli.main(argv)
        out = capsys.readouterr()
        assert code == 0, (line, out.err)
        ran.append(argv[0])
    assert ran.count("train") == 3 and ran.count("predict") == 2
