"""fn.hvp / fn.ggn: exact Hessian-vector products through every module and a Graph.

Checked in float64 against torch.autograd.functional.hvp (skipped without torch) and
against central differences of fastnet's own gradients; symmetry; float32; the
model's params and grads untouched; errors for bad vectors.
"""

import numpy as np
import pytest

import fastnet as fn
from fastnet.kernels import ACTIVATIONS
from tests.conftest import activation_modules

ACTS = sorted(ACTIVATIONS)
LOSSES = ["softmax_ce", "softmax_ce_dense", "sigmoid_bce", "mse", "poisson"]
N, D, H, K = 7, 4, 5, 3


def activation(name):
    return activation_modules()[name]()


def make_loss(name, rng, dtype=np.float64):
    """(loss module, target) for N rows of K outputs."""
    if name == "softmax_ce":
        return fn.SoftmaxCrossEntropy(), rng.integers(0, K, N)
    if name == "softmax_ce_dense":
        t = rng.uniform(size=(N, K))
        return fn.SoftmaxCrossEntropy(), (t / t.sum(1, keepdims=True)).astype(dtype)
    if name == "sigmoid_bce":
        return fn.SigmoidBinaryCrossEntropy(), rng.uniform(size=(N, K)).astype(dtype)
    if name == "mse":
        return fn.MSELoss(), rng.standard_normal((N, K)).astype(dtype)
    return fn.PoissonLoss(), rng.poisson(1.5, (N, K)).astype(dtype)


def mlp(act, dtype=np.float64, extra=()):
    return fn.Sequential(
        fn.Linear(D, H, dtype=dtype, random_state=1),
        activation(act),
        *extra,
        fn.Linear(H, K, dtype=dtype, random_state=2),
    )


def direction(model, rng):
    return {k: rng.standard_normal(p.shape) for k, p in model.params.items()}


def gradient(model, loss, x, target, train=True):
    """fastnet's own gradient, as a dict of copies."""
    z = model.forward(**x, train=train) if isinstance(x, dict) else model.forward(x)
    loss.forward(z, target)
    dz = loss.backward()
    model.backward(dz)
    return {k: g.copy() for k, g in model.grads.items()}


def fd_hvp(model, loss, x, target, v, h=1e-5, before=None):
    """Central differences of fastnet's gradient along ``v``; ``before`` runs before
    each gradient (to restore a dropout generator)."""
    params = model.params
    saved = {k: p.copy() for k, p in params.items()}
    out = {}
    grads = []
    for sign in (1, -1):
        for k, p in params.items():
            p[...] = saved[k] + sign * h * v[k]
        if before:
            before()
        grads.append(gradient(model, loss, x, target))
    for k, p in params.items():
        p[...] = saved[k]
        out[k] = (grads[0][k] - grads[1][k]) / (2 * h)
    return out


def max_err(a, b):
    """(max abs error, max abs error / max |b|) over all arrays."""
    abs_err = max(float(np.max(np.abs(a[k] - b[k]))) for k in b)
    scale = max(float(np.max(np.abs(b[k]))) for k in b)
    return abs_err, abs_err / scale


# -- torch references --------------------------------------------------------------
def torch_act(torch, name):
    F = torch.nn.functional
    return {
        "identity": lambda z: z,
        "relu": F.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, 0.1),
        "gelu": F.gelu,
        "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"),
        "tanh": torch.tanh,
        "logistic": torch.sigmoid,
    }[name]


def torch_loss(torch, name, target):
    F = torch.nn.functional
    t = torch.as_tensor(target)
    if name == "softmax_ce":
        return lambda z: F.cross_entropy(z, t)
    if name == "softmax_ce_dense":
        return lambda z: -(t * F.log_softmax(z, 1)).sum(1).mean()
    if name == "sigmoid_bce":
        return lambda z: (
            F.binary_cross_entropy_with_logits(z, t, reduction="none").sum(1).mean()
        )
    if name == "mse":
        return lambda z: ((z - t) ** 2).mean()
    return lambda z: (torch.exp(z) - t * z).mean()  # + terms constant in z


def torch_hvp(torch, f, params, v):
    names = list(params)
    _, hv = torch.autograd.functional.hvp(
        f,
        tuple(torch.tensor(params[k]) for k in names),
        tuple(torch.tensor(v[k]) for k in names),
    )
    return {k: t.numpy() for k, t in zip(names, hv, strict=True)}


