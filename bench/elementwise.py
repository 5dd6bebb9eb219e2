"""Elements per nanosecond of the activation kernels (their serial twins).

    python bench/elementwise.py [activation ...]

For float32 and float64: ``bias_forward`` and ``bias_backward`` on 128 x 256 (a
hidden layer's batch) and ``forward`` on 2**20 elements; best of 7 samples of 20
calls each. (``bias_forward`` adds the bias into its input in place, so repeated
calls drift the values: saturating activations such as tanh read optimistic there.)
"""

import sys
import time

import numpy as np

from fastnet.kernels import ACTIVATIONS


def rate(call, elements, samples=7, calls=20):
    """Elements per ns of ``call`` (after one warm-up call), best of ``samples``."""
    call()
    best = float("inf")
    for _ in range(samples):
        began = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - began) / calls)
    return elements / best / 1e9


def kernels_of(act, dtype, rng):
    z = rng.standard_normal((128, 256)).astype(dtype)
    b = rng.standard_normal(256).astype(dtype)
    out = np.empty_like(z)
    dy = rng.standard_normal((128, 256)).astype(dtype)
    dz = np.empty_like(dy)  # not dy itself: repeated calls would shrink it to
    db = np.empty(256, dtype)  # subnormals (logistic's f' <= 1/4), which run slowly
    saved = np.empty_like(z)  # f(z) once: bias_forward's out drifts with its calls
    act.forward[0](z.reshape(-1), 0.01, saved.reshape(-1))
    flat = rng.standard_normal(1 << 20).astype(dtype)
    flat_out = np.empty_like(flat)
    return {
        "bias_forward": (lambda: act.bias_forward[0](z, b, 0.01, out), z.size),
        "bias_backward": (
            lambda: act.bias_backward[0](dy, saved, 0.01, dz, db),
            z.size,
        ),
        "forward 2^20": (lambda: act.forward[0](flat, 0.01, flat_out), flat.size),
    }


def main(names):
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for name in names:
            calls = kernels_of(ACTIVATIONS[name], dtype, rng)
            rates = {kernel: rate(call, n) for kernel, (call, n) in calls.items()}
            line = " ".join(f"{k} {v:.2f}/ns" for k, v in rates.items())
            print(np.dtype(dtype).name, name, line)


if __name__ == "__main__":
    main(sys.argv[1:] or ["relu", "identity", "tanh"])
