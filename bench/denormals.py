"""What subnormal floats cost: the GEMM, Adam and tanh on subnormal data, and a
whole ``partial_fit`` epoch on inputs scaled down to (and below) the normal range.

    python bench/denormals.py

float32, the process's default threads. Each kernel figure is the mean of 200 calls
(50 for tanh) after a warm-up, normal and subnormal data interleaved, over 3 runs;
each epoch figure is the median of 4 epochs (2 when subnormal).

The cost depends on the processor:

* the shared 2-core Intel Xeon VM, 2026-11-23: the GEMM 128x (126-132) slower on
  subnormal inputs, Adam 18.7x (18.3-18.9) with subnormal gradients, tanh 2.3x
  (2.2-2.4); an epoch 190 ms on standard-normal inputs, 202 ms on inputs scaled by
  1e-20 (still normal floats) and 10.3 s on inputs scaled by 1e-39 (subnormal), 54x;
* the shared 2-core AMD EPYC (Zen 3) VM, 2026-12-04, two runs: the GEMM 1.0x
  (0.9-1.0), Adam 2.0x and 2.4x, tanh 1.0x (1.0-1.1); the epoch 274 and 365 ms on
  standard-normal inputs, 255 and 258 ms scaled by 1e-20, 286 and 256 ms scaled by
  1e-39: no slowdown beyond the machine's noise.

fastnet does not flush to zero: the products run in OpenBLAS's threads, whose MXCSR
(per thread) fastnet does not set, so a flush in fastnet's own kernels would leave
the 128x of the GEMM on the processors where it occurs. ``fastnet train``
standardises its inputs, and the estimators' users are told to (as scikit-learn's
are); README's Speed section says so.
"""

import time
import warnings

import numpy as np

TINY = np.finfo(np.float32).tiny  # the smallest normal float32


def mean_us(f, n):
    f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - start) / n * 1e6


def kernels_table(rng):
    from fastnet import kernels

    A = rng.standard_normal((128, 784)).astype(np.float32)
    W = (rng.standard_normal((784, 256)) * 0.05).astype(np.float32)
    out = np.empty((128, 256), np.float32)
    sub = (A * 1e-39).astype(np.float32)
    assert np.all((np.abs(sub) < TINY) | (sub == 0))
    x = rng.standard_normal(1_000_000).astype(np.float32)
    xs, y = (x * 1e-39).astype(np.float32), np.empty_like(x)
    tanh = kernels.ACTIVATIONS["tanh"].forward[0]
    n = 235_146
    p = rng.standard_normal(n).astype(np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    gs = (g * 1e-39).astype(np.float32)
    adam = kernels.adam_update[0]
    h = [np.float32(a) for a in (1e-3, 0.9, 0.999, 1e-8, 0.0, 1.0)]
    rows = [
        ("GEMM 128x784 @ 784x256", lambda d: np.dot(d, W, out=out), A, sub, 200),
        ("Adam, 235k parameters", lambda d: adam(p, d, m, v, *h), g, gs, 200),
        ("tanh, 1M elements", lambda d: tanh(d, 0.0, y), x, xs, 50),
    ]
    print("| kernel | normal | subnormal | ratio, 3 runs |")
    print("| --- | --- | --- | --- |")
    for name, f, normal, subnormal, calls in rows:
        ratios, times = [], []
        for _ in range(3):
            a = mean_us(lambda f=f, d=normal: f(d), calls)
            b = mean_us(lambda f=f, d=subnormal: f(d), calls)
            ratios.append(b / a)
            times.append((a, b))
        a, b = np.median(times, axis=0)
        print(
            f"| {name} | {a:.0f} µs | {b:.0f} µs | {np.median(ratios):.1f}x "
            f"({min(ratios):.1f}-{max(ratios):.1f}) |"
        )


def epoch_table(rng):
    import fastnet as fn

    X = rng.standard_normal((20_000, 784)).astype(np.float32)
    y = rng.integers(0, 10, 20_000)
    print("\n| inputs scaled by | partial_fit epoch, 784-256-128-10, batch 128 |")
    print("| --- | --- |")
    for scale in (1.0, 1e-20, 1e-39):
        Xs = (X * scale).astype(np.float32)
        est = fn.MLPClassifier((256, 128), batch_size=128, random_state=0)
        est.partial_fit(Xs[:256], y[:256], classes=np.arange(10))  # compile
        times = []
        for _ in range(4 if scale > 1e-38 else 2):
            start = time.perf_counter()
            est.partial_fit(Xs, y)
            times.append(time.perf_counter() - start)
        print(f"| {scale:g} | {np.median(times) * 1e3:.0f} ms |")


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    generator = np.random.default_rng(0)
    kernels_table(generator)
    epoch_table(generator)