# -- every activation x every loss ---------------------------------------------------
@pytest.mark.parametrize("loss_name", LOSSES)
@pytest.mark.parametrize("act", ACTS)
def test_matches_torch_and_differences(act, loss_name, torch):
    rng = np.random.default_rng(10 * ACTS.index(act) + LOSSES.index(loss_name))
    x = rng.standard_normal((N, D))
    model = mlp(act)
    loss, target = make_loss(loss_name, rng)
    v = direction(model, rng)
    hv = fn.hvp(model, loss, x, target, v)

    tx, ta = torch.tensor(x), torch_act(torch, act)
    tl = torch_loss(torch, loss_name, target)

    def f(W0, b0, W1, b1):
        return tl(ta(tx @ W0 + b0) @ W1 + b1)

    ref = torch_hvp(torch, f, model.params, v)
    assert max_err(hv, ref)[1] < 1e-12
    fd = fd_hvp(model, loss, x, target, v)
    assert max_err(hv, fd)[1] < 1e-7


# -- a Graph with fan-out into a bilinear Einsum -----------------------------------
def bilinear_graph(rng, dtype=np.float64):
    """h = tanh(x W0 + b0) feeds a Linear and the bilinear form h P h (P a
    parameter node), whose product is the output: seed 004's fan-out, with cross
    terms between the two consumers."""
    g = fn.Graph()
    x = g.input("x")
    P = g.param("P", (0.5 * rng.standard_normal((H, H))).astype(dtype))
    h = g.add(fn.Linear(D, H, dtype=dtype, random_state=3), x, name="lin")
    a = g.add(fn.Tanh(), h, name="a")
    o = g.add(fn.Linear(H, K, dtype=dtype, random_state=4), a, name="out")
    s = g.add(fn.Einsum("bi,ij,bj->b"), a, P, a, name="bil")
    g.add(fn.Einsum("bk,b->bk"), o, s, name="y")
    return g


def torch_graph(torch, x, target):
    tx = torch.tensor(x)
    tl = torch_loss(torch, "softmax_ce", target)

    def f(P, W0, b0, W1, b1):
        a = torch.tanh(tx @ W0 + b0)
        s = torch.einsum("bi,ij,bj->b", a, P, a)
        return tl((a @ W1 + b1) * s[:, None])

    return f


def test_graph_with_fan_out_matches_torch_and_differences(torch):
    rng = np.random.default_rng(4)
    g = bilinear_graph(rng)
    assert list(g.params) == ["P", "lin.W", "lin.b", "out.W", "out.b"]
    x = rng.standard_normal((N, D))
    loss, target = make_loss("softmax_ce", rng)
    v = direction(g, rng)
    hv = fn.hvp(g, loss, {"x": x}, target, v)
    ref = torch_hvp(torch, torch_graph(torch, x, target), g.params, v)
    assert max_err(hv, ref)[1] < 1e-12
    fd = fd_hvp(g, loss, {"x": x}, target, v)
    assert max_err(hv, fd)[1] < 1e-7


def test_graph_input_tangents_are_not_needed():
    # a graph input feeding an Einsum directly: no tangent, no input gradient
    rng = np.random.default_rng(5)
    g = fn.Graph()
    x = g.input("x")
    W = g.param("W", rng.standard_normal((D, K)))
    g.add(fn.Einsum("bi,ik->bk"), x, W)
    xs = rng.standard_normal((N, D))
    loss, target = make_loss("mse", rng)
    v = {"W": rng.standard_normal((D, K))}
    hv = fn.hvp(g, loss, {"x": xs}, target, v)
    # linear in W: H v = 2 X^T X v / (N K)
    np.testing.assert_allclose(hv["W"], 2 * xs.T @ xs @ v["W"] / (N * K), rtol=1e-12)
    np.testing.assert_allclose(fn.ggn(g, loss, {"x": xs}, target, v)["W"], hv["W"])


# -- Softmax and Dropout modules -------------------------------------------------------
def test_softmax_module_and_dropout_with_fixed_mask():
    rng = np.random.default_rng(6)
    drop = fn.Dropout(0.3, random_state=0)
    model = fn.Sequential(
        fn.Linear(D, H, dtype=np.float64, random_state=1),
        fn.GELU(),
        drop,
        fn.Linear(H, K, dtype=np.float64, random_state=2),
        fn.Softmax(),
    )
    x = rng.standard_normal((N, D))
    loss, target = make_loss("mse", rng)
    v = direction(model, rng)
    state = drop.rng.bit_generator.state

    def restore():  # the same mask in every forward
        drop.rng.bit_generator.state = state

    restore()
    hv = fn.hvp(model, loss, x, target, v)
    fd = fd_hvp(model, loss, x, target, v, before=restore)
    assert max_err(hv, fd)[1] < 1e-7
    assert (drop._u < 0.3).any()  # the mask dropped something


