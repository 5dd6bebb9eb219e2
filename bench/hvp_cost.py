"""Cost of one exact Hessian-vector product (``fn.hvp``) against one gradient.

    python bench/hvp_cost.py [--runs 5] [--reps 50]

A gradient is ``model.forward`` + ``loss.forward`` + ``loss.backward`` +
``model.backward``; an hvp is one ``fn.hvp`` call (forward, tangent forward, loss
Hessian product, backward with tangents, the result dict allocated). Both float32,
after warm-up calls (compilation excluded), timed alternately (grad, hvp, grad,
...) so that drifts in machine load hit both alike. Each run's ratio is the median
hvp time over the median gradient time of that run; printed: the median ratio over
the runs and its min-max (the target of issue 18: at most 3x).
"""

import argparse
import itertools
import os
import statistics
import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

import fastnet as fn

WORKLOADS = {
    "784-256-128-10, batch 128": ((784, 256, 128, 10), 128),
    "64-32-10, batch 32": ((64, 32, 10), 32),
}


def build(sizes, batch, dtype=np.float32):
    rng = np.random.default_rng(0)
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(fn.Linear(a, b, dtype=dtype, random_state=i))
        if i < len(sizes) - 2:
            layers.append(fn.ReLU())
    model = fn.Sequential(*layers)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], batch)
    v = {k: rng.standard_normal(p.shape).astype(dtype) for k, p in model.params.items()}
    return model, fn.SoftmaxCrossEntropy(), x, y, v


def gradient(model, loss, x, y):
    loss.forward(model.forward(x), y)
    model.backward(loss.backward())


def measure(name, sizes, batch, runs, reps):
    model, loss, x, y, v = build(sizes, batch)
    for _ in range(5):  # warm-up: compilation and buffers
        gradient(model, loss, x, y)
        fn.hvp(model, loss, x, y, v)
    ratios, grads, hvps = [], [], []
    for _ in range(runs):
        tg, th = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            gradient(model, loss, x, y)
            t1 = time.perf_counter()
            fn.hvp(model, loss, x, y, v)
            t2 = time.perf_counter()
            tg.append(t1 - t0)
            th.append(t2 - t1)
        g, h = statistics.median(tg), statistics.median(th)
        grads.append(g)
        hvps.append(h)
        ratios.append(h / g)
    print(
        f"| {name} | {statistics.median(grads) * 1e3:.3f} ms "
        f"| {statistics.median(hvps) * 1e3:.3f} ms "
        f"| {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |"
    )
    return ratios


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    threads = int(os.environ.get("FASTNET_BENCH_THREADS", "2"))
    numba.set_num_threads(threads)
    print(f"float32, {threads} threads, {args.runs} runs x {args.reps} repetitions")
    print("| workload | gradient | hvp | hvp / gradient, median (min-max) |")
    print("| --- | --- | --- | --- |")
    with threadpool_limits(threads):
        for name, (sizes, batch) in WORKLOADS.items():
            measure(name, sizes, batch, args.runs, args.reps)


if __name__ == "__main__":
    main()
