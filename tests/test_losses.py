"""Loss modules: values, gradients, targets and weights, and their checks."""

import numpy as np
import pytest

import fastnet as fn
from tests import naive
from tests.conftest import assert_close


def test_softmax_cross_entropy_labels_and_probabilities(dtype, rng):
    z = rng.standard_normal((6, 4)).astype(dtype)
    y = rng.integers(0, 4, 6)
    w = rng.uniform(0.5, 2, 6)
    loss_fn = fn.SoftmaxCrossEntropy()
    want, want_grad = naive.softmax_cross_entropy(z.astype(np.float64), y, w)
    assert_close(loss_fn(z, y, sample_weight=w), want, dtype, 10)
    assert_close(loss_fn.backward(), want_grad, dtype, 10)
    assert loss_fn.backward().dtype == dtype
    onehot = np.eye(4)[y]
    assert_close(loss_fn.forward(z, onehot, w), want, dtype, 10)
    # integral float labels are labels too
    assert_close(loss_fn.forward(z, y.astype(float), w), want, dtype, 10)


@pytest.mark.parametrize(
    "module,ref",
    [
        (fn.SigmoidBinaryCrossEntropy, naive.sigmoid_binary_cross_entropy),
        (fn.MSELoss, naive.squared_error),
        (fn.PoissonLoss, naive.poisson_exp),
    ],
)
@pytest.mark.parametrize("shape", [(5,), (5, 3)])
def test_elementwise_losses(module, ref, shape, dtype, rng):
    z = rng.standard_normal(shape).astype(dtype)
    t = rng.integers(0, 2, shape).astype(dtype)
    loss_fn = module()
    loss = loss_fn(z, t)
    grad = loss_fn.backward()
    assert grad.shape == shape
    want, want_grad = ref(z.reshape(5, -1).astype(np.float64), t.reshape(5, -1))
    assert_close(loss, want, dtype, 10)
    assert_close(grad.reshape(5, -1), want_grad, dtype, 10)


@pytest.mark.parametrize(
    "target,exc,words",
    [
        (np.array([0, 1, 3]), ValueError, r"\[0, 3\)"),
        (np.array([0, -1, 2]), ValueError, r"\[0, 3\)"),
        (np.array([0.5, 1, 2]), TypeError, "integers"),
        (np.array([0, 1]), ValueError, "shape"),
        (np.array(["a", "b", "c"]), TypeError, "integers"),
        (np.full((3, 3), np.nan), ValueError, "NaN"),
        (-np.eye(3), ValueError, ">= 0"),
    ],
)
def test_cross_entropy_rejects_bad_targets(target, exc, words):
    with pytest.raises(exc, match=words):
        fn.SoftmaxCrossEntropy().forward(np.zeros((3, 3)), target)


@pytest.mark.parametrize(
    "weights,words",
    [
        (np.ones(2), "shape"),
        (np.array([1.0, -1.0, 1.0]), "non-negative"),
        (np.array([1.0, np.nan, 1.0]), "finite"),
        (np.zeros(3), "positive sum"),
    ],
)
def test_bad_sample_weights_are_rejected(weights, words):
    with pytest.raises(ValueError, match=words):
        fn.MSELoss().forward(np.zeros(3), np.zeros(3), sample_weight=weights)


def test_target_ranges_are_checked():
    with pytest.raises(ValueError, match="<= 1"):
        fn.SigmoidBinaryCrossEntropy().forward(np.zeros(2), np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match=">= 0"):
        fn.PoissonLoss().forward(np.zeros(2), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="shape"):
        fn.MSELoss().forward(np.zeros((2, 2)), np.zeros(4))


def test_empty_batch_and_order_errors():
    with pytest.raises(ValueError, match="at least one sample"):
        fn.SoftmaxCrossEntropy().forward(np.zeros((0, 3)), np.zeros(0, int))
    with pytest.raises(ValueError, match="at least one output"):
        fn.SoftmaxCrossEntropy().forward(np.zeros((2, 0)), np.zeros(2, int))
    with pytest.raises(ValueError, match="2-D"):
        fn.SoftmaxCrossEntropy().forward(np.zeros(3), np.zeros(3, int))
    with pytest.raises(RuntimeError, match="before forward"):
        fn.MSELoss().backward()


def test_cross_entropy_finite_at_extreme_float32_logits():
    z = np.array([[1e4, -1e4, 0.0]], np.float32)
    loss_fn = fn.SoftmaxCrossEntropy()
    assert loss_fn.forward(z, [1]) == pytest.approx(2e4)
    np.testing.assert_allclose(loss_fn.backward(), [[1, -1, 0]])