# -- properties -----------------------------------------------------------------
@pytest.mark.parametrize("act", ["gelu", "tanh", "relu"])
def test_symmetric(act):
    rng = np.random.default_rng(7)
    model = mlp(act)
    x = rng.standard_normal((N, D))
    loss, target = make_loss("softmax_ce", rng)
    u, v = direction(model, rng), direction(model, rng)
    hu = fn.hvp(model, loss, x, target, u)
    hv = fn.hvp(model, loss, x, target, v)
    a = sum(float(np.sum(u[k] * hv[k])) for k in u)
    b = sum(float(np.sum(v[k] * hu[k])) for k in u)
    assert abs(a - b) <= 1e-12 * max(abs(a), 1.0)


def test_graph_symmetric_and_ggn_psd():
    rng = np.random.default_rng(8)
    g = bilinear_graph(rng)
    x = {"x": rng.standard_normal((N, D))}
    loss, target = make_loss("softmax_ce", rng)
    u, v = direction(g, rng), direction(g, rng)
    dot = lambda a, b: sum(float(np.sum(a[k] * b[k])) for k in a)  # noqa: E731
    hu, hv = (fn.hvp(g, loss, x, target, w) for w in (u, v))
    assert dot(u, hv) == pytest.approx(dot(v, hu), rel=1e-12)
    gu, gv = (fn.ggn(g, loss, x, target, w) for w in (u, v))
    assert dot(u, gv) == pytest.approx(dot(v, gu), rel=1e-12)
    for w in (u, v, direction(g, rng)):
        assert dot(w, fn.ggn(g, loss, x, target, w)) >= 0.0


@pytest.mark.parametrize("loss_name", LOSSES)
def test_ggn_matches_torch(loss_name, torch):
    # J^T H_loss J v from torch's jvp, the loss Hessian and vjp
    rng = np.random.default_rng(9)
    model = mlp("tanh")
    x = rng.standard_normal((N, D))
    loss, target = make_loss(loss_name, rng)
    v = direction(model, rng)
    G = fn.ggn(model, loss, x, target, v)
    names = list(model.params)
    tx = torch.tensor(x)

    def out(W0, b0, W1, b1):
        return torch.tanh(tx @ W0 + b0) @ W1 + b1

    ps = tuple(torch.tensor(model.params[k]) for k in names)
    z, jv = torch.autograd.functional.jvp(
        out, ps, tuple(torch.tensor(v[k]) for k in names)
    )
    _, hjv = torch.autograd.functional.hvp(torch_loss(torch, loss_name, target), z, jv)
    _, ref = torch.autograd.functional.vjp(out, ps, hjv)
    ref = {k: r.numpy() for k, r in zip(names, ref, strict=True)}
    assert max_err(G, ref)[1] < 1e-12


def test_float32_within_float32_tolerance():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((N, D))
    loss, target = make_loss("sigmoid_bce", rng)
    m64, m32 = mlp("gelu"), mlp("gelu", np.float32)
    for k, p in m32.params.items():
        p[...] = m64.params[k]  # the same (float32-representable) weights
    v = {
        k: p.astype(np.float32).astype(np.float64)
        for k, p in direction(m64, rng).items()
    }
    h64 = fn.hvp(m64, loss, x, target, v)
    h32 = fn.hvp(m32, loss, x.astype(np.float32), target.astype(np.float32), v)
    assert all(h32[k].dtype == np.float32 for k in h32)
    assert max_err(h32, h64)[1] < 1e-5
    g = bilinear_graph(rng)
    g32 = bilinear_graph(np.random.default_rng(0), np.float32)
    for k, p in g32.params.items():
        p[...] = g.params[k]
    for k, p in g.params.items():
        p[...] = g32.params[k]  # representable in float32
    loss, target = make_loss("softmax_ce", rng)
    v = {
        k: p.astype(np.float32).astype(np.float64) for k, p in direction(g, rng).items()
    }
    h64 = fn.hvp(g, loss, {"x": x}, target, v)
    h32 = fn.hvp(g32, loss, {"x": x.astype(np.float32)}, target, v)
    assert max_err(h32, h64)[1] < 1e-5


