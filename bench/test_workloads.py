"""Workloads 1-3 of fastnet._bench.workloads: one pytest-benchmark group per workload,
fastnet
and its peers side by side on the same data and threads, warmed up before timing
(compilation excluded), results checked after timing (and, for inference, before:
building the workload checks every peer's probabilities against fastnet's).

pytest-benchmark times each entry on its own, one after another; for ratios taken
within interleaved repetitions, run ``python bench/report.py``.
"""

import math

import numpy as np
import pytest

from fastnet._bench import workloads as _bench

CASES = [
    (title, entry)
    for title in _bench.WORKLOADS
    for entry in (
        _bench.INFERENCE_ENTRIES
        if "predict_proba" in title
        else _bench.TRAINING_ENTRIES
    )
]
_built = {}


def _normal(arrays):
    """Every nonzero value at least float32's smallest normal number."""
    tiny = np.finfo(np.float32).tiny
    return all(np.abs(a[a != 0]).min(initial=np.inf) >= tiny for a in arrays)


@pytest.mark.parametrize("title,entry", CASES, ids=[f"{t[:2]}{e}" for t, e in CASES])
def test_workload(benchmark, title, entry):
    if title not in _built:
        _built[title] = _bench.WORKLOADS[title]()
    peers = _built[title]
    if entry not in peers:
        pytest.skip(f"{entry}: not installed, or another variant is")
    benchmark.group = title
    fn = peers[entry]
    fn()  # warm-up: compilation and first allocations stay out of the timing
    result = benchmark(fn)
    if isinstance(fn, (_bench.GemmFloor, _bench.InferenceFloor)):
        assert _normal(fn.arrays())
    elif "predict_proba" in title:
        proba = np.asarray(result)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-4)
        _bench.check_proba(entry, proba, np.asarray(peers[_bench.PROBA]()))
    else:
        assert math.isfinite(result)


def test_time_to_first_result(benchmark):
    benchmark.group = "6. time to first result (fastnet train, warm cache)"
    (fn,) = _bench.time_to_first_result(cold=False).values()
    assert benchmark.pedantic(fn, rounds=2, iterations=1) < 30
