"""``fastnet compile``: every C kernel compiled ahead of time, in worker processes,
into the native cache; afterwards every setting's first fit and prediction runs
without Numba, to the bits of a process that compiled its kernels itself.

Each case runs the command in fresh processes with a cache folder of its own.
"""

import itertools
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from fastnet import kernels
from fastnet._runtime import native as _native
from tests.processes import fresh_env, python_lines

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the native cache is Linux-only"
)

SETTINGS = """
import sys, warnings, numpy as np
warnings.simplefilter("ignore")
from sklearn.datasets import load_digits
import fastnet as fn
X, y = load_digits(return_X_y=True)
X, y = X[:400], y[:400]
fits = [
    fn.MLPClassifier((9,), activation="tanh", solver="sgd", max_iter=3,
                     random_state=0).fit(X.astype(np.float32), y),
    fn.MLPClassifier((6, 5), activation="logistic", max_iter=3,
                     random_state=1).fit(X, y % 2),
    fn.MLPRegressor(hidden_layer_sizes=(7,), activation="gelu", loss="poisson",
                    max_iter=3, random_state=2).fit(X.astype(np.float32), y * 1.0),
]
out = [m.predict_proba(X[:20]) if hasattr(m, "predict_proba") else m.predict(X[:20])
       for m in fits]
print("numba" in sys.modules)
print(" ".join(repr(float(m.loss_)) for m in fits))
print(" ".join(o.tobytes().hex() for o in out))
"""


def _env(cache):
    return fresh_env(cache)


def _fastnet(cache, *args):
    return subprocess.run(
        [sys.executable, "-m", "fastnet.tabular.cli", *args],
        env=_env(cache),
        capture_output=True,
        text=True,
        timeout=900,
    )


def _python(cache, code):
    return python_lines(code, _env(cache), timeout=900)


def _objects(cache):
    return {p.stem: p for p in pathlib.Path(cache).rglob("native-*/*.o")}


def test_the_kernel_list_is_every_setting():
    """Each activation, loss, optimizer, output kind and dtype, enumerated here from
    the registries independently of ``kernels.mlp_cfuncs.makers``."""
    from fastnet._runtime import precompile as _precompile
    from fastnet.kernels import mlp_cfuncs as mlp

    expected = {"c_epoch", "c_forward"}
    for dtype, activation in itertools.product(
        ("float32", "float64"), kernels.ACTIVATIONS
    ):
        for loss, optimizer in itertools.product(mlp.LOSSES, mlp.OPTIMIZERS):
            expected.update(_native.epoch_names(activation, loss, optimizer, dtype))
        for out_kind in _native.OUT_KINDS:
            expected.update(_native.forward_names(activation, out_kind, dtype))
    expected.discard(None)
    names = _precompile.kernel_names()
    assert len(names) == len(set(names))
    assert set(names) == expected
    assert names[0] == "c_epoch"  # the longest compilation starts first


def test_compile_then_every_setting_runs_without_numba_to_the_same_bits(tmp_path):
    cache, cold_cache = tmp_path / "compiled", tmp_path / "cold"
    run = _fastnet(cache, "compile", "--jobs", "2", "--verbose")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    total = len(_objects(cache))
    assert total >= 50
    assert lines[-1].startswith(f"compiled {total} kernels in ")
    assert "with 2 processes" in lines[-1] and str(cache) in lines[-1]
    assert len(lines) == total + 1  # one line per kernel with --verbose
    warm = _python(cache, SETTINGS)
    assert warm[0] == "False"  # every kernel came from the native cache
    cold = _python(cold_cache, SETTINGS)
    assert cold[0] == "True"  # compiled by Numba in the process
    assert warm[1:] == cold[1:]

    # a second run compiles nothing and rewrites no file
    stamps = {n: p.stat().st_mtime_ns for n, p in _objects(cache).items()}
    again = _fastnet(cache, "compile")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"all {total} kernels are compiled already")
    assert {n: p.stat().st_mtime_ns for n, p in _objects(cache).items()} == stamps

    # a missing and a damaged file are compiled again, and only they
    objects = _objects(cache)
    objects["c_sgd_float32"].unlink()
    damaged = objects["c_tanh_bias_act_float64"]
    data = bytearray(damaged.read_bytes())
    data[-100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    mended = _fastnet(cache, "compile", "--jobs", "1")
    assert mended.returncode == 0, mended.stderr
    assert (
        mended.stdout.startswith("compiled 2 kernels in ")
        and f"with 1 process; {total - 2} were cached already" in mended.stdout
    )
    assert len(_objects(cache)) == total
    assert _python(cache, SETTINGS) == warm


@pytest.mark.parametrize("jobs", ["0", "-1", "two", "1.5"])
def test_bad_jobs_is_one_line_and_exit_2(tmp_path, jobs):
    run = _fastnet(tmp_path, "compile", "--jobs", jobs)
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1
    assert "--jobs" in run.stderr and jobs in run.stderr
    assert not _objects(tmp_path)


def test_an_unwritable_cache_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run = _fastnet(blocker, "compile", "--jobs", "2")
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith("fastnet: error: ")
    assert "cannot be written" in run.stderr and str(blocker) in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_precompile_checks_jobs():
    from fastnet._runtime import precompile as _precompile

    with pytest.raises(ValueError, match="at least 1"):
        _precompile.precompile(0)
    with pytest.raises(TypeError, match="int"):
        _precompile.precompile(2.0)
    with pytest.raises(TypeError, match="int"):
        _precompile.precompile(True)


def _workers_of(cache):
    """The pids of live ``fastnet._runtime.precompile`` workers compiling into
    ``cache``."""
    found = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"fastnet._runtime.precompile" in cmdline and str(cache).encode() in environ:
            found.append(int(proc.name))
    return found


@pytest.mark.parametrize("group", [False, False, True])
def test_an_interrupt_ends_the_workers_and_a_second_run_finishes(tmp_path, group):
    """SIGINT to the command alone, or to its process group (a terminal's Ctrl-C):
    one line, exit 130, no worker left; kernels finished stay."""
    command = subprocess.Popen(
        [sys.executable, "-m", "fastnet.tabular.cli", "compile", "--jobs", "2", "-v"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # as from a terminal: a parent started in the background without job
        # control (nohup, `cmd &` in a script) hands down SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = command.stdout.readline()  # a kernel is done: the workers are busy
    assert first.split()[0] == "c_epoch" or first.split()[0] == "c_forward"
    assert len(_workers_of(tmp_path)) == 2
    if group:
        os.killpg(command.pid, signal.SIGINT)
    else:
        command.send_signal(signal.SIGINT)
    _, err = command.communicate(timeout=60)
    assert command.returncode == 130
    assert err.splitlines() == ["fastnet: interrupted"]
    assert _workers_of(tmp_path) == []
    done = len(_objects(tmp_path))
    assert done >= 1
    again = _fastnet(tmp_path, "compile")
    assert again.returncode == 0, again.stderr
    assert "were cached already" in again.stdout
    assert len(_objects(tmp_path)) == len(_native_names())


def _native_names():
    from fastnet._runtime import precompile as _precompile

    return _precompile.kernel_names()
