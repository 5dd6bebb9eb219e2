"""Fused loss kernels: value and gradient against NumPy, finite differences, PyTorch."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import expit, logsumexp, xlogy

from fastnet import kernels
from tests import naive
from tests.conftest import assert_close, assert_twins_equal, numeric_vjp


def run(kernel, z, t, w=None, variant=0, eps=0.0):
    w = np.empty(0, z.dtype) if w is None else w
    grad = np.full_like(z, np.nan)
    loss = kernel[variant](z, t, w, grad, eps)
    return loss, grad


def make_targets(name, rng, n, k, dtype):
    if name == "softmax_cross_entropy":
        return rng.integers(0, k, n)
    if name == "softmax_cross_entropy_dense":
        t = rng.uniform(size=(n, k))
        if k > 1:
            t[:, 0] = 0.0  # zero-probability classes must add nothing
        return (t / t.sum(1, keepdims=True)).astype(dtype)
    if name == "sigmoid_binary_cross_entropy":
        return rng.integers(0, 2, (n, k)).astype(dtype)
    if name == "poisson_exp":
        return rng.poisson(2.0, (n, k)).astype(dtype)
    return rng.standard_normal((n, k)).astype(dtype)


CASES = {
    "softmax_cross_entropy": naive.softmax_cross_entropy,
    "softmax_cross_entropy_dense": naive.softmax_cross_entropy,
    "sigmoid_binary_cross_entropy": naive.sigmoid_binary_cross_entropy,
    "squared_error": naive.squared_error,
    "poisson_exp": naive.poisson_exp,
}


def f64(a):
    return a.astype(np.float64) if a.dtype.kind == "f" else a


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (9, 1), (20, 6)])
def test_matches_numpy(name, weighted, shape, dtype, rng):
    n, k = shape
    z = rng.standard_normal(shape).astype(dtype)
    t = make_targets(name, rng, n, k, dtype)
    w = rng.uniform(0.0, 3.0, n).astype(dtype) if weighted else None
    loss, grad = run(getattr(kernels, name), z, t, w)
    want_loss, want_grad = CASES[name](f64(z), f64(t), None if w is None else f64(w))
    assert grad.dtype == dtype
    assert_close(loss, want_loss, dtype, scale=10)
    assert_close(grad, want_grad, dtype, scale=10)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_central_differences(name, rng):
    z = rng.standard_normal((5, 3))
    t = make_targets(name, rng, 5, 3, np.float64)
    w = rng.uniform(0.5, 2.0, 5)
    _, grad = run(getattr(kernels, name), z, t, w)
    numeric = numeric_vjp(lambda v: run(getattr(kernels, name), v, t, w)[0], z, 1.0)
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-10)


def test_cross_entropy_gradient_is_p_minus_y(rng):
    # DDA3020 (seed 003): through softmax, dL/da = p − y.
    z = rng.standard_normal((4, 5))
    y = np.array([0, 4, 2, 2])
    _, grad = run(kernels.softmax_cross_entropy, z, y)
    np.testing.assert_allclose(grad * 4, naive.softmax(z) - np.eye(5)[y], atol=1e-15)


def test_integer_and_one_hot_targets_agree(rng):
    z = rng.standard_normal((6, 4))
    y = rng.integers(0, 4, 6)
    a = run(kernels.softmax_cross_entropy, z, y)
    b = run(kernels.softmax_cross_entropy_dense, z, np.eye(4)[y])
    np.testing.assert_allclose(a[0], b[0], rtol=1e-14)
    np.testing.assert_allclose(a[1], b[1], atol=1e-16)


def test_unit_weights_equal_no_weights(rng):
    z = rng.standard_normal((6, 4))
    y = rng.integers(0, 4, 6)
    a = run(kernels.softmax_cross_entropy, z, y)
    b = run(kernels.softmax_cross_entropy, z, y, np.ones(6))
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0] == pytest.approx(b[0], rel=1e-15)


def test_zero_weight_rows_do_not_count(rng):
    z = rng.standard_normal((5, 3))
    y = rng.integers(0, 3, 5)
    w = np.array([1.0, 0.0, 2.0, 0.0, 1.0])
    loss, grad = run(kernels.softmax_cross_entropy, z, y, w)
    keep = w > 0
    sub_loss, sub_grad = naive.softmax_cross_entropy(z[keep], y[keep], w[keep])
    assert loss == pytest.approx(sub_loss, rel=1e-14)
    np.testing.assert_array_equal(grad[~keep], 0.0)
    np.testing.assert_allclose(grad[keep], sub_grad, rtol=1e-14)


@pytest.mark.parametrize(
    "name", ["softmax_cross_entropy", "sigmoid_binary_cross_entropy"]
)
def test_stable_for_logits_of_1e4(name, dtype):
    z = np.array([[1e4, -1e4], [-1e4, 1e4], [0.0, 0.0]], dtype)
    t = (
        np.array([1, 1, 0])
        if name == "softmax_cross_entropy"
        else np.eye(2, dtype=dtype)[[1, 1, 0]]
    )
    loss, grad = run(getattr(kernels, name), z, t)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    want_loss, want_grad = CASES[name](f64(z), f64(t))
    assert loss == pytest.approx(want_loss, rel=1e-6)
    np.testing.assert_allclose(grad, want_grad, atol=1e-7)


LOG_LOSSES = [
    "softmax_cross_entropy",
    "softmax_cross_entropy_dense",
    "sigmoid_binary_cross_entropy",
]


def clipped_reference(name, z, t, w, eps, dtype):
    """scikit-learn's clipped log-loss from float64 logits: the softmax's clip applied
    to -log p (the same as clipping p); the sigmoid's p rounded to ``dtype`` first,
    as scikit-learn's is (its 1 - p keeps only the digits p has)."""
    n, k = z.shape
    w = np.ones(n) if w is None else w
    if name == "sigmoid_binary_cross_entropy":
        p = np.clip(expit(z).astype(dtype).astype(np.float64), eps, 1 - eps)
        per = -(xlogy(t, p) + xlogy(1 - t, 1 - p)).sum(1)
    else:
        t = np.eye(k)[t] if t.ndim == 1 else t
        lo, hi = -np.log1p(-eps), -np.log(eps)
        nlp = np.clip(logsumexp(z, axis=1, keepdims=True) - z, lo, hi)
        per = np.where(t != 0, t * nlp, 0.0).sum(1)
    return np.sum(w * per) / w.sum()


