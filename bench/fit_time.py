"""Fit time of fastnet's estimators against scikit-learn's on the parity data sets.

    python bench/fit_time.py [--reps N]

Same hyperparameters (hidden (100,), adam, max_iter 200, random_state 0, standardised
features), both in this process with the same threads. After one warm-up fit of each
(compilation excluded), N repetitions (default 5) each time one fastnet fit and one
scikit-learn fit, in alternating order with a 0.2 s rest before each (BLAS threads
spin a while after their work); each repetition gives a ratio, fastnet's time over
scikit-learn's. Prints, per data set, the median times, the median ratio with its
min-max, and the held-out scores; then the median of the data sets' median ratios.
"""

import os
import sys
import time
import warnings

import numba
import numpy as np
from sklearn import datasets
from sklearn import neural_network as sk
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import fastnet as fn

DATA = {
    "digits": lambda: datasets.load_digits(return_X_y=True),
    "breast_cancer": lambda: datasets.load_breast_cancer(return_X_y=True),
    "wine": lambda: datasets.load_wine(return_X_y=True),
    "iris": lambda: datasets.load_iris(return_X_y=True),
    "make_moons": lambda: datasets.make_moons(1000, noise=0.2, random_state=0),
    "diabetes": lambda: datasets.load_diabetes(return_X_y=True),
    "make_friedman1": lambda: datasets.make_friedman1(1000, random_state=0),
}
REGRESSION = {"diabetes", "make_friedman1"}


def timed(est, X, y):
    time.sleep(0.2)
    began = time.perf_counter()
    est.fit(X, y)
    return time.perf_counter() - began


def main(reps=5):
    threads = int(os.environ.get("FASTNET_BENCH_THREADS", "2"))
    numba.set_num_threads(threads)
    print(
        f"{reps} interleaved repetitions, {threads} threads; ratio: fastnet / "
        "scikit-learn, median (min-max) over repetitions"
    )
    print()
    print("| data set | fastnet fit | scikit-learn fit | ratio | held-out scores |")
    print("| --- | --- | --- | --- | --- |")
    medians = []
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, load in DATA.items():
            X, y = load()
            Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0)
            scaler = StandardScaler().fit(Xtr)
            Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
            reg = name in REGRESSION
            kw = {"max_iter": 200, "random_state": 0}
            ours = (fn.MLPRegressor if reg else fn.MLPClassifier)(**kw)
            theirs = (sk.MLPRegressor if reg else sk.MLPClassifier)(**kw)
            ours.fit(Xtr, ytr)  # warm-up: compilation, caches
            theirs.fit(Xtr, ytr)
            t_ours, t_theirs = [], []
            for r in range(reps):
                pair = (ours, theirs) if r % 2 == 0 else (theirs, ours)
                for est in pair:
                    (t_ours if est is ours else t_theirs).append(timed(est, Xtr, ytr))
            ratios = np.array(t_ours) / np.array(t_theirs)
            medians.append(np.median(ratios))
            scores = f"{ours.score(Xte, yte):.3f} / {theirs.score(Xte, yte):.3f}"
            print(
                f"| {name} | {np.median(t_ours):.3f} s | {np.median(t_theirs):.3f} s "
                f"| {np.median(ratios):.2f}x ({ratios.min():.2f}-{ratios.max():.2f}) "
                f"| {scores} |"
            )
    print()
    print(f"Median over the data sets: {np.median(medians):.2f}x")


if __name__ == "__main__":
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 5
    main(reps)
