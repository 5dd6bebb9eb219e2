"""Fit time of fastnet's estimators against scikit-learn's on the parity data sets.

    python bench/fit_time.py

Same hyperparameters (hidden (100,), adam, max_iter 200, random_state 0, standardised
features), both in this process with the same threads; each fit timed after one
warm-up fit (compilation excluded). Prints seconds, the ratio and the held-out scores.
"""

import os
import time
import warnings

import numba
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


def best_of(est, X, y, repeats=3):
    """Fastest of ``repeats`` fits of ``est`` after one warm-up fit."""
    est.fit(X, y)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        est.fit(X, y)
        times.append(time.perf_counter() - began)
    return min(times)


def main():
    threads = int(os.environ.get("FASTNET_BENCH_THREADS", "2"))
    numba.set_num_threads(threads)
    print("| data set | fastnet fit | scikit-learn fit | ratio | held-out scores |")
    print("| --- | --- | --- | --- | --- |")
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
            t_ours = best_of(ours, Xtr, ytr)
            t_theirs = best_of(theirs, Xtr, ytr)
            scores = f"{ours.score(Xte, yte):.3f} / {theirs.score(Xte, yte):.3f}"
            print(
                f"| {name} | {t_ours:.3f} s | {t_theirs:.3f} s "
                f"| {t_ours / t_theirs:.2f}x | {scores} |"
            )


if __name__ == "__main__":
    main()
