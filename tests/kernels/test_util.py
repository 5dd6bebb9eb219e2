"""kernels.util against NumPy."""

import gc

import numba
import numpy as np
import pytest

from fastnet.kernels import all_finite, axpy


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 65535, 65536, 199_999])
def test_all_finite_finds_one_bad_value_anywhere(dtype, bad, where):
    x = np.ones(200_000, dtype)
    assert all_finite(x)
    x[where] = bad
    assert not all_finite(x)
    assert all_finite(x) == np.isfinite(x).all()


def test_all_finite_at_the_edges_of_the_range(dtype):
    info = np.finfo(dtype)
    x = np.array([info.max, -info.max, info.tiny / 2, -0.0], dtype)  # subnormal too
    assert all_finite(x)
    assert all_finite(np.empty(0, dtype))


def test_axpy_equals_numpy(dtype, rng):
    y = rng.standard_normal(101).astype(dtype)
    x = rng.standard_normal(101).astype(dtype)
    want = y + dtype(0.5) * x
    axpy(y, dtype(0.5), x)
    np.testing.assert_allclose(y, want, rtol=1e-6)


# -- the collector while kernels compile ------------------------------------------
def test_kernels_compile_with_the_collector_paused():
    from fastnet.kernels import _config

    def plus_one(x):
        return x + 1.5

    kernel = _config.jit(plus_one)
    # every kernel's compile (a compilation, or a load from the cache) is wrapped
    original = kernel.compile.__wrapped__
    assert original == type(kernel).compile.__get__(kernel)
    seen = []

    def spy(sig):
        seen.append(gc.isenabled())
        return original(sig)

    kernel.compile = _config._paused(spy)
    assert gc.isenabled()
    assert kernel(1.0) == 2.5
    assert seen == [False]
    assert gc.isenabled()  # and back on after
    # a C kernel too
    called = []
    real = gc.disable

    def spy():
        called.append(gc.isenabled())
        real()

    gc.disable = spy
    try:
        c = _config.cfunc(plus_one, "test_plus_one", numba.float64(numba.float64))
    finally:
        gc.disable = real
    assert called == [True] and gc.isenabled()
    assert c.ctypes(1.0) == 2.5


def test_the_pause_leaves_an_off_collector_off_and_restores_on_error():
    from fastnet.kernels._config import collector_paused

    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()
    with pytest.raises(RuntimeError):
        with collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("a failed compilation")
    assert gc.isenabled()
