"""Workloads that compare fastnet with PyTorch, scikit-learn, ONNX Runtime and a NumPy
floor.

Each workload builds, once, a dict ``entry name -> callable`` over the same data:
fastnet's entries (names starting with ``fastnet``) and its peers. Timing calls the
callables only (data, models and compilation are made outside). ``bench/`` times
them with pytest-benchmark; :func:`main` (``fastnet bench``, ``python
bench/report.py``) is in :mod:`fastnet._bench.report`.

Every peer does what fastnet does, the same way: float32, the same rows, batch size
and (for PyTorch) the same shuffled row order per epoch, each batch gathered from one
tensor with ``index_select``, and the same thread count (``FASTNET_BENCH_THREADS``,
default 2) for Numba, BLAS, torch and ONNX Runtime. The inference peers hold
fastnet's weights, and :func:`inference` checks that their probabilities are
fastnet's (:func:`check_inference`) before it returns them for timing.
"""

import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

THREADS = int(os.environ.get("FASTNET_BENCH_THREADS", "2"))

PARTIAL_FIT = "fastnet partial_fit, alpha=1e-4"
PARTIAL_FIT_NO_L2 = "fastnet partial_fit, alpha=0"
TRAINER = "fastnet Trainer"
TORCH_FUSED = "PyTorch eager, Adam(fused=True)"
TORCH_FOREACH = "PyTorch eager, Adam(foreach=True)"
SKLEARN_FIT = "scikit-learn partial_fit"
FLOOR = "NumPy GEMM floor"
PROBA = "fastnet predict_proba"
TORCH_PROBA = "PyTorch module + softmax (inference_mode)"
SKLEARN_PROBA = "scikit-learn predict_proba"
ORT_PROBA = "ONNX Runtime (skl2onnx export)"
INFERENCE_FLOOR = "NumPy inference GEMM floor"
#: how closely every inference peer's probabilities must match fastnet's (float32)
PROBA_RTOL, PROBA_ATOL = 1e-5, 1e-6
TRAINING_ENTRIES = (
    PARTIAL_FIT,
    PARTIAL_FIT_NO_L2,
    TRAINER,
    TORCH_FUSED,
    TORCH_FOREACH,
    SKLEARN_FIT,
    FLOOR,
)
INFERENCE_ENTRIES = (PROBA, TORCH_PROBA, ORT_PROBA, SKLEARN_PROBA, INFERENCE_FLOOR)


