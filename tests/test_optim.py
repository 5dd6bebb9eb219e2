"""Optimizers over parameter dicts, schedules, clipping, state round trips."""

import math

import numpy as np
import pytest

import fastnet as fn
from fastnet import optim


def problem(rng, dtype=np.float64):
    params = {
        "W": rng.standard_normal((4, 3)).astype(dtype),
        "b": rng.standard_normal(3).astype(dtype),
    }
    grads_seq = [
        {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
        for _ in range(6)
    ]
    return params, grads_seq


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (
            lambda: optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
            lambda t, p: t.optim.SGD(
                p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01
            ),
        ),
        (
            lambda: optim.Adam(lr=0.01, weight_decay=0.01),
            lambda t, p: t.optim.Adam(p, lr=0.01, weight_decay=0.01),
        ),
        (
            lambda: optim.AdamW(lr=0.01, weight_decay=0.1),
            lambda t, p: t.optim.AdamW(p, lr=0.01, weight_decay=0.1),
        ),
        (lambda: optim.Adam(lr=0.01, clip_norm=0.5), None),
    ],
)
def test_matches_torch(torch, rng, ours, theirs):
    params, grads_seq = problem(rng)
    tp = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    opt = ours()
    topt = (theirs or (lambda t, p: t.optim.Adam(p, lr=0.01)))(torch, list(tp.values()))
    for grads in grads_seq:
        for k, t in tp.items():
            t.grad = torch.tensor(grads[k])
        if opt.clip_norm:
            torch.nn.utils.clip_grad_norm_(list(tp.values()), opt.clip_norm)
        topt.step()
        opt.step(params, {k: g.copy() for k, g in grads.items()})
    # torch's clip_grad_norm_ divides by (norm + 1e-6); fastnet clips exactly.
    rtol = 1e-6 if opt.clip_norm else 1e-12
    for k in params:
        np.testing.assert_allclose(params[k], tp[k].detach().numpy(), rtol=rtol)


def test_clipping_scales_to_the_norm(rng):
    params, grads_seq = problem(rng)
    grads = grads_seq[0]
    norm = math.sqrt(sum(float((g**2).sum()) for g in grads.values()))
    before = {k: v.copy() for k, v in params.items()}
    optim.SGD(lr=1.0, clip_norm=norm / 4).step(params, grads)
    step = math.sqrt(sum(float(((before[k] - params[k]) ** 2).sum()) for k in params))
    assert step == pytest.approx(norm / 4, rel=1e-12)


def test_state_round_trip_continues_identically(rng):
    params, grads_seq = problem(rng, np.float32)
    a = optim.Adam(lr=0.01, schedule=optim.ReduceOnPlateau(patience=0))
    pa = {k: v.copy() for k, v in params.items()}
    for g in grads_seq[:3]:
        a.step(pa, g)
    a.epoch_end(0, 100, 1.0)
    a.epoch_end(1, 200, 2.0)  # no improvement: rate divided by 5
    assert a.lr == pytest.approx(0.002)
    b = optim.Adam(lr=0.01, schedule=optim.ReduceOnPlateau(patience=0))
    b.load_state_dict(a.state_dict())
    pb = {k: v.copy() for k, v in pa.items()}
    for g in grads_seq[3:]:
        a.step(pa, g)
        b.step(pb, g)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])


def test_schedules():
    inv = optim.SGD(lr=0.1, schedule="invscaling")
    inv.epoch_end(0, 99, 1.0)
    assert inv.lr == pytest.approx(0.1 / 100**0.5)  # scikit-learn's formula
    cos = optim.SGD(lr=0.1, schedule=optim.Cosine(t_max=4))
    lrs = []
    for e in range(4):
        cos.epoch_end(e, 0, 1.0)
        lrs.append(cos.lr)
    np.testing.assert_allclose(
        lrs,
        [0.1 * (1 + math.cos(math.pi * k / 4)) / 2 for k in (1, 2, 3, 4)],
        atol=1e-15,
    )
    plateau = optim.SGD(lr=0.1, schedule="adaptive")
    for loss in (1.0, 1.0, 1.0, 1.0):
        plateau.epoch_end(0, 0, loss)
    assert plateau.lr == pytest.approx(0.02)


def test_learning_rate_is_scikit_learns_attribute(rng):
    # SGD: the current rate, read and written (scikit-learn's 'adaptive' rule and
    # user code set it)
    sgd = optim.SGD(lr=0.1, schedule="invscaling")
    sgd.epoch_end(0, 99, 1.0)
    assert sgd.learning_rate == sgd.lr == pytest.approx(0.1 / 100**0.5)
    sgd.learning_rate = 0.05
    assert sgd.lr == 0.05
    # Adam: the last step's bias-corrected size, as scikit-learn's AdamOptimizer
    adam = optim.Adam(lr=0.01, beta1=0.9, beta2=0.999)
    assert adam.learning_rate == 0.01
    p = {"w": rng.standard_normal(3)}
    for _ in range(3):
        adam.step(p, {"w": rng.standard_normal(3)})
    assert adam.learning_rate == pytest.approx(
        0.01 * math.sqrt(1 - 0.999**3) / (1 - 0.9**3), rel=1e-15
    )
    adam.learning_rate = 0.002
    assert adam.lr == 0.002


@pytest.mark.parametrize(
    "make,exc,words",
    [
        (lambda: optim.SGD(lr=0), ValueError, "lr"),
        (lambda: optim.SGD(lr=-1), ValueError, "lr"),
        (lambda: optim.SGD(lr="fast"), TypeError, "lr"),
        (lambda: optim.SGD(momentum=1.0), ValueError, "momentum"),
        (lambda: optim.SGD(nesterov=True), ValueError, "nesterov"),
        (lambda: optim.Adam(beta1=1.5), ValueError, "beta1"),
        (lambda: optim.Adam(eps=0), ValueError, "eps"),
        (lambda: optim.Adam(eps_placement="x"), ValueError, "eps_placement"),
        (lambda: optim.SGD(schedule="sometimes"), ValueError, "schedule"),
        (lambda: optim.SGD(clip_norm=float("nan")), ValueError, "clip_norm"),
    ],
)
def test_bad_hyperparameters(make, exc, words):
    with pytest.raises(exc, match=words):
        make()


def test_mismatched_params_and_grads_are_rejected(rng):
    params, grads_seq = problem(rng)
    opt = optim.SGD()
    with pytest.raises(ValueError, match="name different arrays"):
        opt.step(params, {"W": grads_seq[0]["W"]})
    with pytest.raises(ValueError, match="'b'"):
        opt.step(params, {"W": grads_seq[0]["W"], "b": np.ones(4)})
    with pytest.raises(ValueError, match="'W'"):
        opt.step(
            params, {"W": grads_seq[0]["W"].astype(np.float32), "b": grads_seq[0]["b"]}
        )


def test_optimizer_updates_module_parameters_in_place(rng):
    layer = fn.Linear(3, 2, random_state=0)
    w = layer.params["W"]
    layer.forward(rng.standard_normal((4, 3)))
    layer.backward(np.ones((4, 2), np.float32))
    expected = w - 0.5 * layer.grads["W"]
    optim.SGD(lr=0.5).step(layer.params, layer.grads)
    assert layer.params["W"] is w
    np.testing.assert_allclose(w, expected, rtol=1e-6)
