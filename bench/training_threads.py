"""Training on 1, 2, ... threads: one epoch of Adam through 784-256-128-10 (batch 128,
20,000 rows, float32), fastnet beside PyTorch and the NumPy GEMM floor at each
thread count.

    python bench/training_threads.py [--threads 1,2] [--network 784-256-128-10]
        [--batch 128] [--rows 20000] [--reps 5] [--runs 3]

The entries are the report's (``fastnet._bench.workloads.training``, its sampler
``fastnet._bench.report.measure``: interleaved repetitions, warm-up and compilation
not timed): fastnet ``partial_fit`` (alpha 1e-4) and ``Trainer`` with ``n_threads``
set, PyTorch eager with fused Adam under ``torch.set_num_threads``, and the floor
(the step's products alone in NumPy) under ``threadpool_limits``, each set around
every call. Every thread count's entries are timed in the same repetitions. Prints,
per run, fastnet's time over the floor's and over PyTorch's at the same thread count
(median and min-max over the repetitions), and each entry's speed-up over its own
one-thread time; then the range of the runs' medians.
"""

import argparse
import os
import statistics
import warnings

from threadpoolctl import threadpool_limits

from fastnet._bench import report, workloads
from fastnet._runtime.pool import cores

#: the entries of each thread count, and their short names in the table
ENTRIES = {
    workloads.PARTIAL_FIT: "partial_fit",
    workloads.TRAINER: "Trainer",
    workloads.TORCH_FUSED: "PyTorch",
    workloads.FLOOR: "floor",
}


def peers(sizes, batch, rows, counts):
    """``(entry, threads) -> callable`` for every thread count in ``counts``."""
    torch = workloads._torch()
    found = {}
    for t in counts:
        built = workloads.training(sizes, batch, rows, threads=t)
        for name in ENTRIES:
            if name not in built:  # no PyTorch, or no fused Adam
                continue
            found[name, t] = _at_threads(name, built[name], t, torch)
    return found


def _at_threads(name, call, t, torch):
    if name == workloads.TORCH_FUSED:

        def run():
            torch.set_num_threads(t)
            return call()

        return run
    if name == workloads.FLOOR:

        def run():
            with threadpool_limits(t):
                return call()

        return run
    return call  # fastnet: its n_threads


def summary(times, counts):
    """Rows of the table, and the medians of fastnet's ratios for the run ranges."""
    lines, medians = [], {}
    for t in counts:
        floor = times[workloads.FLOOR, t]
        torch = times.get((workloads.TORCH_FUSED, t))
        for name in (workloads.PARTIAL_FIT, workloads.TRAINER):
            ours = times[name, t]
            r_floor = [a / b for a, b in zip(ours, floor, strict=True)]
            cells = [f"{t}", ENTRIES[name], f"{statistics.median(ours) * 1e3:.1f} ms"]
            cells.append(_spread(r_floor))
            medians[name, t, "floor"] = statistics.median(r_floor)
            if torch is not None:
                r_torch = [a / b for a, b in zip(ours, torch, strict=True)]
                cells.append(_spread(r_torch))
                medians[name, t, "torch"] = statistics.median(r_torch)
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("speed-up over one thread (median time at 1 / at t):")
    for name, short in ENTRIES.items():
        if (name, counts[0]) not in times:
            continue
        base = statistics.median(times[name, counts[0]])
        ups = [base / statistics.median(times[name, t]) for t in counts]
        lines.append(f"  {short:12s} " + "  ".join(f"{u:.2f}" for u in ups))
    return lines, medians


def _spread(values):
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default=",".join(map(str, _default_counts())))
    parser.add_argument("--network", default="784-256-128-10")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    sizes = [int(s) for s in args.network.split("-")]
    print("\n".join(report.header(args.reps, workloads._torch())[2:6]))
    print(f"\n{args.network}, batch {args.batch}, {args.rows:,} rows; threads {counts} "
          f"(this process may use {cores()} cores)\n")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        entries = peers(sizes, args.batch, args.rows, counts)
        runs = []
        for run in range(args.runs):
            times = report.measure(entries, args.reps, args.seconds)
            lines, medians = summary(times, counts)
            print(f"run {run + 1}: fastnet's time / the floor's and / PyTorch's, "
                  "median (min-max) over the repetitions")  # fmt: skip
            print("| threads | fastnet | time | / floor | / PyTorch |")
            print("| --- | --- | --- | --- | --- |")
            print("\n".join(lines) + "\n")
            runs.append(medians)
    print(f"ranges of the {args.runs} runs' medians:")
    for key in runs[0]:
        values = [r[key] for r in runs]
        name, t, peer = key
        print(f"  {ENTRIES[name]:12s} {t:2d} threads / {peer:5s} "
              f"{min(values):.2f}-{max(values):.2f}")  # fmt: skip


def _default_counts():
    n = cores()
    return [t for t in (1, 2, 4, 8, 16) if t <= n] or [1]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
