"""Workload 5: einsum forward + backward, fastnet vs numpy.einsum(optimize=True) and
torch.einsum (autograd). NumPy has no autograd: its backward is the same gradient
einsums written out by hand, as a user would, each with its contraction path found
once outside the timing. The small cases (8x8 operands, batch 32) measure per-call
overhead more than arithmetic; they are also timed forward only."""

import numpy as np
import pytest

import fastnet as fn

rng = np.random.default_rng(0)

CASES = {
    "batched_matmul": ("bij,bjk->bik", [(64, 32, 48), (64, 48, 40)]),
    "bilinear": ("bi,ij,bj->b", [(512, 64), (64, 48), (512, 48)]),
    "attention": ("bhqd,bhkd->bhqk", [(8, 4, 64, 32), (8, 4, 64, 32)]),
    "outer": ("i,j->ij", [(1024,), (768,)]),
    "trace": ("ii->", [(1024, 1024)]),
    "small_matmul": ("ij,jk->ik", [(8, 8), (8, 8)]),
    "small_chain": ("ij,jk,kl->il", [(8, 8), (8, 8), (8, 8)]),
    "small_bilinear": ("bi,ij,bj->b", [(32, 8), (8, 8), (32, 8)]),
}
SMALL = ["small_matmul", "small_chain", "small_bilinear"]
# the gradient equations of each case, for NumPy (dy, then the other operands)
NUMPY_GRADS = {
    "batched_matmul": ["bik,bjk->bij", "bik,bij->bjk"],
    "bilinear": ["b,ij,bj->bi", "b,bi,bj->ij", "b,bi,ij->bj"],
    "attention": ["bhqk,bhkd->bhqd", "bhqk,bhqd->bhkd"],
    "outer": ["ij,j->i", "ij,i->j"],
    "trace": None,
    "small_matmul": ["ik,jk->ij", "ik,ij->jk"],
    "small_chain": ["il,jk,kl->ij", "il,ij,kl->jk", "il,ij,jk->kl"],
    "small_bilinear": ["b,ij,bj->bi", "b,bi,bj->ij", "b,bi,ij->bj"],
}


def data(name, dtype=np.float32):
    eq, shapes = CASES[name]
    ops = [rng.standard_normal(s).astype(dtype) for s in shapes]
    dy = rng.standard_normal(np.einsum(eq, *ops).shape).astype(dtype)
    return eq, ops, dy


def fastnet_step(eq, ops, dy):
    fn.einsum(eq, *ops)
    return fn.einsum_vjp(eq, ops, dy)


def numpy_paths(name, eq, ops, dy):
    """The forward's and each gradient's contraction path (greedy, as optimize=True)."""
    paths = [np.einsum_path(eq, *ops, optimize="greedy")[0]]
    for i, geq in enumerate(NUMPY_GRADS[name] or []):
        others = [o for j, o in enumerate(ops) if j != i]
        paths.append(np.einsum_path(geq, dy, *others, optimize="greedy")[0])
    return paths


def numpy_step(name, eq, ops, dy, paths):
    np.einsum(eq, *ops, optimize=paths[0])
    if name == "trace":
        return (np.eye(ops[0].shape[0], dtype=ops[0].dtype) * dy,)
    grads = []
    for i, geq in enumerate(NUMPY_GRADS[name]):
        others = [o for j, o in enumerate(ops) if j != i]
        grads.append(np.einsum(geq, dy, *others, optimize=paths[1 + i]))
    return grads


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("peer", ["fastnet", "numpy", "torch"])
def test_einsum_forward_backward(benchmark, name, peer, request):
    benchmark.group = f"einsum {name}"
    eq, ops, dy = data(name)
    if peer == "fastnet":
        fastnet_step(eq, ops, dy)  # compile and plan outside the timing
        grads = benchmark(fastnet_step, eq, ops, dy)
    elif peer == "numpy":
        paths = numpy_paths(name, eq, ops, dy)
        grads = benchmark(numpy_step, name, eq, ops, dy, paths)
    else:
        torch = request.getfixturevalue("torch")
        tops = [torch.tensor(o) for o in ops]
        tdy = torch.tensor(dy)

        def torch_step():
            xs = [t.detach().requires_grad_() for t in tops]
            torch.einsum(eq, *xs).backward(tdy)
            return [x.grad.numpy() for x in xs]

        grads = benchmark(torch_step)
    want = fastnet_step(eq, ops, dy)
    for g, w in zip(grads, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("peer", ["fastnet", "numpy", "torch"])
def test_einsum_forward_small(benchmark, name, peer, request):
    benchmark.group = f"einsum forward {name}"
    eq, ops, _ = data(name)
    if peer == "fastnet":
        fn.einsum(eq, *ops)  # compile and plan outside the timing
        got = benchmark(fn.einsum, eq, *ops)
    elif peer == "numpy":
        path = np.einsum_path(eq, *ops, optimize="greedy")[0]
        got = benchmark(lambda: np.einsum(eq, *ops, optimize=path))
    else:
        torch = request.getfixturevalue("torch")
        tops = [torch.tensor(o) for o in ops]
        got = benchmark(lambda: torch.einsum(eq, *tops)).numpy()
    want = np.einsum(eq, *[o.astype(np.float64) for o in ops])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
