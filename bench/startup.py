"""Time to first result, in fresh processes (issue: no waiting for the compiler).

    python bench/startup.py [--runs 3]

Each figure is the wall time of a whole fresh Python process, measured ``--runs``
times (median, min-max):

- ``import fastnet``, and scikit-learn's estimators' import, for scale;
- the first fit on scikit-learn's digits (defaults, ``max_iter=200``) with an empty
  kernel cache (cold) and again with the cache it left (warm), beside the same
  script with scikit-learn's ``MLPClassifier``;
- a new setting's first fit after a warm default fit (another activation, solver,
  dtype, estimator class): the extra time over the warm default fit's process (which
  includes the setting's own training time: tanh trains longer than relu), and over
  the same setting's second, warm, process (the time spent compiling alone);
- ``fastnet train`` cold and warm;
- ``fastnet compile`` on an empty cache, then the default fit and each new
  setting's extra time after it.

Every cold run gets its own empty ``FASTNET_CACHE_DIR``; the warm runs reuse it. A
cold run's background compilation (``fastnet._runtime.native.compile_in_background``) is
part of it, and the next run starts after it has finished.
"""

import argparse
import fcntl
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

FIT = """
import sys, warnings
warnings.simplefilter("ignore")
from sklearn.datasets import load_digits
if sys.argv[1] == "sklearn":
    from sklearn.neural_network import MLPClassifier, MLPRegressor
else:
    from fastnet import MLPClassifier, MLPRegressor
X, y = load_digits(return_X_y=True)
kw = dict(random_state=0, max_iter=200)
setting = sys.argv[2]
if setting == "tanh":
    kw["activation"] = "tanh"
elif setting == "sgd":
    kw["solver"] = "sgd"
elif setting == "float32":
    X = X.astype("float32")
if setting == "regressor":
    MLPRegressor(**kw).fit(X, y * 1.0)
else:
    MLPClassifier(**kw).fit(X, y)
"""


def timed(cmd, env):
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    took = time.perf_counter() - start
    settle(env)
    return took


def settle(env):
    """Wait for a background compilation the run left behind (it holds a lock in
    the cache folder while it works), so that it does not slow the next run."""
    folder = env.get("FASTNET_CACHE_DIR")
    for lock in pathlib.Path(folder).rglob("background.lock") if folder else []:
        with open(lock, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)


def summary(values):
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    fastnet_cmd = os.path.join(os.path.dirname(py), "fastnet")
    base = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    rows = {}

    def add(name, value):
        rows.setdefault(name, []).append(value)

    def new_settings(env, warm, over_default, over_itself):
        """Each new setting's first fit, over the default's warm fit ``warm`` and
        over its own second process."""
        for setting in ("tanh", "sgd", "float32", "regressor"):
            new = timed([py, "-c", FIT, "fastnet", setting], env)
            again = timed([py, "-c", FIT, "fastnet", setting], env)
            add(over_default.format(setting), new - warm)
            add(over_itself.format(setting), new - again)

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        for run in range(args.runs):
            env = {**base, "FASTNET_CACHE_DIR": os.path.join(tmp, f"cache{run}")}
            add("import fastnet", timed([py, "-c", "import fastnet"], env))
            add(
                "import scikit-learn's MLPClassifier",
                timed(
                    [py, "-c", "from sklearn.neural_network import MLPClassifier"], env
                ),
            )
            add(
                "scikit-learn: digits fit, whole process",
                timed([py, "-c", FIT, "sklearn", "default"], env),
            )
            add(
                "fastnet: digits fit, cold cache",
                timed([py, "-c", FIT, "fastnet", "default"], env),
            )
            warm = timed([py, "-c", FIT, "fastnet", "default"], env)
            add("fastnet: digits fit, warm cache", warm)
            new_settings(
                env,
                warm,
                "  new setting {}: extra over warm default",
                "  new setting {}: extra over its own warm run",
            )
            env = {**base, "FASTNET_CACHE_DIR": os.path.join(tmp, f"train{run}")}
            add("fastnet train, cold cache", timed([fastnet_cmd, "train"], env))
            add("fastnet train, warm cache", timed([fastnet_cmd, "train"], env))
            env = {**base, "FASTNET_CACHE_DIR": os.path.join(tmp, f"aot{run}")}
            add(
                "fastnet compile, empty cache",
                timed([fastnet_cmd, "compile"], env),
            )
            warm = timed([py, "-c", FIT, "fastnet", "default"], env)
            add("after fastnet compile: digits fit", warm)
            new_settings(
                env,
                warm,
                "  after compile, {}: extra over default",
                "  after compile, {}: over its own 2nd run",
            )
    print(f"fresh processes, {args.runs} runs each: median (min-max)")
    for name, values in rows.items():
        print(f"| {name} | {summary(values)} |")


if __name__ == "__main__":
    main()