def _torch():
    """torch, or None; its thread count is the harness's to set (THREADS)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _onnxruntime():
    """onnxruntime, or None (without it, or without skl2onnx to export to it)."""
    try:
        import onnxruntime
        import skl2onnx  # noqa: F401
    except ImportError:
        return None
    return onnxruntime


def _data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    return X, y


def _torch_mlp(torch, sizes, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1], dtype=torch.float32))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _fused_adam_works(torch):
    """Whether ``torch.optim.Adam(fused=True)`` steps CPU float32 parameters."""
    p = torch.nn.Parameter(torch.ones(2, dtype=torch.float32))
    p.grad = torch.ones(2, dtype=torch.float32)
    try:
        torch.optim.Adam([p], lr=1e-3, fused=True).step()
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


class GemmFloor:
    """The matrix products of one epoch of training steps, done alone in NumPy.

    Per batch of an MLP with L layers: L forward products ``A_i @ W_i``, L weight
    gradients ``A_i.T @ D_{i+1}`` and L-1 input gradients ``D_{i+1} @ W_i.T`` (none
    for the input layer): 3L-1 products, 8 for 3 layers. No bias, activation, loss,
    optimizer or gather: the floor of any runtime that multiplies through BLAS.

    The values stay O(1), so no product runs on denormals: the inputs are the data's
    rows (contiguous slices, no copy), the weights are N(0, 1/fan_in), the output
    gradient is N(0, 1), and every product writes to its own buffer, so nothing is
    multiplied by its own result from one step to the next.
    """

    def __init__(self, X, sizes, batch, seed=1):
        rng = np.random.default_rng(seed)
        n, L = X.shape[0], len(sizes) - 1
        dtype = X.dtype
        self.weights = [
            (rng.standard_normal((sizes[i], sizes[i + 1])) / np.sqrt(sizes[i])).astype(
                dtype
            )
            for i in range(L)
        ]
        self.weight_grads = [np.empty_like(W) for W in self.weights]
        self.acts = [np.empty((batch, s), dtype) for s in sizes[1:]]
        self.deltas = [np.empty((batch, s), dtype) for s in sizes[1:-1]]
        self.deltas.append(rng.standard_normal((batch, sizes[-1])).astype(dtype))
        self.X = X
        # one list of (a, b, out) per step, views made once: the loop is the
        # products and nothing else
        self.steps = []
        for lo in range(0, n, batch):
            m = min(batch, n - lo)
            A = [X[lo : lo + m]] + [a[:m] for a in self.acts]
            D = [None] + [d[:m] for d in self.deltas]
            step = [(A[i], W, A[i + 1]) for i, W in enumerate(self.weights)]
            for i in range(L - 1, -1, -1):
                step.append((A[i].T, D[i + 1], self.weight_grads[i]))
                if i:
                    step.append((D[i + 1], self.weights[i].T, D[i]))
            self.steps.append(step)
        self.products_per_step = 3 * L - 1

    def arrays(self):
        """Every array the products read or write."""
        return [self.X, *self.weights, *self.weight_grads, *self.acts, *self.deltas]

    def __call__(self):
        matmul = np.matmul
        for step in self.steps:
            for a, b, out in step:
                matmul(a, b, out=out)


def training(sizes, batch, n, threads=THREADS):
    """One epoch of Adam (lr 1e-3) on an MLP with ReLU hidden layers, float32;
    fastnet on ``threads`` threads (its ``n_threads``; the caller sets the peers').

    Callables return the epoch's loss (the floor returns None), for checking.
    """
    from sklearn.neural_network import MLPClassifier as SkMLP

    import fastnet as fn

    X, y = _data(n, sizes[0], sizes[-1])
    classes = np.arange(sizes[-1])
    hidden = tuple(sizes[1:-1])
    head = slice(0, min(batch, n))  # first calls: set classes, compile, allocate
    peers = {}

    for name, alpha in ((PARTIAL_FIT, 1e-4), (PARTIAL_FIT_NO_L2, 0.0)):
        est = fn.MLPClassifier(
            hidden, alpha=alpha, batch_size=batch, random_state=0, n_threads=threads
        )
        est.partial_fit(X[head], y[head], classes=classes)
        peers[name] = lambda est=est: est.partial_fit(X, y).loss_

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
        n_threads=threads,
    )
    trainer.fit(X[head], y[head])
    peers[TRAINER] = lambda: trainer.fit(X, y).loss[-1]

    torch = _torch()
    if torch is not None:
        peers.update(_torch_training(torch, X, y, sizes, batch))

    sk = SkMLP(hidden, batch_size=batch, random_state=0)  # alpha=1e-4, its default
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.partial_fit(X[head], y[head], classes=classes)
    peers[SKLEARN_FIT] = lambda: sk.partial_fit(X, y).loss_

    peers[FLOOR] = GemmFloor(X, sizes, batch)
    return peers


def _torch_training(torch, X, y, sizes, batch):
    """PyTorch eager, batched as fastnet's Trainer batches: each call is one epoch
    in the order ``default_rng(0).permutation(n)`` (the order ``Trainer(random_state
    =0).fit`` draws), each batch gathered with ``index_select`` from one tensor."""
    n = X.shape[0]
    tX, ty = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    model = _torch_mlp(torch, sizes)
    fused = _fused_adam_works(torch)
    kind = {"fused": True} if fused else {"foreach": True}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **kind)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        order = torch.from_numpy(np.random.default_rng(0).permutation(n))
        for lo in range(0, n, batch):
            idx = order[lo : lo + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(tX.index_select(0, idx)), ty.index_select(0, idx))
            loss.backward()
            opt.step()
        return loss.item()

    epoch()  # first step: allocates the optimizer's state
    return {TORCH_FUSED if fused else TORCH_FOREACH: epoch}


class InferenceFloor:
    """The forward products of ``predict_proba``, done alone in NumPy: ``h @ W_i``
    layer by layer into buffers made once, with the model's weights and rows. No
    bias, activation or softmax: the floor of any runtime that multiplies through
    BLAS. Returns None."""

    def __init__(self, X, weights):
        self.X = X
        self.weights = list(weights)
        self.acts = [np.empty((X.shape[0], W.shape[1]), X.dtype) for W in weights]
        ins = [X, *self.acts[:-1]]
        self.steps = list(zip(ins, self.weights, self.acts, strict=True))

    def arrays(self):
        """Every array the products read or write."""
        return [self.X, *self.weights, *self.acts]

    def __call__(self):
        matmul = np.matmul
        for a, b, out in self.steps:
            matmul(a, b, out=out)


def inference(sizes, rows):
    """``predict_proba`` of ``rows`` rows; the peers hold the same weights, and
    their probabilities are checked against fastnet's before this returns
    (:func:`check_inference`). Callables return the probabilities (the floor
    returns None)."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    import fastnet as fn

    X, y = _data(max(200, sizes[-1]), sizes[0], sizes[-1])
    hidden = tuple(sizes[1:-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = fn.MLPClassifier(hidden, max_iter=2, random_state=0, n_threads=THREADS)
        est.fit(X, y)
        sk = SkMLP(hidden, max_iter=1, random_state=0).fit(X, y)
    sk.coefs_ = [W.copy() for W in est.coefs_]
    sk.intercepts_ = [b.copy() for b in est.intercepts_]
    Xq = np.ascontiguousarray(_data(rows, sizes[0], sizes[-1], seed=1)[0])
    peers = {PROBA: lambda: est.predict_proba(Xq)}
    torch = _torch()
    if torch is not None:
        peers[TORCH_PROBA] = _torch_proba(torch, sizes, est, Xq)
    ort = _onnxruntime()
    if ort is not None:
        peers[ORT_PROBA] = _ort_proba(ort, sk, Xq)
    peers[SKLEARN_PROBA] = lambda: sk.predict_proba(Xq)
    peers[INFERENCE_FLOOR] = InferenceFloor(Xq, est.coefs_)
    check_inference(peers)
    return peers


def _torch_proba(torch, sizes, est, Xq):
    model = _torch_mlp(torch, sizes).eval()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, W, b in zip(linears, est.coefs_, est.intercepts_, strict=True):
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
    tX = torch.from_numpy(Xq)

    def torch_proba():
        with torch.inference_mode():
            return torch.softmax(model(tX), dim=1)

    return torch_proba


def _ort_proba(ort, sk, Xq):
    """The scikit-learn model exported by skl2onnx (``zipmap=False``: the
    probabilities as one array, its second output), run by an ONNX Runtime session
    on ``THREADS`` threads; the opset is fastnet's own export's."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    from ..onnx import DEFAULT_OPSET

    proto = to_onnx(
        sk,
        initial_types=[("X", FloatTensorType([None, Xq.shape[1]]))],
        options={id(sk): {"zipmap": False}},
        target_opset=DEFAULT_OPSET,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    proba = [session.get_outputs()[1].name]
    feed = {session.get_inputs()[0].name: Xq}
    return lambda: session.run(proba, feed)[0]


def check_inference(peers):
    """Call every entry of an :func:`inference` workload once and check that each
    one that returns probabilities matches fastnet's ``predict_proba`` (to
    :data:`PROBA_RTOL`, :data:`PROBA_ATOL`); AssertionError names the entry."""
    ours = np.asarray(peers[PROBA]())
    for name, fn in peers.items():
        result = fn()
        if name != PROBA and result is not None:
            check_proba(name, result, ours)


def check_proba(name, proba, ours):
    """AssertionError, naming ``name``, unless ``proba`` matches ``ours``."""
    try:
        np.testing.assert_allclose(
            np.asarray(proba), ours, rtol=PROBA_RTOL, atol=PROBA_ATOL
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{name}: its probabilities are not fastnet's ({PROBA}), so its "
            f"time would not be comparable:{exc}"
        ) from None


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
                    "fastnet.tabular.cli",
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


def _training_title(number, sizes, batch, n):
    arch = "-".join(map(str, sizes))
    products = 3 * (len(sizes) - 1) - 1
    return (
        f"{number}. MLP {arch}, batch {batch}, {n:,} rows, one epoch of Adam "
        f"(floor: {products} products per step)"
    )


def _inference_title(number, sizes, rows):
    arch = "-".join(map(str, sizes))
    return f"{number}. predict_proba, {rows:,} row{'s' * (rows > 1)} ({arch})"


def workloads(tiny=False):
    """``title -> build()``; ``tiny``: the same workloads on toy sizes (for tests)."""
    if tiny:
        big, small, wide = [20, 16, 12, 4], [8, 6, 3], [8, 12, 6, 3]
        train = [(big, 8, 60), (small, 4, 30)]
        rows = (1, 50)
    else:
        big, small, wide = [784, 256, 128, 10], [64, 32, 10], [64, 128, 64, 10]
        train = [(big, 128, 20_000), (small, 32, 1797)]
        rows = (1, 10_000)
    out = {}
    for i, (sizes, batch, n) in enumerate(train):
        title = _training_title(i + 1, sizes, batch, n)
        out[title] = lambda s=sizes, b=batch, n=n: training(s, b, n)
    for j, (sizes, r) in enumerate((s, r) for r in rows for s in (big, wide)):
        title = _inference_title(f"3{'abcd'[j]}", sizes, r)
        out[title] = lambda s=sizes, r=r: inference(s, r)
    return out


WORKLOADS = workloads()


def main(quick=False, tiny=False):
    """Print the markdown report (see :mod:`fastnet._bench.report`)."""
    from .report import report

    return report(quick=quick, tiny=tiny)
