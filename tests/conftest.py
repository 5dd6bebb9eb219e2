import functools
import itertools
import os

# A cold cache's background compilation (fastnet._runtime.native.compile_in_background)
# is
# off in the suite, whose processes would otherwise find kernels compiled by another
# process at a time that depends on the machine's load; tests/test_background.py
# turns it on where it is the subject.
os.environ["FASTNET_BACKGROUND_COMPILE"] = "0"

import numba
import numpy as np
import pytest
from hypothesis import settings

# CI runs the same examples every time (a red CI run is then reproducible);
# `pytest --hypothesis-profile=explore` draws new ones.
settings.register_profile("default", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile("default")

# Tolerances for a float32 / float64 result against a float64 reference.
RTOL = {np.float32: 2e-5, np.float64: 1e-12}
ATOL = {np.float32: 2e-6, np.float64: 1e-13}


def assert_close(actual, expected, dtype, scale=1.0):
    """``actual`` (computed in ``dtype``) equals the float64 ``expected``."""
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64),
        expected,
        rtol=RTOL[dtype] * scale,
        atol=ATOL[dtype] * scale,
    )


def assert_twins_equal(serial, parallel):
    """Serial and parallel compilations of one loop give bit-identical results.

    Under NUMBA_BOUNDSCHECK=1 (a CI step) the bounds checks change which operations
    LLVM fuses into FMAs in the two loops: a few roundings' tolerance applies there.
    """
    if numba.config.BOUNDSCHECK:
        eps = np.finfo(np.asarray(serial).dtype).eps
        scale = float(np.max(np.abs(serial))) if np.size(serial) else 1.0
        np.testing.assert_allclose(serial, parallel, rtol=8 * eps, atol=8 * eps * scale)
    else:
        np.testing.assert_array_equal(serial, parallel)


def numeric_vjp(f, x, dy, h=1e-6):
    """float64 central differences of ``sum(dy * f(x))`` with respect to ``x``."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = np.sum(dy * f(x.copy()))
        flat[i] = old - h
        down = np.sum(dy * f(x.copy()))
        flat[i] = old
        grad.reshape(-1)[i] = (up - down) / (2 * h)
    return grad


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def torch():
    """PyTorch with float64 as its default dtype for the test, restored after it
    (a process-wide setting: left at float64, it changed later tests' models)."""
    torch = pytest.importorskip("torch")
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(before)


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run tests marked slow (fresh venvs; .ci/run runs them)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: minutes-long tests (fresh venvs), run with --run-slow"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (.ci/run does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


#: the settings the tests give each activation module's constructor argument
#: (LeakyReLU's alpha: not the default, so that a dropped alpha shows)
MODULE_SETTINGS = {"alpha": (0.1,), "approximate": ("none", "tanh")}


def activation_modules():
    """``{kernel name: a function making the module}`` for every activation module
    registered in ``fastnet.nn.activations.MODULES``, with each setting of
    :data:`MODULE_SETTINGS` (GELU gives both of its kernels)."""
    from fastnet.nn.activations import MODULES

    found = {}
    for cls, args in MODULES.values():
        for values in itertools.product(*(MODULE_SETTINGS[a] for a in args)):
            make = functools.partial(cls, **dict(zip(args, values, strict=True)))
            found.setdefault(make().kernel_name, make)
    return found
