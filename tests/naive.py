"""Plain NumPy/SciPy references for every kernel, evaluated in float64.

Written from the formulas in DESIGN.md, independently of the kernels: no shared code.
"""

import numpy as np
from scipy.special import expit, logsumexp, ndtr, xlogy

SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)


def _phi_cdf(x):
    # ndtr is accurate in the lower tail, where 0.5 * (1 + erf(x/√2)) cancels.
    return ndtr(x)


def _phi_pdf(x):
    return np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def _gelu_tanh(x):
    # 0.5 x (1 + tanh u) written with 1 + tanh(u) = 2 expit(2u): the same function
    # without the cancellation of 1 + tanh(u) for negative x.
    u = SQRT_2_OVER_PI * (x + 0.044715 * x**3)
    return x * expit(2 * u)


def _gelu_tanh_grad(x):
    # d/dx of 0.5 x (1 + tanh u): 0.5 (1 + t) + 0.5 x (1 - t²) u', with
    # 0.5 (1 + t) = s and 1 - t² = 4 s (1 - s), s = expit(2u).
    u = SQRT_2_OVER_PI * (x + 0.044715 * x**3)
    s = expit(2 * u)
    du = SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x**2)
    return s + 2.0 * x * s * (1.0 - s) * du


# name -> (f(x, alpha), f'(x, alpha)); derivatives in terms of x.
ACTIVATIONS = {
    "identity": (lambda x, a: x, lambda x, a: np.ones_like(x)),
    "relu": (lambda x, a: np.maximum(x, 0.0), lambda x, a: (x > 0).astype(float)),
    "leaky_relu": (
        lambda x, a: np.where(x >= 0, x, a * x),
        lambda x, a: np.where(x >= 0, 1.0, a),
    ),
    "gelu": (
        lambda x, a: x * _phi_cdf(x),
        lambda x, a: _phi_cdf(x) + x * _phi_pdf(x),
    ),
    "gelu_tanh": (lambda x, a: _gelu_tanh(x), lambda x, a: _gelu_tanh_grad(x)),
    "tanh": (lambda x, a: np.tanh(x), lambda x, a: 1.0 - np.tanh(x) ** 2),
    "logistic": (lambda x, a: expit(x), lambda x, a: expit(x) * (1.0 - expit(x))),
}


def _gelu_tanh_grad2(x):
    # d/dx of s + x s', s = expit(2u): 2 s' + x s'', written out independently of
    # the kernel's grouping.
    c, a = SQRT_2_OVER_PI, 0.044715
    u = c * (x + a * x**3)
    s = expit(2 * u)
    du, ddu = c * (1 + 3 * a * x**2), 6 * a * c * x
    ds = 2 * s * (1 - s) * du
    dds = 2 * (ds * (1 - 2 * s) * du + s * (1 - s) * ddu)
    return 2 * ds + x * dds


# name -> f''(x, alpha): second derivatives in terms of x; ReLU and LeakyReLU 0
# everywhere (the kink included), as autodiff frameworks give them.
SECOND_DERIVATIVES = {
    "identity": lambda x, a: np.zeros_like(x),
    "relu": lambda x, a: np.zeros_like(x),
    "leaky_relu": lambda x, a: np.zeros_like(x),
    "gelu": lambda x, a: _phi_pdf(x) * (2.0 - x * x),
    "gelu_tanh": lambda x, a: _gelu_tanh_grad2(x),
    "tanh": lambda x, a: -2.0 * np.tanh(x) * (1.0 - np.tanh(x) ** 2),
    "logistic": lambda x, a: expit(x) * (1 - expit(x)) * (1 - 2 * expit(x)),
}


def linear(x, w, b):
    return x @ w + b


def linear_vjp(dy, x, w):
    return dy @ w.T, x.T @ dy, dy.sum(axis=0)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_vjp(dy, x):
    """Through the explicit Jacobian diag(p) - p pᵀ of every row."""
    p = softmax(x)
    jac = np.einsum("ij,jk->ijk", p, np.eye(p.shape[1])) - np.einsum("ij,ik->ijk", p, p)
    return np.einsum("ijk,ij->ik", jac, dy)


