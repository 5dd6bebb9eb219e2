"""Wall time of one hyperparameter grid: serial, joblib's processes, a Dask cluster.

    python bench/dask_grid.py [--workers 2] [--max-iter 60]

``GridSearchCV`` over ``fastnet.MLPClassifier`` on the digits (8 candidates x 3 folds
= 24 fits, plus the refit), run three ways in this process's session: serially
(``n_jobs=1``, every fit on all cores), with joblib's default process backend
(``n_jobs=<workers>``) and under ``joblib.parallel_backend("dask")`` on a
``LocalCluster`` of ``<workers>`` single-threaded worker processes. Every way runs
one small fit first, so compilation and worker start-up are outside the times
(cluster start-up is printed separately). Checks that all three found the same
scores, then prints the times and their ratios to the serial run.
"""

import argparse
import os
import time
import warnings

import joblib
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import fastnet as fn

GRID = {
    "hidden_layer_sizes": [(32,), (64,)],
    "alpha": [1e-4, 1e-2],
    "learning_rate_init": [1e-3, 3e-3],
}


def _quiet():
    warnings.simplefilter("ignore", ConvergenceWarning)


def search(max_iter, n_jobs):
    X, y = load_digits(return_X_y=True)
    est = fn.MLPClassifier(max_iter=max_iter, random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        _quiet()
        result = GridSearchCV(est, GRID, cv=3, n_jobs=n_jobs).fit(X / 16.0, y)
    return time.perf_counter() - start, result


def _warm_up():
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        _quiet()
        fn.MLPClassifier((8,), max_iter=2, random_state=0).fit(X / 16.0, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-iter", type=int, default=60)
    args = parser.parse_args()
    n_fits = 3 * int(np.prod([len(v) for v in GRID.values()]))
    print(f"{n_fits} fits + refit, {os.cpu_count()} cores, {args.workers} workers")

    _warm_up()
    serial_s, serial = search(args.max_iter, n_jobs=1)

    search(2, n_jobs=args.workers)  # starts joblib's worker processes
    loky_s, loky = search(args.max_iter, n_jobs=args.workers)

    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(_warm_up)
        startup_s = time.perf_counter() - start
        with joblib.parallel_backend("dask"):
            dask_s, dist = search(args.max_iter, n_jobs=-1)

    for other in (loky, dist):
        np.testing.assert_array_equal(
            other.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
        )
    print(f"best {serial.best_params_} score {serial.best_score_:.4f} (all three)")
    print("| run | wall time | vs serial |")
    print("| --- | --- | --- |")
    print(f"| serial, n_jobs=1 | {serial_s:.2f} s | 1.00x |")
    print(
        f"| joblib processes, n_jobs={args.workers} | {loky_s:.2f} s | "
        f"{serial_s / loky_s:.2f}x |"
    )
    print(
        f"| Dask LocalCluster, {args.workers} workers x 1 thread | {dask_s:.2f} s | "
        f"{serial_s / dask_s:.2f}x |"
    )
    print(f"(cluster start-up and worker warm-up: {startup_s:.2f} s, not included)")


if __name__ == "__main__":
    main()