@pytest.mark.parametrize("name", LOG_LOSSES)
@pytest.mark.parametrize("weighted", [False, True])
def test_clipped_loss_and_exact_gradient(name, weighted, dtype, rng):
    z = (rng.standard_normal((60, 5)) * 8).astype(dtype)
    # probabilities below eps and above 1 - eps (and, in float64, of exactly 0 and 1)
    z[3:12] = rng.choice([-100.0, -60.0, 60.0, 100.0], (9, 5))
    t = make_targets(name, rng, 60, 5, dtype)
    w = rng.uniform(0.0, 3.0, 60).astype(dtype) if weighted else None
    eps = float(np.finfo(dtype).eps)
    kernel = getattr(kernels, name)
    for variant in (0, 1):
        loss, grad = run(kernel, z, t, w, variant, eps=eps)
        exact, exact_grad = run(kernel, z, t, w, variant)
        np.testing.assert_array_equal(grad, exact_grad)  # only the value is clipped
        want = clipped_reference(name, f64(z), f64(t), None if w is None else f64(w),
                                 eps, dtype)  # fmt: skip
        assert loss == pytest.approx(want, rel=1e-9 if dtype == np.float64 else 1e-6)
        assert loss < exact  # the hopeless rows count -log(eps) at most


@pytest.mark.parametrize("name", LOG_LOSSES)
def test_clipped_loss_is_scikit_learns(name, rng):
    base = pytest.importorskip("sklearn.neural_network._base")
    z = rng.standard_normal((50, 4)) * 3
    z[:5] *= 1e3  # probabilities of exactly 0 and 1 in float64
    t = make_targets(name, rng, 50, 4, np.float64)
    w = rng.uniform(0.5, 2.0, 50)
    loss, _ = run(getattr(kernels, name), z, t, w, eps=float(np.finfo(float).eps))
    if name == "sigmoid_binary_cross_entropy":
        want = base.binary_log_loss(t, expit(z), w)
    else:
        onehot = np.eye(4)[t] if t.ndim == 1 else t
        want = base.log_loss(onehot, naive.softmax(z), w)
    assert loss == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("name", LOG_LOSSES)
def test_clipping_keeps_a_nan(name, rng):
    z = rng.standard_normal((4, 3))
    z[2, 1] = np.nan
    t = make_targets(name, rng, 4, 3, np.float64)
    loss, _ = run(getattr(kernels, name), z, t, eps=1e-3)
    assert np.isnan(loss)


def test_poisson_is_zero_at_the_mean(dtype):
    t = np.array([[0.0, 1.0, 3.5]], dtype)
    z = np.log(np.maximum(t, 1e-30)).astype(dtype)
    z[0, 0] = -80.0  # mu ~ 0 for the zero count
    loss, grad = run(kernels.poisson_exp, z, t)
    assert abs(loss) < 1e-6
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_serial_and_parallel_agree(name, dtype, rng):
    z = rng.standard_normal((4000, 20)).astype(dtype)
    t = make_targets(name, rng, 4000, 20, dtype)
    w = rng.uniform(0.0, 2.0, 4000).astype(dtype)
    a = run(getattr(kernels, name), z, t, w, variant=0)
    b = run(getattr(kernels, name), z, t, w, variant=1)
    assert_twins_equal(a[1], b[1])  # rows are independent: bit-identical
    assert a[0] == pytest.approx(b[0], rel=1e-12)  # the sum's order differs


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_gradient_may_overwrite_the_logits(name, dtype, rng):
    # grad is z: each element is read before it is written (the labels kernel
    # writes its exponentials into grad before the row's loss is complete)
    z = (rng.standard_normal((50, 7)) * 5).astype(dtype)
    t = make_targets(name, rng, 50, 7, dtype)
    w = rng.uniform(0.0, 2.0, 50).astype(dtype)
    for variant in (0, 1):
        want_loss, want_grad = run(getattr(kernels, name), z, t, w, variant)
        inplace = z.copy()
        loss = getattr(kernels, name)[variant](inplace, t, w, inplace, 0.0)
        assert loss == want_loss
        np.testing.assert_array_equal(inplace, want_grad)


