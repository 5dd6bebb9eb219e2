"""fastnet's models against their ONNX export in ONNX Runtime: the largest difference
and the latency of each, side by side.

    python bench/onnx_latency.py [--runs 3] [--reps 30] [--threads 2]

For each model kind (classifier, regressor) x dtype (float32, float64) on
784-256-128-10: the largest difference of ONNX Runtime's outputs from fastnet's
(``predict_proba`` / ``predict``, relative to the largest output), and the median
time of a 1-row and a 10,000-row call of each, alternated call by call in one
process after warm-up calls (compilation excluded), both on ``--threads`` threads
(``n_threads=`` for fastnet, ``intra_op_num_threads`` for ONNX Runtime). Each run
prints a table; the last line gives each ratio's median and range over the runs.
"""

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import onnxruntime as ort

import fastnet as fn
from fastnet.onnx import to_onnx

SIZES = (784, 256, 128, 10)


def models(threads):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, SIZES[0]))
    y = rng.integers(0, SIZES[-1], 2000)
    Y = rng.standard_normal((2000, SIZES[-1]))
    for dtype in (np.float32, np.float64):
        for kind, est, target in (
            ("classifier", fn.MLPClassifier, y),
            ("regressor", fn.MLPRegressor, Y),
        ):
            model = est(hidden_layer_sizes=SIZES[1:-1], max_iter=1, random_state=0,
                        n_threads=threads)  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X.astype(dtype), target)
            yield f"{kind} {np.dtype(dtype).name}", model, dtype


def time_pair(f, g, reps):
    """Median seconds of ``f()`` and ``g()``, called alternately."""
    f(), g()  # warm-up
    a, b = [], []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        g()
        b.append(time.perf_counter() - t)
    return statistics.median(a), statistics.median(b)


def one_run(threads, reps):
    rows = {}
    rng = np.random.default_rng(1)
    for name, model, dtype in models(threads):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(to_onnx(model).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])  # fmt: skip
        out = -1 if name.startswith("classifier") else 0
        ours = model.predict_proba if name.startswith("classifier") else model.predict
        X = rng.standard_normal((10_000, SIZES[0])).astype(dtype)
        theirs = session.run(None, {"X": X})[out]
        want = ours(X).reshape(theirs.shape)
        diff = np.abs(theirs - want).max() / np.abs(want).max()
        cells = [diff]
        for n in (1, 10_000):
            feed = {"X": X[:n]}
            t_fn, t_ort = time_pair(
                lambda f=ours, x=feed["X"]: f(x),
                lambda s=session, x=feed: s.run(None, x),
                reps,
            )
            cells += [t_fn, t_ort]
        rows[name] = cells
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cpus; {_processor()}; onnxruntime {ort.__version__}; "
          f"{args.threads} threads")  # fmt: skip
    ratios = {}
    for run in range(args.runs):
        head = ("model", "max rel. diff", "1 row: fastnet us", "ONNX Runtime us",
                "10,000 rows: fastnet ms", "ONNX Runtime ms")  # fmt: skip
        print(f"\nrun {run}\n| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
        for name, (diff, f1, o1, f2, o2) in one_run(args.threads, args.reps).items():
            print(f"| {name} | {diff:.1e} | {f1 * 1e6:.0f} | {o1 * 1e6:.0f} | "
                  f"{f2 * 1e3:.2f} | {o2 * 1e3:.2f} |")  # fmt: skip
            ratios.setdefault(name, []).append((f1 / o1, f2 / o2))
    print("\nfastnet / ONNX Runtime, median (range) over the runs:")
    for name, pairs in ratios.items():
        one, many = zip(*pairs, strict=True)
        print(f"  {name}: 1 row {statistics.median(one):.2f} ({min(one):.2f}-"
              f"{max(one):.2f}), 10,000 rows {statistics.median(many):.2f} "
              f"({min(many):.2f}-{max(many):.2f})")  # fmt: skip


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
