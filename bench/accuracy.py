"""Max error of every kernel against its float64 NumPy reference, float32 and float64.

    python bench/accuracy.py

Inputs: 100,000 standard-normal values times 4 for activations; (2,000, 10) logits
times 4 for softmax and losses; (256, 128) @ (128, 64) for linear. Errors are
relative to max(|reference|, 1) elementwise, so tiny tails do not inflate them.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastnet import kernels
from tests import naive


def err(got, want):
    got = np.asarray(got, np.float64)
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0)))


def rows():
    rng = np.random.default_rng(0)
    x64 = rng.standard_normal(100_000) * 4
    for name, act in sorted(kernels.ACTIVATIONS.items()):
        f, df = naive.ACTIVATIONS[name]
        cells = []
        for dt in (np.float32, np.float64):
            x = x64.astype(dt)
            xr = x.astype(np.float64)
            y = np.empty_like(x)
            act.forward[0](x, 0.01, y)
            g = np.empty_like(x)
            act.backward[0](np.ones_like(x), x if act.saves == "x" else y, 0.01, g)
            cells += [err(y, f(xr, 0.01)), err(g, df(xr, 0.01))]
        yield name, cells

    z64 = rng.standard_normal((2000, 10)) * 4
    dy64 = rng.standard_normal((2000, 10))
    labels = rng.integers(0, 10, 2000)
    cells = []
    for dt in (np.float32, np.float64):
        z, dy = z64.astype(dt), dy64.astype(dt)
        p = np.empty_like(z)
        kernels.softmax_forward[0](z, p)
        d = np.empty_like(z)
        kernels.softmax_backward[0](dy, p, d)
        zr, dyr = z.astype(np.float64), dy.astype(np.float64)
        cells += [err(p, naive.softmax(zr)), err(d, naive.softmax_vjp(dyr, zr))]
    yield "softmax", cells

    targets = {
        "softmax_cross_entropy": labels,
        "sigmoid_binary_cross_entropy": (z64 > 0).astype(float),
        "squared_error": dy64,
        "poisson_exp": rng.poisson(2.0, z64.shape).astype(float),
    }
    refs = {
        "softmax_cross_entropy": naive.softmax_cross_entropy,
        "sigmoid_binary_cross_entropy": naive.sigmoid_binary_cross_entropy,
        "squared_error": naive.squared_error,
        "poisson_exp": naive.poisson_exp,
    }
    for name, t64 in targets.items():
        cells = []
        for dt in (np.float32, np.float64):
            z = z64.astype(dt)
            t = t64 if t64.dtype.kind == "i" else t64.astype(dt)
            g = np.empty_like(z)
            loss = getattr(kernels, name)[0](z, t, np.empty(0, dt), g, 0.0)
            want, want_g = refs[name](z.astype(np.float64), t)
            # gradients are O(1/n): compare them at the scale of n * grad
            cells += [err(loss, want), err(g * z.shape[0], want_g * z.shape[0])]
        yield name, cells

    x64 = rng.standard_normal((256, 128))
    w64 = rng.standard_normal((128, 64)) / 10
    b64 = rng.standard_normal(64)
    dy64 = rng.standard_normal((256, 64))
    cells = []
    for dt in (np.float32, np.float64):
        x, w, b, dy = (a.astype(dt) for a in (x64, w64, b64, dy64))
        y = np.empty((256, 64), dt)
        kernels.linear_forward(x, w, b, y)
        dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)
        kernels.linear_backward(dy, x, w, dx, dw, db)
        r = [a.astype(np.float64) for a in (x, w, b, dy)]
        want_dx, want_dw, want_db = naive.linear_vjp(r[3], r[0], r[1])
        back = max(err(dx, want_dx), err(dw, want_dw), err(db, want_db))
        cells += [err(y, naive.linear(*r[:3])), back]
    yield "linear", cells

    p64 = rng.standard_normal(100_000)
    g64 = rng.standard_normal(100_000)
    for name in ("sgd", "adam"):
        cells = []
        for dt in (np.float32, np.float64):
            p, g = p64.astype(dt), g64.astype(dt)
            s1, s2 = np.zeros_like(p), np.zeros_like(p)
            pr, gr = p.astype(np.float64), g.astype(np.float64)
            if name == "sgd":
                kernels.sgd_update[0](p, g, s1, dt(0.1), dt(0.9), True, dt(1e-4))
                want, _ = naive.sgd(pr, gr, np.zeros_like(pr), 0.1, 0.9, True, 1e-4)
            else:
                c = np.sqrt(1 - 0.999)
                args = (0.01 * c / 0.1, 0.9, 0.999, 1e-8 * c, 0.0, 1 - 0.01 * 0.01)
                kernels.adam_update[0](p, g, s1, s2, *(dt(a) for a in args))
                z = np.zeros_like(pr)
                want, _, _ = naive.adam_torch(
                    pr, gr, z, z, 1, 0.01, 0.9, 0.999, 1e-8, 0.01, True
                )
            cells += [err(p, want), float("nan")]
        yield name, cells


def main():
    print("| kernel | f32 forward | f32 backward | f64 forward | f64 backward |")
    print("| --- | --- | --- | --- | --- |")
    for name, cells in rows():
        text = ["—" if c != c else f"{c:.1e}" for c in cells]  # NaN: no backward
        print(f"| {name} | " + " | ".join(text) + " |")


if __name__ == "__main__":
    main()
