"""Fused optimizer updates against NumPy, scikit-learn's optimizers and PyTorch."""

import numpy as np
import pytest

from fastnet.kernels import adam_update, sgd_update, sum_squares
from tests import naive
from tests.conftest import assert_close, assert_twins_equal

STEPS = 5


def sgd_steps(param, grads, lr, momentum, nesterov, l2, variant=0):
    dt = param.dtype.type
    p, v = param.copy(), np.zeros_like(param)
    for g in grads:
        sgd_update[variant](p, g, v, dt(lr), dt(momentum), nesterov, dt(l2))
    return p


def adam_steps(param, grads, lr, b1, b2, eps, wd, decoupled, torch_eps=True, variant=0):
    dt = param.dtype.type
    p, m, v = param.copy(), np.zeros_like(param), np.zeros_like(param)
    for t, g in enumerate(grads, start=1):
        correction = np.sqrt(1 - b2**t)
        step_size = lr * correction / (1 - b1**t)
        eps_hat = eps * correction if torch_eps else eps
        l2, decay = (0.0, 1 - lr * wd) if decoupled else (wd, 1.0)
        adam_update[variant](
            p, g, m, v, dt(step_size), dt(b1), dt(b2), dt(eps_hat), dt(l2), dt(decay)
        )
    return p


@pytest.fixture
def problem(rng, dtype):
    param = rng.standard_normal(200).astype(dtype)
    grads = [rng.standard_normal(200).astype(dtype) for _ in range(STEPS)]
    return param, grads


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_sgd_matches_numpy(problem, momentum, nesterov, l2, dtype):
    param, grads = problem
    p, v = param.astype(np.float64), np.zeros(param.shape)
    for g in grads:
        p, v = naive.sgd(p, g.astype(np.float64), v, 0.1, momentum, nesterov, l2)
    got = sgd_steps(param, grads, 0.1, momentum, nesterov, l2)
    assert got.dtype == dtype
    assert_close(got, p, dtype, scale=2)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_matches_scikit_learn(rng, nesterov):
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    param = rng.standard_normal(50)
    grads = [rng.standard_normal(50) for _ in range(STEPS)]
    ref = [param.copy()]
    opt = SGDOptimizer(ref, learning_rate_init=0.05, momentum=0.8, nesterov=nesterov)
    for g in grads:
        opt.update_params(ref, [g])
    got = sgd_steps(param, grads, 0.05, 0.8, nesterov, 0.0)
    np.testing.assert_allclose(got, ref[0], rtol=1e-13)


def test_adam_matches_scikit_learn(rng):
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    param = rng.standard_normal(50)
    grads = [rng.standard_normal(50) for _ in range(STEPS)]
    ref = [param.copy()]
    opt = AdamOptimizer(ref, learning_rate_init=0.01, epsilon=1e-3)
    for g in grads:
        opt.update_params(ref, [g])
    got = adam_steps(param, grads, 0.01, 0.9, 0.999, 1e-3, 0.0, False, torch_eps=False)
    np.testing.assert_allclose(got, ref[0], rtol=1e-13)


@pytest.mark.parametrize("wd,decoupled", [(0.0, False), (0.05, False), (0.05, True)])
def test_adam_matches_numpy(problem, wd, decoupled, dtype):
    param, grads = problem
    p, m, v = param.astype(np.float64), np.zeros(param.shape), np.zeros(param.shape)
    for t, g in enumerate(grads, start=1):
        p, m, v = naive.adam_torch(
            p, g.astype(np.float64), m, v, t, 0.01, 0.9, 0.999, 1e-3, wd, decoupled
        )
    got = adam_steps(param, grads, 0.01, 0.9, 0.999, 1e-3, wd, decoupled)
    assert got.dtype == dtype
    assert_close(got, p, dtype, scale=2)


@pytest.mark.parametrize("cls,wd", [("Adam", 0.0), ("Adam", 0.05), ("AdamW", 0.05)])
def test_adam_matches_torch(torch, rng, cls, wd):
    param = rng.standard_normal(30)
    grads = [rng.standard_normal(30) for _ in range(STEPS)]
    tp = torch.tensor(param.copy(), requires_grad=True)
    opt = getattr(torch.optim, cls)([tp], lr=0.01, eps=1e-3, weight_decay=wd)
    for g in grads:
        tp.grad = torch.tensor(g)
        opt.step()
    got = adam_steps(param, grads, 0.01, 0.9, 0.999, 1e-3, wd, cls == "AdamW")
    np.testing.assert_allclose(got, tp.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_matches_torch_at_constant_rate(torch, rng, nesterov):
    param = rng.standard_normal(30)
    grads = [rng.standard_normal(30) for _ in range(STEPS)]
    tp = torch.tensor(param.copy(), requires_grad=True)
    opt = torch.optim.SGD(
        [tp], lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01
    )
    for g in grads:
        tp.grad = torch.tensor(g)
        opt.step()
    got = sgd_steps(param, grads, 0.1, 0.9, nesterov, 0.01)
    np.testing.assert_allclose(got, tp.detach().numpy(), rtol=1e-12)


def test_serial_and_parallel_agree(rng, dtype):
    param = rng.standard_normal(70_000).astype(dtype)
    grads = [rng.standard_normal(70_000).astype(dtype) for _ in range(2)]
    for fn, args in (
        (sgd_steps, (0.1, 0.9, True, 0.01)),
        (adam_steps, (0.01, 0.9, 0.999, 1e-8, 0.01, True)),
    ):
        assert_twins_equal(
            fn(param, grads, *args, variant=0), fn(param, grads, *args, variant=1)
        )


def test_sgd_without_momentum_needs_no_velocity(rng):
    p = rng.standard_normal(10)
    g = rng.standard_normal(10)
    expected = p - 0.1 * g
    sgd_update[0](p, g, np.empty(0), 0.1, 0.0, False, 0.0)
    np.testing.assert_allclose(p, expected, rtol=1e-15)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 31, 1000, 235_146])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_sum_squares_against_float64_numpy(n, dt):
    x = np.random.default_rng(n).standard_normal(n).astype(dt)
    x[:3] = [1e-30, -1e30, 0.0][: min(n, 3)]  # float32 squares that need float64
    expected = float(np.sum(x.astype(np.float64) ** 2))
    assert sum_squares(x) == pytest.approx(expected, rel=1e-13, abs=0)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_sum_squares_vector_lanes_are_the_scalar_sums_bits(dt):
    # a C-contiguous array takes the vectorised eight sums, a strided one the
    # scalar sums: the same eight running sums, so the same bits; and NaN/inf pass
    rng = np.random.default_rng(3)
    for n in [*range(0, 40), 1001, 235_146]:
        x = (rng.standard_normal(n) * rng.choice([1e-20, 1.0, 1e15], n)).astype(dt)
        strided = np.empty(2 * n, dt)[::2]
        strided[:] = x
        assert n < 2 or not strided.flags.c_contiguous
        assert sum_squares(x) == sum_squares(strided)
    x = rng.standard_normal(100).astype(dt)
    x[7] = np.inf
    assert sum_squares(x) == np.inf
    x[9] = np.nan
    assert np.isnan(sum_squares(x))
