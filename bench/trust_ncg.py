"""``solver="trust-ncg"`` (exact Hessian-vector products) against ``"lbfgs"``.

    python bench/trust_ncg.py

On ``bench/fit_time.py``'s data sets with its hyperparameters (hidden (100,),
max_iter 200, random_state 0, standardised features, 2 threads): per solver the
iterations (``n_iter_``), the fastest of 3 fits after a warm-up fit, the final
training loss and the held-out score (accuracy, or R² for the regressions).
"""

import os
import warnings

import numba
from fit_time import DATA, REGRESSION, best_of
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import fastnet as fn

SOLVERS = ("lbfgs", "trust-ncg")


def main():
    threads = int(os.environ.get("FASTNET_BENCH_THREADS", "2"))
    numba.set_num_threads(threads)
    head = " | ".join(f"{s} iters | {s} fit | {s} loss | {s} score" for s in SOLVERS)
    print(f"| data set | {head} |")
    print("| --- " * (1 + 4 * len(SOLVERS)) + "|")
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, load in DATA.items():
            X, y = load()
            Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
            scaler = StandardScaler().fit(Xtr)
            Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
            cls = fn.MLPRegressor if name in REGRESSION else fn.MLPClassifier
            cells = []
            for solver in SOLVERS:
                est = cls(solver=solver, max_iter=200, random_state=0)
                seconds = best_of(est, Xtr, ytr)
                cells.append(
                    f"{est.n_iter_} | {seconds:.3f} s | {est.loss_:.2e} "
                    f"| {est.score(Xte, yte):.3f}"
                )
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
