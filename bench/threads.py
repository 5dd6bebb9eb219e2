"""Concurrent inference: calls per second of ``predict_proba`` from 1, 2, 4 and 8
Python threads, fastnet beside scikit-learn, one fitted model each.

    python bench/threads.py [--rows 1,200] [--threads 1,2,4,8] [--reps 5]
        [--network digits | 784-256-128-10 ...] [--setting single | default]

Both estimators are fitted in this process (hidden (100,) on the digits, float64
input as loaded; or float32 random rows through ``--network``'s hidden layers; 5
epochs, random_state 0, scikit-learn holding fastnet's weights); each call predicts
its thread's own rows (same shape in every thread). ``--setting single``: BLAS is
limited to one thread for both and fastnet's ``n_threads=1``, so the calling threads
are the only parallelism (the setting a server uses); ``default``: nothing is set
(fastnet shares its pool among the callers, scikit-learn's BLAS uses every core).
Each repetition times
every (estimator, rows, threads) cell once, in an interleaved order, for
``--seconds`` each; the table gives the median calls/s and the min-max over
repetitions, and the speed-up over one thread. Warm-up calls (compilation) are not
timed. Every threaded result is checked against the serial one.
"""

import argparse
import contextlib
import statistics
import threading
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLP
from threadpoolctl import threadpool_limits

import fastnet as fn


def rate(est, inputs, n_threads, seconds):
    """Calls per second of ``est.predict_proba`` from ``n_threads`` threads, each on
    its own input, for about ``seconds``; checks every result."""
    want = [est.predict_proba(x) for x in inputs[:n_threads]]
    counts = [0] * n_threads
    stop = threading.Event()
    barrier = threading.Barrier(n_threads + 1)
    bad = []

    def work(i):
        x, ref = inputs[i], want[i]
        barrier.wait()
        n = 0
        while not stop.is_set():
            got = est.predict_proba(x)
            n += 1
        if not np.array_equal(got, ref):
            bad.append(i)
        counts[i] = n

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert not bad, f"threads {bad} got other results than a serial call"
    return sum(counts) / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1,200")
    parser.add_argument("--threads", default="1,2,4,8")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--network", default="digits")
    parser.add_argument("--setting", choices=("single", "default"), default="single")
    args = parser.parse_args()
    rows = [int(r) for r in args.rows.split(",")]
    counts = [int(t) for t in args.threads.split(",")]

    if args.network == "digits":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        hidden = (100,)
    else:
        sizes = [int(s) for s in args.network.split("-")]
        rng = np.random.default_rng(0)
        X = rng.standard_normal((2000, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], 2000)
        hidden = tuple(sizes[1:-1])
    kw = {"hidden_layer_sizes": hidden, "max_iter": 5, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        models = {
            "fastnet": fn.MLPClassifier(**kw).fit(X, y),
            "scikit-learn": SkMLP(**kw).fit(X, y),
        }
    sk = models["scikit-learn"]
    sk.coefs_ = [W.copy() for W in models["fastnet"].coefs_]
    sk.intercepts_ = [b.copy() for b in models["fastnet"].intercepts_]
    single = args.setting == "single"
    models["fastnet"].n_threads = 1 if single else None
    rng = np.random.default_rng(0)
    inputs = {
        r: [
            np.ascontiguousarray(X[rng.integers(0, len(X), r)])
            for _ in range(max(counts))
        ]
        for r in rows
    }
    cells = [(name, r, t) for r in rows for t in counts for name in models]
    results = {cell: [] for cell in cells}
    with threadpool_limits(1) if single else contextlib.nullcontext():
        for name, r, _ in cells:  # warm-up: compile, fill caches
            rate(models[name], inputs[r], 1, 0.05)
        for rep in range(args.reps):
            order = cells if rep % 2 == 0 else cells[::-1]  # interleaved both ways
            for cell in order:
                name, r, t = cell
                results[cell].append(rate(models[name], inputs[r], t, args.seconds))

    print(
        f"predict_proba calls/s, median (min-max) of {args.reps} repetitions, "
        f"{args.seconds} s each; "
        + ("BLAS 1 thread, n_threads=1" if single else "nothing set (defaults)")
        + f"; {args.network}"
    )
    print(
        "| rows | threads | fastnet | speed-up | scikit-learn | speed-up "
        "| fastnet/scikit-learn |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        base = {name: statistics.median(results[(name, r, 1)]) for name in models}
        for t in counts:
            cols = []
            for name in models:
                vals = results[(name, r, t)]
                med = statistics.median(vals)
                cols += [
                    f"{med:,.0f} ({min(vals):,.0f}-{max(vals):,.0f})",
                    f"{med / base[name]:.2f}x",
                ]
            ratio = statistics.median(results[("fastnet", r, t)]) / statistics.median(
                results[("scikit-learn", r, t)]
            )
            print(f"| {r} | {t} | {' | '.join(cols)} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
