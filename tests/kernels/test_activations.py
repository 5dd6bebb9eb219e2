"""Activation kernels against NumPy references, finite differences and PyTorch."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastnet.kernels import ACTIVATIONS
from tests import naive
from tests.conftest import assert_close, assert_twins_equal, numeric_vjp

NAMES = sorted(ACTIVATIONS)
ALPHA = 0.1
SERIAL, PARALLEL = 0, 1
# Points every activation must get right: kinks, signs of zero, the far tails.
SPECIAL = [0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, 5.0, -5.0, 30.0, -30.0, 1e4, -1e4]


def forward(name, x, variant=SERIAL):
    out = np.empty_like(x)
    ACTIVATIONS[name].forward[variant](x.reshape(-1), ALPHA, out.reshape(-1))
    return out


def backward(name, dy, x, variant=SERIAL):
    """dx through the kernel, given the input x (the saved tensor is picked here)."""
    act = ACTIVATIONS[name]
    saved = x if act.saves == "x" else forward(name, x)
    out = np.empty_like(x)
    act.backward[variant](dy.reshape(-1), saved.reshape(-1), ALPHA, out.reshape(-1))
    return out


def reference(name, x):
    f, df = naive.ACTIVATIONS[name]
    x64 = x.astype(np.float64)
    return f(x64, ALPHA), df(x64, ALPHA)


def test_registry_covers_design_table():
    assert set(NAMES) == set(naive.ACTIVATIONS)
    assert {a.saves for a in ACTIVATIONS.values()} <= {"x", "y"}


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_match_numpy(name, dtype, rng):
    x = np.concatenate([rng.standard_normal(500) * 3, SPECIAL]).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    f, df = reference(name, x)
    assert forward(name, x).dtype == dtype
    assert_close(forward(name, x), f, dtype)
    # tanh/logistic differentiate from the rounded output y: one more rounding.
    assert_close(backward(name, dy, x), dy.astype(np.float64) * df, dtype, scale=4)


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_central_differences(name, rng):
    # Stay off the kinks (|x| > 1e-3): differences straddling one are meaningless.
    x = rng.uniform(0.01, 3.0, 60) * rng.choice([-1.0, 1.0], 60)
    dy = rng.standard_normal(60)
    expected = numeric_vjp(lambda v: forward(name, v), x, dy)
    np.testing.assert_allclose(backward(name, dy, x), expected, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_float32_agrees_with_float64(name, rng):
    x = rng.standard_normal(1000) * 4
    y64 = forward(name, x)
    y32 = forward(name, x.astype(np.float32))
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_serial_and_parallel_twins_agree(name, dtype, rng):
    x = (rng.standard_normal(70_000) * 3).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    assert_twins_equal(forward(name, x, SERIAL), forward(name, x, PARALLEL))
    assert_twins_equal(backward(name, dy, x, SERIAL), backward(name, dy, x, PARALLEL))


def test_derivative_conventions_at_zero(dtype):
    zero = np.zeros(2, dtype)
    zero[1] = -0.0
    ones = np.ones(2, dtype)
    # DESIGN.md: ReLU'(0) = 0 (as PyTorch, JAX, scikit-learn); LeakyReLU'(0) = 1.
    assert (backward("relu", ones, zero) == 0).all()
    assert (backward("leaky_relu", ones, zero) == 1).all()
    assert (backward("gelu", ones, zero) == 0.5).all()
    assert (backward("gelu_tanh", ones, zero) == 0.5).all()


def test_leaky_relu_negative_side_uses_alpha(dtype):
    x = np.array([-2.0, -1e-30, 3.0], dtype)
    np.testing.assert_allclose(
        backward("leaky_relu", np.ones(3, dtype), x), [0.1, 0.1, 1]
    )


@pytest.mark.parametrize("name", NAMES)
def test_extreme_inputs_are_finite_and_exact(name, dtype):
    x = np.array([-1e4, 1e4, -1e30, 1e30], dtype)
    y = forward(name, x)
    g = backward(name, np.ones_like(x), x)
    assert np.isfinite(y).all() and np.isfinite(g).all()
    f, df = reference(name, x[:2])
    np.testing.assert_array_equal(y[:2], f.astype(dtype))
    np.testing.assert_array_equal(g[:2], df.astype(dtype))


def test_gelu_tail_is_accurate_in_float32():
    # x Φ(x) for x = -5 is about -1.4e-6; 1 + erf(x/√2) would keep one digit of it.
    x = np.array([-5.0, -8.0, -12.0], np.float32)
    f, _ = reference("gelu", x)
    np.testing.assert_allclose(forward("gelu", x), f, rtol=1e-5)


def test_nan_propagates(dtype):
    x = np.array([np.nan], dtype)
    for name in NAMES:
        assert np.isnan(forward(name, x)).all(), name


@pytest.mark.parametrize("name", NAMES)
def test_against_torch_autograd(name, torch, rng):
    fns = {
        "identity": lambda t: t,
        "relu": torch.relu,
        "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, ALPHA),
        "gelu": torch.nn.functional.gelu,
        "gelu_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
        "tanh": torch.tanh,
        "logistic": torch.sigmoid,
    }
    x = np.concatenate([rng.standard_normal(200) * 3, SPECIAL])
    if name == "leaky_relu":  # torch's LeakyReLU'(0) is alpha; DESIGN.md fixes 1
        x = x[x != 0]
    dy = rng.standard_normal(x.shape)
    tx = torch.tensor(x, requires_grad=True)
    ty = fns[name](tx)
    ty.backward(torch.tensor(dy))
    np.testing.assert_allclose(
        forward(name, x), ty.detach().numpy(), rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(
        backward(name, dy, x), tx.grad.numpy(), rtol=1e-12, atol=1e-15
    )


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=1, min_side=0, max_side=50),
        elements=st.one_of(
            st.sampled_from(SPECIAL),
            st.floats(-1e4, 1e4, allow_nan=False, allow_subnormal=False),
        ),
    ),
)
def test_hypothesis_values(name, x):
    f, df = reference(name, x)
    np.testing.assert_allclose(forward(name, x), f, rtol=1e-12, atol=1e-300)
    dy = np.ones_like(x)
    np.testing.assert_allclose(backward(name, dy, x), df, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (7, 1), (5, 13)])
def test_fused_bias_activation(name, shape, dtype, rng):
    act = ACTIVATIONS[name]
    z = (rng.standard_normal(shape) * 2).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    f, df = reference(name, (z.astype(np.float64) + b).astype(dtype))
    for variant in (SERIAL, PARALLEL):
        zz = z.copy()
        out = np.empty_like(z)
        act.bias_forward[variant](zz, b, ALPHA, out)
        assert_close(zz, z.astype(np.float64) + b, dtype)
        assert_close(out, f, dtype)
        saved = zz if act.saves == "x" else out
        dz = np.empty_like(z)
        db = np.full(shape[1], np.nan, dtype)
        act.bias_backward[variant](dy, saved, ALPHA, dz, db)
        expected = dy.astype(np.float64) * df
        assert_close(dz, expected, dtype, scale=4)
        assert_close(db, expected.sum(axis=0), dtype, scale=20)


def _rows_with_specials(rng, shape, dtype):
    """Normal draws with NaN, infinities, signed zeros and the special points set in
    (a row length off the vector widths: the vector loop and its tail both run)."""
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    flat = x.reshape(-1)
    specials = np.array([np.nan, np.inf, -np.inf, *SPECIAL], dtype)
    flat[rng.choice(flat.size, specials.size, replace=False)] = specials
    return x


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("variant", [SERIAL, PARALLEL])
def test_kernels_run_in_place_with_the_same_bits(name, variant, dtype, rng):
    """forward, backward, bias_forward and bias_backward with the output the input
    array itself (as the compiled forward and epoch call them) give the bits of a
    separate output: the in-place loops are separate code (vectorised where the
    out-of-place loop's overlap check would fall back to scalar code)."""
    act = ACTIVATIONS[name]
    shape = (37, 29)
    z = _rows_with_specials(rng, shape, dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    dy = _rows_with_specials(rng, shape, dtype)
    saved = _rows_with_specials(rng, shape, dtype)

    out = np.empty_like(z)
    act.forward[variant](z.reshape(-1), ALPHA, out.reshape(-1))
    inplace = z.copy()
    act.forward[variant](inplace.reshape(-1), ALPHA, inplace.reshape(-1))
    np.testing.assert_array_equal(inplace, out)

    out = np.empty_like(z)
    act.backward[variant](dy.reshape(-1), saved.reshape(-1), ALPHA, out.reshape(-1))
    inplace = dy.copy()
    act.backward[variant](
        inplace.reshape(-1), saved.reshape(-1), ALPHA, inplace.reshape(-1)
    )
    np.testing.assert_array_equal(inplace, out)

    zz, out = z.copy(), np.empty_like(z)
    act.bias_forward[variant](zz, b, ALPHA, out)
    inplace = z.copy()
    act.bias_forward[variant](inplace, b, ALPHA, inplace)
    np.testing.assert_array_equal(inplace, out)
    assert np.isnan(inplace).sum() >= 1  # NaN stays NaN

    dz, db = np.empty_like(z), np.empty(shape[1], dtype)
    act.bias_backward[variant](dy, saved, ALPHA, dz, db)
    inplace, db_inplace = dy.copy(), np.empty(shape[1], dtype)
    act.bias_backward[variant](inplace, saved, ALPHA, inplace, db_inplace)
    np.testing.assert_array_equal(inplace, dz)
    np.testing.assert_array_equal(db_inplace, db)


# -- second order: backward_tangent ------------------------------------------------
def backward_tangent(name, dy, ddy, x, tx, variant=SERIAL):
    act = ACTIVATIONS[name]
    saved = x if act.saves == "x" else forward(name, x)
    dx, ddx = np.empty_like(x), np.empty_like(x)
    act.backward_tangent[variant](
        dy.reshape(-1), saved.reshape(-1), ddy.reshape(-1), tx.reshape(-1), ALPHA,
        dx.reshape(-1), ddx.reshape(-1),
    )  # fmt: skip
    return dx, ddx


@pytest.mark.parametrize("name", NAMES)
def test_backward_tangent_matches_numpy(name, dtype, rng):
    x = np.concatenate([rng.standard_normal(500) * 3, SPECIAL]).astype(dtype)
    dy, ddy, tx = (rng.standard_normal(x.shape).astype(dtype) for _ in range(3))
    _, df = reference(name, x)
    d2f = naive.SECOND_DERIVATIVES[name](x.astype(np.float64), ALPHA)
    dx, ddx = backward_tangent(name, dy, ddy, x, tx)
    f64 = [a.astype(np.float64) for a in (dy, ddy, tx)]
    assert np.isfinite(ddx).all()
    assert_close(dx, f64[0] * df, dtype, scale=4)
    expected = f64[1] * df + f64[0] * d2f * f64[2]
    assert_close(ddx, expected, dtype, scale=8)


@pytest.mark.parametrize("name", NAMES)
def test_second_derivative_matches_central_differences(name, rng):
    # f'' as the difference quotient of the backward kernel (off the kinks)
    x = rng.uniform(0.01, 3.0, 60) * rng.choice([-1.0, 1.0], 60)
    dy, ones = rng.standard_normal(60), np.ones(60)
    zero = np.zeros(60)
    _, ddx = backward_tangent(name, dy, zero, x, ones)
    h = 1e-6
    expected = (backward(name, dy, x + h) - backward(name, dy, x - h)) / (2 * h)
    np.testing.assert_allclose(ddx, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_second_derivative_at_the_kink_is_zero(name):
    x = np.array([0.0, -0.0, 1e-30, -1e-30])
    _, ddx = backward_tangent(name, np.ones(4), np.zeros(4), x, np.ones(4))
    np.testing.assert_array_equal(ddx, 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_backward_tangent_twins_agree(name, dtype, rng):
    x = (rng.standard_normal(70_000) * 3).astype(dtype)
    dy, ddy, tx = (rng.standard_normal(x.shape).astype(dtype) for _ in range(3))
    for a, b in zip(
        backward_tangent(name, dy, ddy, x, tx, SERIAL),
        backward_tangent(name, dy, ddy, x, tx, PARALLEL),
        strict=True,
    ):
        assert_twins_equal(a, b)


def test_first_compilation_of_the_kernels_warns_nothing(tmp_path):
    """In a fresh cache, compiling the kernels of ReLU (a loop of its own in place)
    and of tanh and the logistic function (one loop) in place, both twins, float32
    (vmath's functions serve float32), raises no Numba warning: a loop that inlined
    vmath's tanh or logistic twice made Numba's SSA check warn
    (NumbaIRAssumptionWarning) at a user's first fit."""
    code = """if True:
        import warnings
        import numpy as np
        from numba.core.errors import NumbaWarning
        warnings.simplefilter("error", NumbaWarning)
        from fastnet.kernels import ACTIVATIONS
        for name in ("relu", "tanh", "logistic"):
            act = ACTIVATIONS[name]
            z, b = np.zeros((3, 5), np.float32), np.zeros(5, np.float32)
            flat = z.reshape(-1)
            for k in (0, 1):
                act.bias_forward[k](z, b, 0.1, z)
                act.forward[k](flat, 0.1, flat)
                act.backward[k](flat, flat, 0.1, flat)
                act.bias_backward[k](z, z, 0.1, z, b)
    """
    env = {**os.environ, "FASTNET_CACHE_DIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
