"""Workloads that compare fastnet with PyTorch, scikit-learn and a NumPy floor.

Each workload builds, once, a dict ``peer name -> callable`` over the same data;
timing calls the callables only (data, models and compilation are made outside).
``bench/`` times them with pytest-benchmark; :func:`main` (``fastnet bench``,
``python bench/report.py``) times each a few times and prints a markdown table of
medians and ratios, with the machine it ran on.
"""

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

THREADS = int(os.environ.get("FASTNET_BENCH_THREADS", "2"))


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(THREADS)
    return torch


def _data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    return X, y


def _torch_mlp(torch, sizes, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def training(sizes, batch, n):
    """One epoch of Adam on an MLP with ReLU hidden layers, float32."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    import fastnet as fn

    X, y = _data(n, sizes[0], sizes[-1])
    classes = np.arange(sizes[-1])
    hidden = tuple(sizes[1:-1])
    peers = {}

    est = fn.MLPClassifier(hidden, batch_size=batch, random_state=0, shuffle=True)
    est.partial_fit(X[:batch], y[:batch], classes=classes)  # compile, allocate
    peers["fastnet MLPClassifier.partial_fit"] = lambda: est.partial_fit(X, y)

    layers = []
    for i in range(len(sizes) - 1):
        layers.append(fn.Linear(sizes[i], sizes[i + 1], random_state=i))
        if i < len(sizes) - 2:
            layers.append(fn.ReLU())
    trainer = fn.Trainer(
        fn.Sequential(*layers),
        fn.SoftmaxCrossEntropy(),
        fn.optim.Adam(lr=1e-3),
        batch_size=batch,
        epochs=1,
        random_state=0,
    )
    trainer.fit(X[: 2 * batch], y[: 2 * batch])
    peers["fastnet Trainer"] = lambda: trainer.fit(X, y)

    sk = SkMLP(hidden, batch_size=batch, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.partial_fit(X[:batch], y[:batch], classes=classes)
    peers["scikit-learn partial_fit"] = lambda: sk.partial_fit(X, y)

    torch = _torch()
    if torch is not None:
        tX, ty = torch.from_numpy(X), torch.from_numpy(y)
        for name, fused in (
            ("PyTorch eager, Adam(fused=True)", True),
            ("PyTorch eager, Adam", None),
        ):
            model = _torch_mlp(torch, sizes)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
            loss_fn = torch.nn.CrossEntropyLoss()

            def epoch(model=model, opt=opt, loss_fn=loss_fn):
                perm = torch.randperm(n)
                for lo in range(0, n, batch):
                    idx = perm[lo : lo + batch]
                    opt.zero_grad(set_to_none=True)
                    loss_fn(model(tX[idx]), ty[idx]).backward()
                    opt.step()

            peers[name] = epoch

    # The floor for any BLAS-based runtime: the same 8 matrix products per step
    # (3 forward, 3 dW, 2 dX for a 3-layer net), nothing else.
    rng = np.random.default_rng(1)
    Ws = [
        rng.standard_normal((sizes[i], sizes[i + 1])).astype(np.float32) * 1e-3
        for i in range(len(sizes) - 1)
    ]
    acts = [rng.standard_normal((batch, s)).astype(np.float32) * 1e-3 for s in sizes]

    def floor():
        for _ in range(0, n, batch):
            for i, W in enumerate(Ws):
                np.matmul(acts[i], W, out=acts[i + 1])
            for i in range(len(Ws) - 1, -1, -1):
                np.matmul(acts[i].T, acts[i + 1], out=Ws[i])
                if i:
                    np.matmul(acts[i + 1], Ws[i].T, out=acts[i])

    peers["NumPy GEMM floor"] = floor
    return peers


def inference(rows):
    from sklearn.neural_network import MLPClassifier as SkMLP

    import fastnet as fn

    X, y = _data(2000, 64, 10)
    hidden = (128, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fn.MLPClassifier(hidden, max_iter=2, random_state=0).fit(X, y)
        sk = SkMLP(hidden, max_iter=2, random_state=0).fit(X, y)
    Xq = np.ascontiguousarray(_data(rows, 64, 10, seed=1)[0])
    est.predict_proba(Xq)
    peers = {"fastnet predict_proba": lambda: est.predict_proba(Xq)}
    torch = _torch()
    if torch is not None:
        model = _torch_mlp(torch, [64, *hidden, 10]).eval()
        tX = torch.from_numpy(Xq)

        def torch_proba():
            with torch.no_grad():
                return torch.softmax(model(tX), dim=1)

        peers["PyTorch module + softmax (no_grad)"] = torch_proba
    peers["scikit-learn predict_proba"] = lambda: sk.predict_proba(Xq)
    return peers


def time_to_first_result(cold):
    """Seconds for `fastnet train --epochs 5` in a fresh process (cold: empty cache)."""

    def run():
        env = dict(os.environ)
        with tempfile.TemporaryDirectory() as tmp:
            if cold:
                env["NUMBA_CACHE_DIR"] = tmp
            began = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "fastnet.cli",
                    "train",
                    "--epochs",
                    "5",
                    "--out",
                    os.path.join(tmp, "m.npz"),
                ],
                check=True,
                capture_output=True,
                env=env,
                cwd=tmp,
            )
            return time.perf_counter() - began

    return {
        "fastnet train (cold Numba cache)"
        if cold
        else "fastnet train (warm cache)": run
    }


MNIST = "1. MNIST-shaped MLP 784-256-128-10, batch 128, Adam, 20,000 rows, one epoch"
TINY = "2. Tiny MLP 64-32-10, batch 32, 1,797 rows, one epoch"
WORKLOADS = {
    MNIST: lambda: training([784, 256, 128, 10], 128, 20_000),
    TINY: lambda: training([64, 32, 10], 32, 1797),
    "3a. predict_proba, 1 row (64-128-64-10)": lambda: inference(1),
    "3b. predict_proba, 10,000 rows (64-128-64-10)": lambda: inference(10_000),
}


def measure(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def machine():
    import numba
    import scipy
    import sklearn

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    torch = _torch()
    versions = [
        f"numpy {np.__version__}",
        f"numba {numba.__version__}",
        f"scipy {scipy.__version__}",
        f"scikit-learn {sklearn.__version__}",
        f"torch {torch.__version__}" if torch else "torch absent",
    ]
    return f"{cpu}, {os.cpu_count()} cores, {THREADS} threads each; " + ", ".join(
        versions
    )


def main(quick=False):
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))
    repeats = 3 if quick else 7
    print(f"fastnet benchmarks, {time.strftime('%Y-%m-%d')}: {machine()}\n")
    print("| workload | peer | median | fastnet / peer |")
    print("| --- | --- | --- | --- |")
    with threadpool_limits(limits=THREADS):
        for title, build in WORKLOADS.items():
            peers = build()
            medians = {name: measure(fn, repeats) for name, fn in peers.items()}
            ours = min(v for k, v in medians.items() if k.startswith("fastnet"))
            for name, t in medians.items():
                ratio = "—" if name.startswith("fastnet") else f"{ours / t:.2f}x"
                print(f"| {title} | {name} | {_fmt(t)} | {ratio} |")
            sys.stdout.flush()
        for cold in (True, False):
            ((name, fn),) = time_to_first_result(cold).items()
            t = statistics.median(fn() for _ in range(1 if quick else 3))
            print(f"| 6. time to first result | {name} | {_fmt(t)} | — |")
    return 0


def _fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"
