"""How many rows a block of the forward pass should have: ``predict_proba`` of
10,000 rows through each network at each block size, beside the inference GEMM
floor and ONNX Runtime.

    python bench/inference_blocks.py [--runs 3] [--reps 7] [--threads 2]
        [--blocks 64,160,320,512,768,1024,2048]
        [--networks 784-256-128-10,64-128-64-10]

float32, the estimator's weights in every runtime; fastnet's compiled forward with
its block size set by hand (``CompiledForward.block``) on ``--threads`` of its own
threads, the chosen size (:func:`fastnet._runtime.mlp.call_block`) marked; the floor
is NumPy's ``matmul`` of each layer into preallocated outputs on ``--threads`` BLAS
threads; ONNX Runtime with ``intra_op_num_threads`` = ``--threads``. Timed with the
report's sampler (``fastnet._bench.report.measure``): each repetition times every
entry once, for about 0.1 s of back-to-back calls, in an order rotated and reversed
between repetitions, each after 0.2 s of rest (ONNX Runtime's and OpenBLAS's threads
spin after their work); warm-up and compilation excluded. Printed per run: each
entry's median time over the floor's; then, per entry, the median and range of that
ratio over the runs.
"""

import argparse
import statistics
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import fastnet as fn
from fastnet._bench.report import measure
from fastnet._runtime.mlp import call_block
from fastnet._runtime.pool import pool

ROWS = 10_000
#: seconds of calls per sample (the report's sampler, as ``bench/report.py`` full)
TARGET = 0.1


def entries(sizes, blocks, threads):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, sizes[0])).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fn.MLPClassifier(sizes[1:-1], max_iter=1, random_state=0)
        est.fit(X, rng.integers(0, sizes[-1], 2000))
    fwd = est._network().compiled_forward()
    Xq = rng.standard_normal((ROWS, sizes[0])).astype(np.float32)
    chosen = call_block(ROWS, fwd.least, pool().size)
    out = {}
    for b in sorted({*blocks, chosen}):

        def run(b=b):
            fwd.block = b
            return fwd(Xq, threads=threads)

        out[f"block {b}{' (chosen)' if b == chosen else ''}"] = run
    buffers = [np.empty((ROWS, W.shape[1]), np.float32) for W in est.coefs_]

    def floor():
        h = Xq
        for W, o in zip(est.coefs_, buffers, strict=True):
            np.matmul(h, W, out=o)
            h = o

    out["floor"] = floor
    try:
        import onnxruntime as ort

        from fastnet.onnx import to_onnx
    except ImportError:
        return out
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(
        to_onnx(est).SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    out["ONNX Runtime"] = lambda: session.run(None, {"X": Xq})[1]
    expected = est.predict_proba(Xq)
    for name, f in out.items():
        got = f()
        if got is not None:
            np.testing.assert_allclose(got, expected, 1e-5, 1e-6, err_msg=name)
    return out


def one_run(sizes, blocks, threads, reps):
    fns = entries(sizes, blocks, threads)
    with threadpool_limits(threads, user_api="blas"):
        times = measure(fns, reps, TARGET)
    floor = statistics.median(times["floor"])
    return {name: statistics.median(v) / floor for name, v in times.items()}, floor


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--blocks", default="64,160,320,512,768,1024,2048")
    parser.add_argument("--networks", default="784-256-128-10,64-128-64-10")
    args = parser.parse_args()
    blocks = [int(b) for b in args.blocks.split(",")]
    networks = [[int(s) for s in n.split("-")] for n in args.networks.split(",")]
    for sizes in networks:
        arch = "-".join(map(str, sizes))
        ratios = {}
        for run in range(args.runs):
            got, floor = one_run(sizes, blocks, args.threads, args.reps)
            print(f"{arch} run {run}: floor {floor * 1e3:.2f} ms; "
                  + ", ".join(f"{k} {v:.2f}" for k, v in got.items()))  # fmt: skip
            for k, v in got.items():
                ratios.setdefault(k, []).append(v)
        print(f"{arch}, time / floor, median (range) over {args.runs} runs:")
        for k, v in ratios.items():
            print(f"  {k}: {statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})")


if __name__ == "__main__":
    main()
