"""The benchmark report (fastnet._bench.workloads, fastnet._bench.report) on toy sizes:
its
shape, header and arithmetic, never its timings."""

import contextlib
import io
import re

import numpy as np
import pytest

from fastnet._bench import report as _bench_report
from fastnet._bench import workloads as _bench
from fastnet._bench.report import _order, measure, ratios

RATIO = re.compile(r"^\d+\.\d\d \(\d+\.\d\d-\d+\.\d\d\)$")


def _sections(text):
    """``title -> (column names, {row name: cells})`` for each workload table."""
    out = {}
    for block in text.split("\n## ")[1:]:
        title, *lines = block.splitlines()
        rows = [ln.strip("|").split(" | ") for ln in lines if ln.startswith("|")]
        cols = [c.strip() for c in rows[0]]
        out[title] = (cols, {r[0].strip(): [c.strip() for c in r] for r in rows[2:]})
    return out


@pytest.fixture(scope="module")
def report():
    """The printed report in its quickest mode (capsys is per test; this runs once)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert _bench.main(tiny=True) == 0
    return buf.getvalue()


def test_header_says_when_where_and_what(report):
    head = report.split("\n## ")[0]
    for label in ("Date:", "Git commit:", "Machine:", "Versions:", "Threads:"):
        assert f"- {label}" in head
    assert re.search(r"Date: \d{4}-\d\d-\d\d", head)
    assert re.search(r"Machine: .+, \d+ logical cores", head)
    assert "Repetitions: 5, interleaved" in head
    assert "may be shared" in head and "the ratios" in head


def test_every_fastnet_entry_has_a_ratio_to_every_peer(report):
    sections = _sections(report)
    assert len(sections) == len(_bench.workloads(tiny=True)) == 6
    torch, ort = _bench._torch(), _bench._onnxruntime()
    for title, (cols, rows) in sections.items():
        ours = [name for name in rows if name.startswith("fastnet")]
        peers = [name for name in rows if not name.startswith("fastnet")]
        if "predict_proba" in title:
            assert ours == [_bench.PROBA]
            assert {_bench.SKLEARN_PROBA, _bench.INFERENCE_FLOOR} <= set(peers)
            assert (_bench.TORCH_PROBA in peers) == (torch is not None)
            assert (_bench.ORT_PROBA in peers) == (ort is not None)
        else:
            assert ours == list(_bench.TRAINING_ENTRIES[:3])
            assert {_bench.SKLEARN_FIT, _bench.FLOOR} <= set(peers)
            has_torch = {_bench.TORCH_FUSED, _bench.TORCH_FOREACH} & set(peers)
            assert len(has_torch) == (torch is not None)
        assert cols[:2] == ["entry", "time per call"]
        assert cols[2:] == [f"{f} / peer" for f in ours]
        for peer in peers:
            for cell in rows[peer][2:]:
                assert RATIO.match(cell), (title, peer, cell)


def test_inference_has_onnx_runtime_and_a_forward_gemm_floor():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    peers = _bench.inference([8, 6, 3], 5)
    assert set(peers) >= {_bench.PROBA, _bench.ORT_PROBA, _bench.INFERENCE_FLOOR}
    assert set(peers) <= set(_bench.INFERENCE_ENTRIES)
    ours = peers[_bench.PROBA]()
    np.testing.assert_allclose(peers[_bench.ORT_PROBA](), ours, rtol=1e-5, atol=1e-6)
    floor = peers[_bench.INFERENCE_FLOOR]
    assert floor() is None
    X, (W0, W1) = floor.X, floor.weights
    assert X.shape == (5, 8) and [W.shape for W in floor.weights] == [(8, 6), (6, 3)]
    np.testing.assert_allclose(floor.acts[-1], X @ W0 @ W1, rtol=1e-5, atol=1e-6)


def test_inference_refuses_a_peer_whose_probabilities_differ(monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    exported = _bench._ort_proba

    def off_by_1e_4(*args):
        fn = exported(*args)
        return lambda: fn() + np.float32(1e-4)

    monkeypatch.setattr(_bench, "_ort_proba", off_by_1e_4)
    with pytest.raises(AssertionError, match=re.escape(_bench.ORT_PROBA)):
        _bench.inference([8, 6, 3], 5)


def test_torch_peer_uses_fused_adam_where_it_can():
    torch = pytest.importorskip("torch")
    fused = _bench._fused_adam_works(torch)
    peers = _bench.training([6, 5, 3], 4, 10)
    assert (_bench.TORCH_FUSED in peers) == fused
    assert (_bench.TORCH_FOREACH in peers) == (not fused)


def test_ratios_are_taken_per_repetition():
    times = {"fastnet a": [1.0, 2.0, 9.0], "peer": [2.0, 8.0, 3.0]}
    assert ratios(times) == {("fastnet a", "peer"): [0.5, 0.25, 3.0]}


def test_order_rotates_and_alternates():
    names = ["a", "b", "c"]
    orders = [_order(names, rep) for rep in range(6)]
    assert all(sorted(o) == names for o in orders)
    assert {o[0] for o in orders} == set(names)  # each runs first in some repetition
    assert {o[-1] for o in orders} == set(names)
    before_b = {o[o.index("b") - 1] for o in orders if o.index("b")}
    assert before_b == {"a", "c"}  # not always after the same neighbour


def test_every_sample_starts_after_a_rest(monkeypatch):
    events = []
    monkeypatch.setattr(_bench_report.time, "sleep", lambda s: events.append(s))
    peers = {name: (lambda name=name: events.append(name)) for name in "abc"}
    times = measure(peers, repeats=2, target=0.0, settle=0.25)
    assert set(times) == set("abc") and all(len(v) == 2 for v in times.values())
    timed = events[events.index(0.25) :]  # after the warm-up and calibration calls
    order = _order(list("abc"), 0) + _order(list("abc"), 1)
    assert timed == [x for name in order for x in (0.25, name)]


def test_gemm_floor_does_one_step_of_products_on_normal_numbers():
    sizes, batch = [784, 256, 128, 10], 128
    X = np.random.default_rng(0).standard_normal((300, 784)).astype(np.float32)
    floor = _bench.GemmFloor(X, sizes, batch)
    assert floor.products_per_step == 8  # forward 3, weight gradients 3, inputs 2
    assert [len(step) for step in floor.steps] == [8, 8, 8]  # 128 + 128 + 44 rows
    for _ in range(20):  # repeated calls must not shrink anything towards 0
        floor()
    tiny = np.finfo(np.float32).tiny
    for a in floor.arrays():
        assert np.isfinite(a).all()
        assert np.abs(a[a != 0]).min() >= tiny
        assert np.abs(a).max() < 1e3
    # the last step's products, against NumPy
    m = 300 - 2 * batch
    A0, W = X[-m:], floor.weights
    A1 = A0 @ W[0]
    np.testing.assert_allclose(floor.acts[0][:m], A1, rtol=1e-4, atol=1e-4)
    D1 = floor.deltas[0][:m]
    np.testing.assert_allclose(floor.weight_grads[0], A0.T @ D1, rtol=1e-4, atol=1e-3)
