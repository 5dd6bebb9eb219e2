"""A fit that cannot fit in memory is refused before it allocates, with the figures
(``fastnet._runtime.memory``), instead of being ended by the OOM killer."""

import os
import textwrap
import tracemalloc

import numpy as np
import pytest
from sklearn.datasets import load_digits

import fastnet as fn
from fastnet._runtime import memory
from fastnet.sklearn.estimators import fit_memory
from tests.processes import fresh_env, python_lines

X, Y = load_digits(return_X_y=True)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_a_fit_too_large_is_refused_with_the_figures(solver, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**30)
    clf = fn.MLPClassifier((2_000_000,), solver=solver)
    with pytest.raises(MemoryError, match=r"would need about [\d.]+ GiB; 1\.0 GiB"):
        clf.fit(X, Y)
    assert not hasattr(clf, "coefs_")  # refused before any weight was drawn
    fn.MLPClassifier((20,), solver=solver, max_iter=2).fit(X, Y)  # one that fits


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_the_estimate_is_near_what_the_fit_allocates(solver):
    # tracemalloc sees NumPy's arrays (the kernels' workspaces are NumPy arrays)
    wide = fn.MLPClassifier((3000, 500), solver=solver, max_iter=2, batch_size=400)
    estimate = fit_memory(wide, [64, 3000, 500, 10], np.float64, rows=X.shape[0])
    tracemalloc.start()
    wide.fit(X, Y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert 0.75 * peak <= estimate <= 1.25 * peak, (estimate, peak)


def test_an_address_space_limit_is_respected(tmp_path):
    # a real limit (ulimit -v) in a fresh process: refused with the figures, not
    # a crash, and a fit that fits still runs under it
    code = textwrap.dedent(
        """
        import os, resource
        import fastnet as fn
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        fn.MLPClassifier((20,), max_iter=2).fit(X, y)  # kernels loaded
        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = size + 2 * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            fn.MLPClassifier((3_000_000,)).fit(X, y)
        except MemoryError as exc:
            print("refused:", exc)
        fn.MLPClassifier((20,), max_iter=2).fit(X, y)
        print("small fit ran")
        """
    )
    cache = os.environ.get("FASTNET_CACHE_DIR", tmp_path)
    lines = python_lines(code, fresh_env(cache), timeout=300)
    assert any(line.startswith("refused:") and "GiB" in line for line in lines), lines
    assert lines[-1] == "small fit ran"