def softmax_jvp_tangent(dy, ddy, x, tx):
    """(dx, ddx): the softmax VJP of dy and its tangent along (ddy, tx), by the
    product rule on the explicit Jacobian J(p) = diag(p) - p pᵀ."""
    p = softmax(x)
    eye = np.eye(p.shape[1])
    jac = np.einsum("ij,jk->ijk", p, eye) - np.einsum("ij,ik->ijk", p, p)
    tp = np.einsum("ijk,ik->ij", jac, tx)
    tjac = np.einsum("ij,jk->ijk", tp, eye) - np.einsum("ij,ik->ijk", tp, p)
    tjac -= np.einsum("ij,ik->ijk", p, tp)
    dx = np.einsum("ijk,ij->ik", jac, dy)
    ddx = np.einsum("ijk,ij->ik", jac, ddy) + np.einsum("ijk,ij->ik", tjac, dy)
    return dx, ddx


def loss_hessians(name, z, t, w=None):
    """Per-row Hessians (n, k, k) of a fused loss in its prediction ``z``."""
    n, k = z.shape
    w = _weights(w, n)
    if name.startswith("softmax_cross_entropy"):
        p = softmax(z)
        mass = np.ones(n) if np.ndim(t) == 1 else np.asarray(t).sum(1)
        h = np.einsum("ij,jk->ijk", p, np.eye(k)) - np.einsum("ij,ik->ijk", p, p)
        return h * (w * mass / w.sum())[:, None, None]
    if name == "sigmoid_binary_cross_entropy":
        d = expit(z) * (1 - expit(z)) * w[:, None] / w.sum()
    elif name == "squared_error":
        d = 2.0 * np.ones_like(z) * w[:, None] / (w.sum() * k)
    else:  # poisson_exp
        d = np.exp(z) * w[:, None] / (w.sum() * k)
    return np.einsum("ij,jk->ijk", d, np.eye(k))


def _weights(w, n):
    return np.ones(n) if w is None else np.asarray(w, dtype=float)


def softmax_cross_entropy(z, y, w=None):
    """y: integer labels (n,) or probability rows (n, k)."""
    n, k = z.shape
    t = np.eye(k)[y] if np.ndim(y) == 1 else y
    w = _weights(w, n)
    logp = z - logsumexp(z, axis=1, keepdims=True)
    per = -np.sum(np.where(t != 0, t * logp, 0.0), axis=1)  # 0·log 0 = 0
    loss = np.sum(w * per) / w.sum()
    grad = (np.exp(logp) * t.sum(1, keepdims=True) - t) * w[:, None] / w.sum()
    return loss, grad


def sigmoid_binary_cross_entropy(z, t, w=None):
    n = z.shape[0]
    w = _weights(w, n)
    # -[t log σ(z) + (1 - t) log(1 - σ(z))] = log(1 + e^z) - t z, via logaddexp.
    per = (np.logaddexp(0.0, z) - t * z).sum(axis=1)
    return np.sum(w * per) / w.sum(), (expit(z) - t) * w[:, None] / w.sum()


def squared_error(p, t, w=None):
    n, k = p.shape
    w = _weights(w, n)
    loss = np.sum(w[:, None] * (p - t) ** 2) / (w.sum() * k)
    return loss, 2 * (p - t) * w[:, None] / (w.sum() * k)


def poisson_exp(z, t, w=None):
    n, k = z.shape
    w = _weights(w, n)
    mu = np.exp(z)
    per = xlogy(t, t / mu) - t + mu
    return np.sum(w[:, None] * per) / (w.sum() * k), (mu - t) * w[:, None] / (
        w.sum() * k
    )


def sgd(param, grad, velocity, lr, momentum, nesterov, l2):
    """scikit-learn's SGDOptimizer._get_updates, plus L2."""
    g = grad + l2 * param
    velocity = momentum * velocity - lr * g
    step = momentum * velocity - lr * g if nesterov else velocity
    return param + step, velocity


def adam_torch(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled):
    """torch.optim.Adam / AdamW step ``t`` (1-based), written from its documentation."""
    if decoupled:
        param = param * (1 - lr * weight_decay)
        g = grad
    else:
        g = grad + weight_decay * param
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
