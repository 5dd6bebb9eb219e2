"""Workloads 1-3 of fastnet._bench: one pytest-benchmark group per workload, fastnet
and its peers side by side on the same data and threads, warmed up before timing
(compilation excluded), results checked after timing."""

import numpy as np
import pytest

from fastnet import _bench

TRAINING = [
    "fastnet MLPClassifier.partial_fit",
    "fastnet Trainer",
    "scikit-learn partial_fit",
    "PyTorch eager, Adam(fused=True)",
    "PyTorch eager, Adam",
    "NumPy GEMM floor",
]
INFERENCE = [
    "fastnet predict_proba",
    "PyTorch module + softmax (no_grad)",
    "scikit-learn predict_proba",
]
CASES = [
    (title, peer)
    for title in _bench.WORKLOADS
    for peer in (INFERENCE if "predict_proba" in title else TRAINING)
]
_built = {}


@pytest.mark.parametrize("title,peer", CASES, ids=[f"{t[:2]}{p}" for t, p in CASES])
def test_workload(benchmark, title, peer):
    if title not in _built:
        _built[title] = _bench.WORKLOADS[title]()
    peers = _built[title]
    if peer not in peers:
        pytest.skip(f"{peer}: not installed")
    benchmark.group = title
    fn = peers[peer]
    fn()  # warm-up: compilation and first allocations stay out of the timing
    result = benchmark(fn)
    if "predict_proba" in peer or "softmax" in peer:
        np.testing.assert_allclose(np.asarray(result).sum(axis=1), 1.0, rtol=1e-4)


def test_time_to_first_result(benchmark):
    benchmark.group = "6. time to first result (fastnet train, warm cache)"
    (fn,) = _bench.time_to_first_result(cold=False).values()
    assert benchmark.pedantic(fn, rounds=2, iterations=1) < 30
