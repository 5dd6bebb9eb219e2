"""The native cache (``fastnet._runtime.native``): a warm process fits and predicts
with the
whole-network kernels' machine code loaded by llvmlite alone, without importing
Numba, to the same bits as the process that compiled them; and any file it cannot
trust falls back to Numba instead of crashing the process.

Each case runs in fresh processes with a cache folder of its own.
"""

import hashlib
import pathlib
import sys

import numpy as np
import pytest

from fastnet._runtime import native as _native
from fastnet._runtime.objects import ObjectFolder, undefined_symbols
from tests.processes import fresh_env, python_lines

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the native cache reads ELF objects"
)

FIT = """
import sys, numpy as np
from sklearn.datasets import load_digits
import fastnet as fn
X, y = load_digits(return_X_y=True)
X = X[:{rows}].astype({dtype!r})
y = y[:{rows}]
m = fn.MLPClassifier((12, 7), activation={activation!r}, max_iter=4,
                     random_state=0).fit(X, y)
p = m.predict_proba(X[::-1] * 0.5)
reg = fn.MLPRegressor(hidden_layer_sizes=(5,), activation={activation!r},
                      solver="sgd", max_iter=3, random_state=1).fit(X, y * 0.1)
r = reg.predict(X[:9])
print("numba" in sys.modules)
print(repr(float(m.coefs_[0].sum())), repr(float(m.loss_)), repr(float(p.sum())),
      p.tobytes().hex()[:64], r.tobytes().hex())
"""


def _run(cache, code, **env):
    return python_lines(code, fresh_env(cache, **env))


def _objects(cache):
    return sorted(pathlib.Path(cache).rglob("native-*/*.o"))


@pytest.mark.parametrize(
    ("activation", "dtype"), [("relu", "float64"), ("tanh", "float32")]
)
def test_a_warm_process_runs_without_numba_to_the_same_bits(
    tmp_path, activation, dtype
):
    code = FIT.format(rows=300, dtype=dtype, activation=activation)
    cold = _run(tmp_path, code)
    assert cold[0] == "True"  # compiled by Numba, which wrote the objects
    names = {p.stem for p in _objects(tmp_path)}
    assert {"c_epoch", "c_forward", f"c_all_finite_{dtype}"} <= names
    warm = _run(tmp_path, code)
    assert warm[0] == "False"  # every kernel came from the native cache
    assert warm[1] == cold[1]


