"""A cold cache's background compilation
(``fastnet._runtime.native.compile_in_background``):
a helper process compiles the epoch and the prediction kernels while the process
that started it imports and reads its data; the results are the bits of a process
that compiled everything itself, and a helper that fails changes nothing but time.

The suite turns it off (tests/conftest.py); each case here turns it on for fresh
processes with a cache folder of their own.
"""

import fcntl
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from fastnet._runtime import native as _native
from tests.processes import fresh_env, pythons_at_once

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the native cache is Linux-only"
)

FIT = """
import sys, warnings, numpy as np
warnings.simplefilter("ignore")
import fastnet as fn
from fastnet import MLPClassifier
from fastnet._runtime import background as _background
from fastnet._runtime import native as _native
from sklearn.datasets import load_digits
{before}
X, y = load_digits(return_X_y=True)
m = MLPClassifier((15,), max_iter=5, random_state=0).fit(X[:500], y[:500])
print(_native.in_background("c_epoch"), "numba" in sys.modules)
print(repr(float(m.loss_)), m.coefs_[0].tobytes().hex()[:400])
{after}
"""
PREDICT = "print(m.predict_proba(X[::7]).tobytes().hex())"


def _env(cache, background):
    return fresh_env(cache, FASTNET_BACKGROUND_COMPILE="1" if background else "0")


def _run(cmd, cache, background):
    run = subprocess.run(
        cmd, env=_env(cache, background), capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.splitlines()


def _python(code, cache, background):
    return _run([sys.executable, "-c", code], cache, background)


def _settled(cache):
    """The cache's object names, once no background helper holds its lock."""
    for lock in pathlib.Path(cache).rglob("background.lock"):
        with open(lock, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
    return {p.stem for p in pathlib.Path(cache).rglob("native-*/*.o")}


def test_a_helper_compiles_the_epoch_and_prediction_kernels(tmp_path):
    on, off = tmp_path / "on", tmp_path / "off"
    code = FIT.format(before="", after="")
    with_helper = _python(code, on, True)
    assert with_helper[0] == "True True"  # the helper owned c_epoch
    names = _settled(on)
    # the helper finished its list, prediction kernels included, though the
    # script never predicted
    assert set(_native.BACKGROUND) <= names
    without = _python(code, off, False)
    assert without[0] == "False True"
    assert without[1] == with_helper[1]
    assert "c_forward" not in _settled(off)  # nothing compiled what was not used
    # the next process loads everything, and predicts to the same bits
    warm = _python(FIT.format(before="", after=PREDICT), on, True)
    assert warm[0] == "False False"  # nothing to compile: no helper, no Numba
    cold = _python(FIT.format(before="", after=PREDICT), off, False)
    assert warm[1:] == cold[1:]


def test_a_helper_that_fails_leaves_the_work_to_the_process(tmp_path):
    """A helper that exits without compiling: the process compiles the kernels it
    waited for itself, as without a helper."""
    dead = (
        "import subprocess\n"
        "_background._state['background'] = (__import__('os').getpid(), "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(0.5)']), "
        "frozenset(_native.BACKGROUND))"
    )
    code = FIT.format(before=dead, after=PREDICT)
    failed = _python(code, tmp_path / "dead", True)
    assert failed[0] == "True True"
    assert set(_native.BACKGROUND) <= _settled(tmp_path / "dead")
    alone = _python(FIT.format(before="", after=PREDICT), tmp_path / "off", False)
    assert failed[1:] == alone[1:]


def test_fastnet_train_with_a_helper_saves_the_same_model(tmp_path):
    models = []
    for background in (True, False):
        cache = tmp_path / f"cache-{background}"
        out = tmp_path / f"model-{background}.npz"
        cmd = [sys.executable, "-m", "fastnet.tabular.cli", "train", "--epochs", "3"]
        lines = _run([*cmd, "--out", str(out)], cache, background)
        assert lines[-1] == f"saved model to {out}"
        assert set(_native.BACKGROUND) <= _settled(cache)  # train predicts too
        models.append(np.load(out))
    on, off = models
    assert sorted(on.files) == sorted(off.files)
    for key in on.files:
        if on[key].dtype.kind == "f":
            np.testing.assert_array_equal(on[key], off[key], err_msg=key)


def test_two_cold_processes_share_one_helper_lock(tmp_path):
    """Two processes start on one empty cache at once, each with a helper: the
    helpers take turns on the lock, and both processes get the same bits."""
    code = FIT.format(before="", after=PREDICT)
    env = _env(tmp_path / "shared", True)
    first, second = (out.splitlines() for out in pythons_at_once(code, env))
    assert first[1:] == second[1:]
    assert set(_native.BACKGROUND) <= _settled(tmp_path / "shared")
    alone = _python(code, tmp_path / "off", False)
    assert first[1:] == alone[1:]


def test_off_by_setting_and_where_the_cache_is_full(tmp_path):
    code = (
        "from fastnet import MLPClassifier\n"
        "from fastnet._runtime import background as _background\n"
        "print(_background._state.get('background'))"
    )
    assert _python(code, tmp_path / "a", False) == ["None"]
    started = _python(code, tmp_path / "b", True)
    assert started[0].startswith("(") and "c_epoch" in started[0]
    _settled(tmp_path / "b")
    assert _python(code, tmp_path / "b", True) == ["None"]  # nothing missing