def test_against_torch(torch, rng):
    f = torch.nn.functional
    z = rng.standard_normal((7, 4)) * 3
    y = rng.integers(0, 4, 7)
    t = rng.integers(0, 2, (7, 4)).astype(float)
    cases = [
        (
            kernels.softmax_cross_entropy,
            y,
            lambda a: f.cross_entropy(a, torch.tensor(y)),
        ),
        (
            kernels.sigmoid_binary_cross_entropy,
            t,
            lambda a: (
                f.binary_cross_entropy_with_logits(a, torch.tensor(t), reduction="sum")
                / 7
            ),
        ),
        (kernels.squared_error, t, lambda a: f.mse_loss(a, torch.tensor(t))),
        (
            kernels.poisson_exp,
            t,
            lambda a: f.poisson_nll_loss(
                a, torch.tensor(t), log_input=True, full=False
            ),
        ),
    ]
    for kernel, target, torch_loss in cases:
        tz = torch.tensor(z, requires_grad=True)
        value = torch_loss(tz)
        value.backward()
        loss, grad = run(kernel, z, target)
        if kernel is kernels.poisson_exp:  # torch leaves out the constant t log t - t
            loss -= np.mean(naive.xlogy(t, t) - t)
        assert loss == pytest.approx(value.item(), rel=1e-12)
        np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=1e-10, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    z=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 10), st.integers(1, 6)),
        elements=st.floats(-1e4, 1e4, allow_nan=False),
    ),
    data=st.data(),
)
def test_hypothesis_cross_entropy(z, data):
    y = np.array(
        data.draw(
            st.lists(
                st.integers(0, z.shape[1] - 1), min_size=z.shape[0], max_size=z.shape[0]
            )
        )
    )
    loss, grad = run(kernels.softmax_cross_entropy, z, y)
    want_loss, want_grad = naive.softmax_cross_entropy(z, y)
    assert np.isfinite(loss)
    assert loss == pytest.approx(want_loss, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(grad, want_grad, atol=1e-12)


def run_tangent(name, z, t, dz, w=None, variant=0):
    w = np.empty(0, z.dtype) if w is None else w
    out = np.full_like(z, np.nan)
    getattr(kernels, f"{name}_tangent")[variant](z, t, w, dz, out)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(1, 1), (9, 1), (20, 6)])
def test_hessian_product_matches_numpy(name, weighted, shape, dtype, rng):
    n, k = shape
    z = rng.standard_normal(shape).astype(dtype)
    t = make_targets(name, rng, n, k, dtype)
    w = rng.uniform(0.1, 2.0, n).astype(dtype) if weighted else None
    dz = rng.standard_normal(shape).astype(dtype)
    h = naive.loss_hessians(name, f64(z), f64(t) if t.dtype.kind == "f" else t, w)
    expected = np.einsum("ijk,ik->ij", h, f64(dz))
    assert_close(run_tangent(name, z, t, dz, w), expected, dtype, scale=8)
    serial = run_tangent(name, z, t, dz, w, 0)
    assert_twins_equal(serial, run_tangent(name, z, t, dz, w, 1))


@pytest.mark.parametrize("name", sorted(CASES))
def test_hessian_product_matches_central_differences(name, rng):
    n, k = 5, 3
    z = rng.standard_normal((n, k))
    t = make_targets(name, rng, n, k, np.float64)
    dz = rng.standard_normal((n, k))
    h = 1e-6
    up = run(getattr(kernels, name), z + h * dz, t)[1]
    down = run(getattr(kernels, name), z - h * dz, t)[1]
    np.testing.assert_allclose(
        run_tangent(name, z, t, dz), (up - down) / (2 * h), rtol=1e-6, atol=1e-9
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_hessian_product_is_finite_for_logits_of_1e4(name, dtype):
    z = np.array([[1e4, -1e4, 0.0]], dtype)
    if name == "poisson_exp":
        z = np.array([[80.0, -1e4, 0.0]], dtype)  # e^z itself must be finite
    t = make_targets(name, np.random.default_rng(0), 1, 3, dtype)
    out = run_tangent(name, z, t, np.ones_like(z))
    assert np.isfinite(out).all()