def test_a_damaged_or_foreign_object_falls_back_to_numba(tmp_path):
    code = FIT.format(rows=200, dtype="float64", activation="relu")
    cold = _run(tmp_path, code)
    objects = {p.stem: p for p in _objects(tmp_path)}
    # truncated, not an object at all, and one needing a symbol nobody defines
    # (MCJIT would abort the process on it)
    data = objects["c_epoch"].read_bytes()
    objects["c_epoch"].write_bytes(data[: len(data) // 2])
    objects["c_forward"].write_bytes(b"c_forward\nnot an object")
    name = "c_relu_bias_act_float64"
    header, _, obj = objects[name].read_bytes().partition(b"\n")
    assert obj.count(b"numba_gil_ensure") == 1
    obj = obj.replace(b"numba_gil_ensure", b"nobody_defines_t")
    symbol = header.split(b" ")[0]
    digest = hashlib.sha256(obj).hexdigest().encode()  # a consistent file
    objects[name].write_bytes(symbol + b" " + digest + b"\n" + obj)
    again = _run(tmp_path, code)
    assert again[0] == "True"  # Numba compiled (or loaded) what could not load
    assert again[1] == cold[1]


def test_a_missing_or_damaged_object_is_written_again(tmp_path):
    # Numba's own cache still holds these kernels, but loads them without their
    # object code: they compile afresh once, and the next process is Numba-free
    code = FIT.format(rows=150, dtype="float64", activation="relu")
    cold = _run(tmp_path, code)
    objects = {p.stem: p for p in _objects(tmp_path)}
    objects["c_epoch"].unlink()
    objects["c_forward"].write_bytes(b"garbage")
    assert _run(tmp_path, code) == ["True", cold[1]]
    assert _run(tmp_path, code) == ["False", cold[1]]


RACE = """
import threading, numpy as np, fastnet as fn
m = fn.load({path!r})
rng = np.random.default_rng(0)
parts = [rng.standard_normal((40, 64)) * 8 for _ in range(6)]
out = [None] * 6
def go(i):
    out[i] = m.predict_proba(parts[i])
threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
for t in threads: t.start()
for t in threads: t.join()
for i in range(6):
    np.testing.assert_array_equal(out[i], m.predict_proba(parts[i]))
print("ok")
"""


def test_threads_predicting_first_in_a_process_with_an_empty_cache(tmp_path):
    # the first prediction in a process imports Numba and compiles the forward's
    # kernels; several threads at once once saw a half-imported module
    path = tmp_path / "model.npz"
    fit = (
        "import fastnet as fn\nfrom sklearn.datasets import load_digits\n"
        "X, y = load_digits(return_X_y=True)\n"
        "fn.save(fn.MLPClassifier((9,), max_iter=3, random_state=0).fit(X, y), "
        f"{str(path)!r})\nprint('saved')"
    )
    assert _run(tmp_path / "fit", fit) == ["saved"]
    for run in range(3):  # a new empty cache each time
        assert _run(tmp_path / f"race{run}", RACE.format(path=str(path))) == ["ok"]


def test_undefined_symbols_are_read_from_the_object(tmp_path):
    _run(tmp_path, FIT.format(rows=100, dtype="float64", activation="relu"))
    objects = {p.stem: p for p in _objects(tmp_path)}
    header, _, obj = objects["c_epoch"].read_bytes().partition(b"\n")
    needed = undefined_symbols(obj)
    # Numba's entry to SciPy's BLAS, resolved from Numba's extension module
    assert "numba_xxgemm" in needed
    assert header.startswith(b"cfunc.")
    assert header.split(b" ")[1] == hashlib.sha256(obj).hexdigest().encode()
    for bad in (b"", b"\x7fELF", b"MZ" + obj[2:]):
        with pytest.raises(ValueError, match="not an ELF64"):
            undefined_symbols(bad)


def test_the_cache_key_changes_with_numbas_code_settings(tmp_path, monkeypatch):
    code = FIT.format(rows=100, dtype="float64", activation="relu")
    _run(tmp_path, code)
    # objects compiled without bounds checks are not what a bounds-checked run
    # (CI's) loads
    assert _run(tmp_path, code, NUMBA_BOUNDSCHECK="1")[0] == "True"
    monkeypatch.delenv("NUMBA_BOUNDSCHECK", raising=False)
    folders = {ObjectFolder().folder}
    for name, value in [("NUMBA_BOUNDSCHECK", "1"), ("NUMBA_CPU_NAME", "generic"),
                        ("NUMBA_OPT", "0")]:  # fmt: skip
        monkeypatch.setenv(name, value)
        folders.add(ObjectFolder().folder)
    assert len(folders) == 4


def test_all_finite_matches_numpy():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((70_000, 3)).astype(dtype)
        assert _native.all_finite(x)
        for bad in (np.nan, np.inf, -np.inf):
            y = x.copy()
            y[rng.integers(0, 70_000), 2] = bad
            assert not _native.all_finite(y)
        assert _native.all_finite(x[:0])
    with pytest.raises(TypeError, match="float32 or float64"):
        _native.all_finite(np.zeros(3, np.int64))


def test_address_is_the_data_pointer_for_any_contiguous_array():
    a = np.arange(12.0).reshape(3, 4)
    readonly = a.copy()
    readonly.flags.writeable = False
    for arr in (a, a[1:], readonly, np.empty(0), np.arange(5, dtype=np.int64)):
        assert _native.address(arr) == arr.ctypes.data


def test_a_non_finite_row_is_scikit_learns_error_after_the_fused_check():
    from sklearn.datasets import load_digits

    import fastnet as fn

    X, y = load_digits(return_X_y=True)
    m = fn.MLPClassifier((8,), max_iter=2, random_state=0).fit(X[:200], y[:200])
    for bad in (np.nan, np.inf):
        row = X[:3].copy()
        row[1, 5] = bad
        with pytest.raises(ValueError, match="Input X contains"):
            m.predict(row)
    np.testing.assert_array_equal(m.predict(X[:3]), m.predict(X[:3].copy()))
