"""Do compiled Numba loops beat SciPy's BLAS on the small products of tiny networks?

Issue 15 asked for small-matrix kernels compiled in Numba below a measured size
threshold. This measures the candidates against the BLAS call the kernels make
(:func:`fastnet.kernels.blas.gemm`), both called from a compiled loop, so that no
Python runs between calls: the threshold is where a loop wins.

* ``loop``: the plain loop orders LLVM vectorises: ``out[i, :] += a[i, p] * b[p, :]``
  (``a b``), the same over ``p`` outermost (``a^T b``), and a dot product per
  element (``a b^T``: contiguous in ``p`` on both sides, a reduction LLVM does not
  vectorise without reassociation).
* ``4x8``: ``a b`` in register-sized blocks, 4 rows by 8 columns held in 32 scalar
  accumulators over the whole ``p`` loop (the shape of a BLAS micro-kernel), left
  for LLVM's SLP vectoriser to pack.

Microseconds per product, the best of 7 samples; ``python bench/small_gemm.py``.
One run on the 2-core AMD EPYC (AVX2) VM, 2026-12-04 (``sgemm``/``dgemm`` calls
included in the BLAS columns):

================  ====  ====  =====  =====  =====  ======  =====
m x k x n         a b   loop  a^T b  loop   a b^T  loop    4x8
================  ====  ====  =====  =====  =====  ======  =====
float32
32 x 64 x 32      3.4   11.9  4.4    12.0   4.4    55.7    41.7
32 x 32 x 10      1.1   6.9   1.6    7.5    1.3    7.9     7.4
128 x 128 x 10    9.2   107.7 15.2   109.4  9.8    148.5   118.6
200 x 64 x 100    33.0  136.2 35.9   152.4  34.2   1013.1  798.4
float64
32 x 64 x 32      4.6   11.0  5.3    9.7    4.7    50.0    38.9
32 x 32 x 10      1.4   6.2   1.8    4.7    1.3    5.8     6.5
128 x 128 x 10    16.7  88.0  23.1   64.9   23.5   149.0   120.9
200 x 64 x 100    61.1  242.9 58.1   288.6  87.2   1138.7  918.9
================  ====  ====  =====  =====  =====  ======  =====

No shape of the benchmark's networks (64-32-10 at batch 32, the estimators' default
100 units at batch 200, 784-256-128-10 at batch 128) runs faster in a loop, in
float32 or float64: the smallest, 32 x 32 x 10, takes 1.1-1.6 us in ``sgemm`` (call
included) and 6.9-7.9 us in loops. The blocked form did not vectorise (float32 and
float64 ran alike). So fastnet keeps BLAS for every product; what a tiny network
spends beyond its products is the subject of ``bench/report.py``.
"""

import time

import numpy as np
from numba import njit

from fastnet.kernels._config import FASTMATH
from fastnet.kernels.blas import gemm

OPTIONS = {"fastmath": set(FASTMATH), "error_model": "numpy"}
SHAPES = [(32, 64, 32), (32, 32, 10), (128, 128, 10), (200, 64, 100)]


@njit(**OPTIONS)
def _blas(a, b, out, trans_a, trans_b, reps):
    for _ in range(reps):
        gemm(a, b, out, 1.0, 0.0, trans_a, trans_b)


@njit(**OPTIONS)
def _ab(a, b, out):
    m, k = a.shape
    n = b.shape[1]
    for i in range(m):
        for j in range(n):
            out[i, j] = 0.0
        for p in range(k):
            x = a[i, p]
            for j in range(n):
                out[i, j] += x * b[p, j]


@njit(**OPTIONS)
def _atb(a, b, out):  # a is (k, m)
    k, m = a.shape
    n = b.shape[1]
    for i in range(m):
        for j in range(n):
            out[i, j] = 0.0
    for p in range(k):
        for i in range(m):
            x = a[p, i]
            for j in range(n):
                out[i, j] += x * b[p, j]


@njit(**OPTIONS)
def _abt(a, b, out):  # b is (n, k)
    m, k = a.shape
    n = b.shape[0]
    for i in range(m):
        for j in range(n):
            s = 0.0
            for p in range(k):
                s += a[i, p] * b[j, p]
            out[i, j] = s


def _blocked_source(rows=4, cols=8):
    """The source of a ``rows x cols`` block of ``a b`` in scalar accumulators."""
    acc = [[f"c{r}_{c}" for c in range(cols)] for r in range(rows)]
    lines = ["def block(a, b, out, i0, j0, k, z):"]
    lines += [
        f"    {', '.join(row)} = {', '.join('z' * 1 for _ in row)}" for row in acc
    ]
    lines.append("    for p in range(k):")
    lines += [f"        b{c} = b[p, j0 + {c}]" for c in range(cols)]
    for r, row in enumerate(acc):
        lines.append(f"        x{r} = a[i0 + {r}, p]")
        lines += [f"        {name} += x{r} * b{c}" for c, name in enumerate(row)]
    for r, row in enumerate(acc):
        lines += [f"    out[i0 + {r}, j0 + {c}] = {name}" for c, name in enumerate(row)]
    return "\n".join(lines)


_namespace = {}
exec(_blocked_source(), _namespace)  # generated above from no input
_block = njit(inline="always", **OPTIONS)(_namespace["block"])


@njit(**OPTIONS)
def _blocked(a, b, out):
    m, k = a.shape
    n = b.shape[1]
    z = out.dtype.type(0)
    mb, nb = m - m % 4, n - n % 8
    for i0 in range(0, mb, 4):
        for j0 in range(0, nb, 8):
            _block(a, b, out, i0, j0, k, z)
    for i in range(m):
        for j in range(nb if i < mb else 0, n):
            s = z
            for p in range(k):
                s += a[i, p] * b[p, j]
            out[i, j] = s


@njit(**OPTIONS)
def _repeat(f, a, b, out, reps):
    for _ in range(reps):
        f(a, b, out)


def _best_us(run, args, reps, samples=7):
    """Microseconds per call of ``run(*args, reps)``, best of ``samples``."""
    run(*args, 2)
    best = float("inf")
    for _ in range(samples):
        began = time.perf_counter()
        run(*args, reps)
        best = min(best, (time.perf_counter() - began) / reps)
    return best * 1e6


def main():
    rng = np.random.default_rng(0)
    print("dtype   m x k x n        a b  loop  a^T b  loop  a b^T  loop   4x8")
    for dtype in (np.float32, np.float64):
        for m, k, n in SHAPES:
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            at, bt = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
            out = np.empty((m, n), dtype)
            reps = max(20, int(2e7 / (m * n * k)))
            cells = []
            for x, y, ta, tb, loop in ((a, b, 0, 0, _ab), (at, b, 1, 0, _atb),
                                       (a, bt, 0, 1, _abt)):  # fmt: skip
                cells.append(_best_us(_blas, (x, y, out, ta, tb), reps))
                cells.append(_best_us(_repeat, (loop, x, y, out), reps))
            cells.append(_best_us(_repeat, (_blocked, a, b, out), reps))
            row = " ".join(f"{c:5.1f}" for c in cells)
            print(f"{np.dtype(dtype).name:7} {m:3} x {k:3} x {n:3}  {row}", flush=True)


if __name__ == "__main__":
    main()
