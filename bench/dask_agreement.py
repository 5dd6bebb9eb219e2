"""How far ``fastnet.dask.fit_distributed`` stays from a fit in one process.

    python bench/dask_agreement.py [--rows 20000] [--workers 2] [--epochs 20]

On a ``LocalCluster`` of single-threaded worker processes, the same rows (a
``make_classification`` problem, 20 features, 3 classes, 10 blocks) fitted both
ways by an ``MLPClassifier`` (hidden (32,), random_state 0):

* L-BFGS: the final loss after ``max_iter`` = 1, 2, 5, 10, 20, 50, 100, 200
  iterations both ways, their relative difference, and the share of held-out
  predictions that agree: how far the whole loss curves stay together;
* Adam (``--epochs``, 20): held-out accuracy of the local fit and of local SGD at
  each ``sync_every`` (steps per round; "epoch" = one pass over each worker's
  blocks).
"""

import argparse
import warnings

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

import fastnet as fn
from fastnet.dask import fit_distributed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = make_classification(
        args.rows + 5_000, 20, n_informative=10, n_classes=3, random_state=0
    )
    X_test, y_test = X[args.rows :], y[args.rows :]
    X, y = X[: args.rows], y[: args.rows]
    dX = da.from_array(X, chunks=(args.rows // 10, 20))
    dy = da.from_array(y, chunks=args.rows // 10)
    kw = {"hidden_layer_sizes": (32,), "random_state": 0, "n_threads": 1}
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        print(f"{args.rows:,} rows in 10 blocks, {args.workers} workers")
        print("| L-BFGS iterations | local loss | distributed loss | relative "
              "difference | held-out predictions equal |")  # fmt: skip
        print("| --- | --- | --- | --- | --- |")
        for it in (1, 2, 5, 10, 20, 50, 100, 200):
            local = fn.MLPClassifier(solver="lbfgs", max_iter=it, **kw).fit(X, y)
            dist = fit_distributed(
                fn.MLPClassifier(solver="lbfgs", max_iter=it, **kw), dX, dy
            )
            rel = abs(local.loss_ - dist.loss_) / abs(local.loss_)
            same = np.mean(local.predict(X_test) == dist.predict(X_test))
            print(f"| {it} | {local.loss_:.10f} | {dist.loss_:.10f} | {rel:.1e} | "
                  f"{same:.4f} |")  # fmt: skip
        epochs = args.epochs
        local = fn.MLPClassifier(max_iter=epochs, **kw).fit(X, y)
        base = local.score(X_test, y_test)
        print(f"\nAdam, {epochs} epochs: local held-out accuracy {base:.4f}")
        print("| sync_every | held-out accuracy | minus local | final loss (local "
              f"{local.loss_:.4f}) |")  # fmt: skip
        print("| --- | --- | --- | --- |")
        for sync in (1, 10, 50, None):
            est = fit_distributed(
                fn.MLPClassifier(max_iter=epochs, **kw), dX, dy, sync_every=sync
            )
            acc = est.score(X_test, y_test)
            print(f"| {sync or 'epoch'} | {acc:.4f} | {acc - base:+.4f} | "
                  f"{est.loss_:.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
