"""Cost of reporting scikit-learn's clipped log-loss in the compiled epoch.

    python bench/loss_clip_cost.py [--runs 3] [--reps 9]

An ``MLPClassifier.partial_fit`` epoch (784-256-128-10, batch 128, 20,000 rows,
Adam, float32, the model's thread count) with the output loss clipped as
scikit-learn's (``clip=True``, what the estimators run) and exact (``clip=False``,
what the kernel computed before), alternated epoch by epoch in one process after a
warm-up epoch of each (compilation excluded). Each run's ratio is the median clipped
epoch over the median exact one; printed: each run's ratio, and their median and
range.
"""

import argparse
import os
import statistics
import time
import warnings

import numpy as np

import fastnet as fn


def one_run(reps):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, 784)).astype(np.float32)
    y = rng.integers(0, 10, 20_000)
    clf = fn.MLPClassifier((256, 128), batch_size=128, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X, y, classes=np.arange(10))
        loss = clf._network().loss
        times = {True: [], False: []}
        for clip in [False, True] * (reps + 1):
            loss.clip = clip
            t = time.perf_counter()
            clf.partial_fit(X, y)
            times[clip].append(time.perf_counter() - t)
    return {k: statistics.median(v[1:]) for k, v in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    print(f"cpu: {os.cpu_count()} threads; {_processor()}")
    ratios = []
    for run in range(args.runs):
        t = one_run(args.reps)
        ratios.append(t[True] / t[False])
        print(f"run {run}: exact {t[False] * 1e3:.1f} ms, clipped {t[True] * 1e3:.1f} "
              f"ms, ratio {ratios[-1]:.3f}")  # fmt: skip
    print(f"clipped / exact: median {statistics.median(ratios):.3f}, range "
          f"{min(ratios):.3f}-{max(ratios):.3f}")  # fmt: skip


def _processor():
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown processor"


if __name__ == "__main__":
    main()
