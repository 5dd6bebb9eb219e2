"""fastnet.sklearn._compat: the one module that touches scikit-learn's private
internals."""

import ast
import pathlib
import subprocess
import sys
from typing import ClassVar

import pytest
import sklearn

import fastnet
import fastnet.kernels
from fastnet.sklearn import _compat as _sklearn

ROOT = pathlib.Path(__file__).resolve().parents[1]
(LO_MAJOR, LO_MINOR), (HI_MAJOR, HI_MINOR) = _sklearn.TESTED
RANGE = f"tested with scikit-learn {LO_MAJOR}.{LO_MINOR} to {HI_MAJOR}.{HI_MINOR}"


def _floor(name):
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        if requirement.startswith(f"{name}>="):
            return requirement.split(">=")[1]
    raise AssertionError(f"pyproject.toml declares no floor for {name}")


def test_tested_range_starts_at_the_declared_floor():
    assert _floor("scikit-learn") == f"{LO_MAJOR}.{LO_MINOR}"


def test_installed_scikit_learn_is_in_the_tested_range():
    # A release newer than TESTED[1]: run .ci/versions.sh with it, then raise
    # TESTED[1] (and the README's range) once the tests pass.
    version = _sklearn.release(sklearn.__version__)
    assert _sklearn.TESTED[0] <= version <= _sklearn.TESTED[1], sklearn.__version__


def test_no_other_module_imports_scikit_learn_internals():
    # the installed sources (in a wheel, fastnet.kernels lives inside fastnet/)
    folder = pathlib.Path(fastnet.__file__).parent
    kernels = pathlib.Path(fastnet.kernels.__file__).parent
    paths = sorted({*folder.rglob("*.py"), *kernels.glob("*.py")})
    assert folder / "sklearn" / "_compat.py" in paths
    for path in paths:
        if path == folder / "sklearn" / "_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                modules, names = [node.module or ""], [a.name for a in node.names]
            elif isinstance(node, ast.Import):  # (fastnet.sklearn: relative, level 1+)
                modules, names = [a.name for a in node.names], []
            else:
                continue
            for module in modules:
                if module.split(".")[0] == "sklearn":
                    private = [n for n in [*module.split("."), *names] if n[:1] == "_"]
                    assert not private, f"{path.name}:{node.lineno} imports {private}"


def test_a_changed_private_method_names_the_tested_range():
    class Old(_sklearn.SkMLPClassifier):  # scikit-learn 1.6's _fit
        def _fit(self, X, y, incremental=False):
            pass

    with pytest.raises(ImportError) as info:
        _sklearn.check_internals(Old, _sklearn.SkMLPRegressor)
    message = str(info.value)
    assert RANGE in message
    assert "Old._fit(X, y, incremental)" in message
    assert sklearn.__version__ in message


def test_a_missing_private_method_or_regressor_loss_is_an_import_error():
    class NoStopping(_sklearn.SkMLPRegressor):
        _update_no_improvement_count = None

    class NoLoss(_sklearn.SkMLPRegressor):
        _parameter_constraints: ClassVar[dict] = {
            k: v
            for k, v in _sklearn.SkMLPRegressor._parameter_constraints.items()
            if k != "loss"
        }

    with pytest.raises(ImportError, match=r"NoStopping\._update_no_improvement_count"):
        _sklearn.check_internals(_sklearn.SkMLPClassifier, NoStopping)
    with pytest.raises(ImportError, match=r"NoLoss\(loss=...\)"):
        _sklearn.check_internals(_sklearn.SkMLPClassifier, NoLoss)


def test_an_older_scikit_learn_fails_at_import_naming_the_range(tmp_path):
    old = f"{LO_MAJOR}.{LO_MINOR - 1}.1" if LO_MINOR else f"{LO_MAJOR - 1}.99.0"
    # (the estimators, and with them the check, load on first use of their names)
    code = (
        f"import sklearn; sklearn.__version__ = {old!r}; "
        "import fastnet; fastnet.MLPClassifier"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "ImportError: fastnet's estimators" in out.stderr
    assert RANGE in out.stderr
    assert f"scikit-learn {old} is older" in out.stderr
