"""Cost of an iteration of ``fastnet.dask.fit_distributed`` against the data's size.

    python bench/dask_distributed.py [--workers 2 4] [--rows 50000 200000] [--tiny]

On a ``LocalCluster`` of single-threaded worker processes, for each worker count
and each size: an ``MLPClassifier`` (20 features, one hidden layer of 32) fitted
by ``fit_distributed`` with L-BFGS and with Adam (one round an epoch), beside
``fit_blocks`` (Adam, the model here, the blocks brought to it) and a fit in this
process on the same rows. The data is made on the workers (``dask.array.random``),
as data read there would be.

Per iteration (an L-BFGS iteration, an epoch for Adam and ``fit_blocks``): the
wall time, and the bytes that crossed between processes, two ways: between workers
(the workers' ``transfer_outgoing_bytes_total``, distributed's own counter) and
over the loopback interface in all (``psutil``: client, scheduler and workers,
heartbeats included; every process of a ``LocalCluster`` talks over it; the
counter is the machine's, so run it on a quiet machine). Each is
the difference between a fit of ``k`` and of ``2k`` iterations divided by ``k``,
so that setup (computing and checking the blocks once) is left out; setup is
printed on its own. A warm-up fit compiles the kernels on every worker first.

``--tiny`` is a smoke run (small sizes, one worker count) that checks the script
works; its numbers mean nothing.
"""

import argparse
import itertools
import time
import warnings

import dask.array as da
import numpy as np
import psutil
from distributed import Client, LocalCluster
from sklearn.exceptions import ConvergenceWarning

import fastnet as fn
from fastnet.dask import fit_blocks, fit_distributed

FEATURES, HIDDEN = 20, (32,)


def _data(rows, block_rows):
    X = da.random.default_rng(0).standard_normal(
        (rows, FEATURES), chunks=(block_rows, FEATURES)
    )
    y = (X[:, 0] * X[:, 1] + X[:, 2] > 0).astype(np.int64)
    return X, y


def _est(solver, max_iter):
    return fn.MLPClassifier(
        HIDDEN, solver=solver, max_iter=max_iter, random_state=0, tol=0.0
    )


def _counters(client):
    sent = client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total)
    loopback = psutil.net_io_counters(pernic=True).get("lo")
    return sum(sent.values()), (loopback.bytes_sent if loopback else 0)


def _measure(client, fit, k):
    """(seconds, worker bytes, loopback bytes) per iteration, and setup seconds."""
    runs = []
    for n in (k, 2 * k):
        before = _counters(client)
        start = time.perf_counter()
        fit(n)
        seconds = time.perf_counter() - start
        after = _counters(client)
        runs.append((seconds, after[0] - before[0], after[1] - before[1]))
    per = [(b - a) / k for a, b in zip(runs[0], runs[1], strict=True)]
    setup = runs[0][0] - k * per[0]
    return per, setup


def _row(name, workers, rows, per, setup):
    seconds, between, loopback = per
    return (
        f"| {name} | {workers} | {rows:,} | {seconds * 1e3:,.1f} | "
        f"{between / 1e3:,.1f} | {loopback / 1e3:,.1f} | {setup:,.2f} |"
    )


def run(workers, sizes, block_rows, k):
    lines = []
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        X, y = _data(4 * block_rows, block_rows)  # warm-up: compile everywhere
        fit_distributed(_est("lbfgs", 2), X, y)
        fit_distributed(_est("adam", 1), X, y)
        Xl, yl = da.compute(X, y)  # and here
        _est("lbfgs", 2).fit(Xl, yl)
        _est("adam", 1).fit(Xl, yl)
        for rows in sizes:
            X, y = _data(rows, block_rows)
            for name, fit in _cases(X, y, *da.compute(X, y)).items():
                per, setup = _measure(client, fit, k)
                lines.append(_row(name, workers, rows, per, setup))
    return lines


def _cases(X, y, Xl, yl):
    """name -> ``fit(n)``, a fit of ``n`` iterations."""
    return {
        "fit_distributed lbfgs": lambda n: fit_distributed(_est("lbfgs", n), X, y),
        "fit_distributed adam": lambda n: fit_distributed(_est("adam", n), X, y),
        "fit_blocks adam": lambda n: fit_blocks(
            _est("adam", 1), X, y, classes=[0, 1], epochs=n
        ),
        "local lbfgs": lambda n: _est("lbfgs", n).fit(Xl, yl),
        "local adam": lambda n: _est("adam", n).fit(Xl, yl),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--block-rows", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="smoke run")
    args = parser.parse_args()
    if args.tiny:
        args.workers, args.rows, args.block_rows, args.iterations = [2], [4000], 1000, 1
    units = (FEATURES, *HIDDEN, 1)
    params = sum(a * b + b for a, b in itertools.pairwise(units))
    print(
        f"MLP {'-'.join(map(str, units))}: {params} parameters, {params * 8:,} "
        f"bytes as float64; blocks of {args.block_rows:,} rows"
    )
    print()
    print("| fit | workers | rows | ms / iteration | kB between workers / it. "
          "| kB loopback / it. | setup s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for workers in args.workers:
            for line in run(workers, args.rows, args.block_rows, args.iterations):
                print(line, flush=True)


if __name__ == "__main__":
    main()
