"""The correct formulas of the seed derivations, checked as DESIGN.md states them."""

import numpy as np

import fastnet as fn


def test_dda3020_two_layer_network(rng):
    # Seed 003: z = W x + b1, h = relu(z), a = V h + b2, p = softmax(a), L = CE.
    # Row-major here: X (n, d), W (d, m), V (m, k). With the mean over n rows,
    # δ1 = (p − y)/n, δ2 = (δ1 Vᵀ) ⊙ 1(z > 0), dV = hᵀ δ1, dW = xᵀ δ2.
    n, d, m, k = 8, 5, 6, 3
    x = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    first = fn.Linear(d, m, dtype=np.float64, random_state=0)
    relu = fn.ReLU()
    second = fn.Linear(m, k, dtype=np.float64, random_state=1)
    loss_fn = fn.SoftmaxCrossEntropy()

    z = first.forward(x).copy()
    h = relu.forward(z).copy()
    a = second.forward(h)
    loss_fn.forward(a, y)
    d1 = loss_fn.backward().copy()
    d2 = relu.backward(second.backward(d1)).copy()
    first.backward(d2)

    w, v = first.params["W"], second.params["W"]
    e = np.exp(a - a.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    delta1 = (p - np.eye(k)[y]) / n
    delta2 = (delta1 @ v.T) * (z > 0)
    np.testing.assert_allclose(d1, delta1, rtol=1e-14, atol=1e-17)
    np.testing.assert_allclose(d2, delta2, rtol=1e-14, atol=1e-17)
    np.testing.assert_allclose(second.grads["W"], h.T @ delta1, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(second.grads["b"], delta1.sum(0), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(first.grads["W"], x.T @ delta2, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(first.grads["b"], delta2.sum(0), rtol=1e-13, atol=1e-16)
    assert np.all(w == first.params["W"])  # backward does not touch parameters


def test_seed_errors_are_not_what_fastnet_computes():
    # Seed 000's φ has √(2/π): twice the true density at 0; seed 001 uses erf for Φ.
    g = fn.GELU()
    x = np.array([0.0, 1.0])
    g.forward(x)
    grad = g.backward(np.ones(2))
    assert grad[0] == 0.5  # Φ(0) + 0·φ(0)
    phi1 = np.exp(-0.5) / np.sqrt(2 * np.pi)
    from scipy.special import erf, ndtr

    assert np.isclose(grad[1], ndtr(1.0) + phi1)
    assert not np.isclose(grad[1], ndtr(1.0) + np.sqrt(2 / np.pi) * np.exp(-0.5))
    assert not np.isclose(grad[1], erf(1.0) + phi1)
