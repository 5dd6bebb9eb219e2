"""Per-call overhead of ``fastnet.einsum`` / ``einsum_vjp`` on tiny operands.

For each case: the time of one fastnet call, the time of the kernels that call runs
replayed alone (recorded once, then called with the same arrays: Numba's dispatch is
counted as kernel time), their difference (the Python around the kernels), and
``numpy.einsum(optimize=<precomputed path>)`` and ``torch.einsum`` beside them. Min
and median over many repeats; on a shared machine the min is the figure to compare.

    python bench/einsum_overhead.py [--repeats 300] [--number 200]
"""

import argparse
import statistics
import time

import numpy as np

import fastnet as fn
from fastnet import kernels
from fastnet.nn import einsum_plan as contract

CASES = {
    "matmul 8x8": ("ij,jk->ik", [(8, 8), (8, 8)]),
    "chain 3x 8x8": ("ij,jk,kl->il", [(8, 8), (8, 8), (8, 8)]),
    "bilinear b=32": ("bi,ij,bj->b", [(32, 8), (8, 8), (32, 8)]),
    "batched 4x8x8": ("bij,bjk->bik", [(4, 8, 8), (4, 8, 8)]),
    "trace 8x8": ("ii->", [(8, 8)]),
    "transpose 8x8": ("ij->ji", [(8, 8)]),
}


def clear_plans():
    for value in vars(contract).values():
        if hasattr(value, "cache_clear"):
            value.cache_clear()


def recorded_kernels(call):
    """The kernel calls ``call()`` makes, as (kernel, args) pairs."""
    calls = []

    def recording(kernel):
        def run(*args):
            calls.append((kernel, args))
            return kernel(*args)

        return run

    saved = kernels.batched_matmul, kernels.strided_reduce
    kernels.batched_matmul = recording(saved[0])
    kernels.strided_reduce = tuple(recording(k) for k in saved[1])
    clear_plans()
    try:
        call()
    finally:
        kernels.batched_matmul, kernels.strided_reduce = saved
        clear_plans()
    call()  # plan again with the real kernels
    return calls


def timed(call, repeats, number):
    """(min, median, max) microseconds per call over ``repeats`` runs of ``number``."""
    call()
    per = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            call()
        per.append((time.perf_counter_ns() - t0) / number / 1e3)
    return min(per), statistics.median(per), max(per)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    rows = []
    for name, (eq, shapes) in CASES.items():
        ops = [rng.standard_normal(s).astype(args.dtype) for s in shapes]
        dy = np.ones_like(np.einsum(eq, *ops))
        path = np.einsum_path(eq, *ops, optimize="greedy")[0]
        peers = {
            "fastnet": lambda eq=eq, ops=ops: fn.einsum(eq, *ops),
            "fastnet vjp": lambda eq=eq, ops=ops, dy=dy: fn.einsum_vjp(eq, ops, dy),
            "numpy path": lambda eq=eq, ops=ops, p=path: np.einsum(
                eq, *ops, optimize=p
            ),
        }
        if torch is not None:
            tops = [torch.from_numpy(o) for o in ops]
            peers["torch"] = lambda eq=eq, tops=tops: torch.einsum(eq, *tops)
        result = {k: timed(f, args.repeats, args.number) for k, f in peers.items()}
        for key in ("fastnet", "fastnet vjp"):
            calls = recorded_kernels(peers[key])

            def replay(calls=calls):
                for kernel, a in calls:
                    kernel(*a)

            result[f"{key} kernels"] = timed(replay, args.repeats, args.number)
        rows.append((name, eq, result))
    print(
        f"{args.dtype}, us per call: min / median (max); {args.repeats} x "
        f"{args.number} calls"
    )
    for name, eq, r in rows:
        print(f"\n{name}  {eq}")
        for key, (lo, med, hi) in r.items():
            print(f"  {key:22s} {lo:8.2f} / {med:8.2f}  ({hi:.2f})")
        for key in ("fastnet", "fastnet vjp"):
            k = r[f"{key} kernels"]
            print(
                f"  {key + ' overhead':22s} {r[key][0] - k[0]:8.2f} / "
                f"{r[key][1] - k[1]:8.2f}  (min - min / median - median)"
            )


if __name__ == "__main__":
    main()