def test_params_and_grads_unchanged():
    rng = np.random.default_rng(11)
    for model in (mlp("tanh"), bilinear_graph(rng)):
        x = rng.standard_normal((N, D))
        inputs = {"x": x} if isinstance(model, fn.Graph) else x
        loss, target = make_loss("softmax_ce", rng)
        gradient(model, loss, inputs, target)  # grads now hold something
        before_p = {k: p.copy() for k, p in model.params.items()}
        before_g = {k: g.copy() for k, g in model.grads.items()}
        ids = {k: id(p) for k, p in model.params.items()}
        hv = fn.hvp(model, loss, inputs, target, direction(model, rng))
        fn.ggn(model, loss, inputs, target, direction(model, rng))
        for k in before_p:
            np.testing.assert_array_equal(model.params[k], before_p[k])
            np.testing.assert_array_equal(model.grads[k], before_g[k])
            assert id(model.params[k]) == ids[k]
            assert not np.shares_memory(hv[k], model.params[k])
            assert not np.shares_memory(hv[k], model.grads[k])


def test_linear_model_hessian_equals_ggn_and_is_cheap_to_check():
    rng = np.random.default_rng(12)
    model = fn.Sequential(fn.Linear(D, K, dtype=np.float64, random_state=0))
    x = rng.standard_normal((N, D))
    loss, target = make_loss("mse", rng)
    v = direction(model, rng)
    hv, gv = fn.hvp(model, loss, x, target, v), fn.ggn(model, loss, x, target, v)
    for k in hv:
        np.testing.assert_allclose(hv[k], gv[k], rtol=1e-13, atol=1e-15)
    xb = np.hstack([x, np.ones((N, 1))])
    vw = np.vstack([v["0.W"], v["0.b"]])
    expected = 2 * xb.T @ xb @ vw / (N * K)
    np.testing.assert_allclose(hv["0.W"], expected[:D], rtol=1e-12)
    np.testing.assert_allclose(hv["0.b"], expected[D], rtol=1e-12)


# -- errors ---------------------------------------------------------------------------
def test_bad_vectors_raise_clear_errors():
    rng = np.random.default_rng(13)
    model = mlp("relu")
    x = rng.standard_normal((N, D))
    loss, target = make_loss("softmax_ce", rng)
    v = direction(model, rng)
    with pytest.raises(ValueError, match=r"missing \['2.b'\]"):
        fn.hvp(model, loss, x, target, {k: a for k, a in v.items() if k != "2.b"})
    with pytest.raises(ValueError, match=r"unknown \['3.W'\]"):
        fn.hvp(model, loss, x, target, {**v, "3.W": v["2.W"]})
    with pytest.raises(ValueError, match=r"vector\['0.W'\] has shape"):
        fn.hvp(model, loss, x, target, {**v, "0.W": v["0.W"].T})
    with pytest.raises(TypeError, match="real"):
        fn.hvp(model, loss, x, target, {**v, "0.b": v["0.b"] + 0j})
    with pytest.raises(TypeError):
        fn.hvp(model, loss, x, target, {**v, "0.b": np.array(["a"] * H)})
    with pytest.raises(TypeError, match="dict"):
        fn.hvp(model, loss, x, target, list(v.values()))
    with pytest.raises(TypeError, match="fastnet model"):
        fn.hvp(object(), loss, x, target, v)
    with pytest.raises(TypeError, match="dict"):
        fn.hvp(
            bilinear_graph(rng), loss, x, target, direction(bilinear_graph(rng), rng)
        )
    # integer directions are cast to the parameters' dtype
    ints = {k: np.ones(a.shape, dtype=np.int64) for k, a in v.items()}
    ones = {k: np.ones(a.shape) for k, a in v.items()}
    hi, ho = fn.hvp(model, loss, x, target, ints), fn.hvp(model, loss, x, target, ones)
    for k in hi:
        np.testing.assert_array_equal(hi[k], ho[k])


def test_modules_without_second_order_raise():
    class Plain(fn.Module):
        def forward(self, x, train=True):
            return x

        def backward(self, dy):
            return dy

    rng = np.random.default_rng(14)
    model = fn.Sequential(fn.Linear(D, K, dtype=np.float64), Plain())
    loss, target = make_loss("mse", rng)
    with pytest.raises(TypeError, match="Plain has no tangent_forward"):
        fn.hvp(model, loss, rng.standard_normal((N, D)), target, direction(model, rng))


def test_lazy_export():
    import fastnet

    assert "hvp" in fastnet.__all__ and "ggn" in fastnet.__all__
    assert fastnet.hvp.__module__ == "fastnet.nn.second_order"
