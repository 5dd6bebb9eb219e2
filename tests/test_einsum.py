"""einsum and einsum_vjp against numpy.einsum, an exact Jacobian oracle and torch."""

import functools
import itertools
import string
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnet as fn
from fastnet.nn import einsum_plan as contract
from tests.conftest import numeric_vjp
from tests.einsum_corpus import CORPUS

# (equation, operand shapes): every category the issue names.
CASES = [
    # two operands, explicit and implicit
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("ji,jk->ik", [(4, 3), (4, 5)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("ij,ij", [(3, 4), (3, 4)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij,jk->ki", [(3, 4), (4, 5)]),
    ("ijk,jl->ilk", [(2, 3, 4), (3, 5)]),
    # spaces and upper case
    (" i j , j k -> i k ", [(2, 3), (3, 4)]),
    ("Ab,bA", [(2, 3), (3, 2)]),
    ("aB,Bc->ca", [(2, 3), (3, 4)]),
    # one operand
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ij->i", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("ii->", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ii->i", [(4, 4)]),
    ("iij->j", [(3, 3, 2)]),
    ("iji->ij", [(3, 2, 3)]),
    ("iiii->i", [(2, 2, 2, 2)]),
    ("ijk->kji", [(2, 3, 4)]),
    ("ji", [(2, 3)]),
    # three or more operands
    ("bi,ij,bj->b", [(6, 3), (3, 4), (6, 4)]),
    ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 5)]),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 2)]),
    ("i,i,i->i", [(4,), (4,), (4,)]),
    ("ij,jk,kl,lm,mi->", [(2, 3), (3, 2), (2, 3), (3, 2), (2, 2)]),
    # repeated labels together with other operands
    ("ii,ij->j", [(3, 3), (3, 4)]),
    ("iij,jk->ik", [(3, 3, 2), (2, 4)]),
    # labels in one operand only (summed away)
    ("ij,k->i", [(3, 4), (5,)]),
    ("ijk,k->i", [(2, 3, 4), (4,)]),
    ("ab,cd->ad", [(2, 3), (4, 5)]),
    # ellipsis broadcasting, different ranks
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk", [(5, 1, 2, 3), (4, 3, 2)]),
    ("...ij,jk->...ik", [(2, 2, 3, 4), (4, 5)]),
    ("i...,i...->...", [(2, 3, 4), (2, 4)]),
    ("...,...->...", [(2, 3), (3,)]),
    ("...i->...", [(2, 3, 4)]),
    ("i...->i", [(3,)]),
    # size-1 axes broadcast against larger ones
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("ij,jk->ik", [(2, 1), (3, 4)]),
    ("bij,bjk->bik", [(1, 3, 4), (2, 4, 5)]),
    # 0-d operands
    (",->", [(), ()]),
    (",i->i", [(), (3,)]),
    ("->", [()]),
    # zero-size axes
    ("ij,jk->ik", [(0, 3), (3, 2)]),
    ("ij,jk->ik", [(2, 0), (0, 2)]),
    ("ij->", [(0, 3)]),
    ("ii->i", [(0, 0)]),
]
IDS = [f"{eq.strip()}|{'x'.join(map(str, shapes))}" for eq, shapes in CASES]


def operands(shapes, rng, dtype=np.float64):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def explicit(eq):
    """``eq`` with its implicit output written out (NumPy's rule: '...' first, then
    the labels used once, in code-point order)."""
    eq = eq.replace(" ", "")
    if "->" in eq:
        return eq
    letters = eq.replace(".", "").replace(",", "")
    once = sorted(c for c in set(letters) if letters.count(c) == 1)
    return eq + "->" + ("..." if "..." in eq else "") + "".join(once)


def exact_grads(eq, ops, g):
    """einsum is linear in each operand: apply it to every basis tensor at once, the
    basis index as an extra label, and contract each result with ``g``."""
    lhs, out = explicit(eq).split("->")
    z = next(c for c in string.ascii_letters if c not in lhs)
    grads = []
    for i, op in enumerate(ops):
        terms = lhs.split(",")
        terms[i] = z + terms[i]
        basis = list(ops)
        basis[i] = np.eye(op.size).reshape(op.size, *op.shape)
        y = np.einsum(",".join(terms) + "->" + z + out, *basis, optimize=True)
        jac = (y * g).reshape(op.size, np.size(g)).sum(axis=1)
        grads.append(jac.reshape(op.shape))
    return grads


def per_basis_grads(eq, ops, g):
    """The same, one basis tensor at a time, through NumPy's unoptimised einsum."""
    grads = []
    for i, op in enumerate(ops):
        jac = np.zeros(op.shape)
        for idx in np.ndindex(op.shape):
            basis = list(ops)
            e = np.zeros(op.shape)
            e[idx] = 1.0
            basis[i] = e
            jac[idx] = np.sum(g * np.einsum(eq, *basis))
        grads.append(jac)
    return grads


@pytest.mark.parametrize("eq,shapes", CASES, ids=IDS)
def test_the_jacobian_oracle_matches_per_basis_einsum(eq, shapes, rng):
    ops = operands(shapes, rng)
    g = rng.standard_normal(np.einsum(eq, *ops).shape)
    for fast, slow in zip(
        exact_grads(eq, ops, g), per_basis_grads(eq, ops, g), strict=True
    ):
        np.testing.assert_allclose(fast, slow, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("eq,shapes", CASES, ids=IDS)
def test_forward_matches_numpy(eq, shapes, dtype, rng):
    ops = operands(shapes, rng, dtype)
    got = fn.einsum(eq, *ops)
    want = np.einsum(eq, *[o.astype(np.float64) for o in ops])
    assert got.shape == want.shape and got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("eq,shapes", CASES, ids=IDS)
def test_gradients_match_the_exact_jacobian(eq, shapes, rng):
    ops = operands(shapes, rng)
    g = rng.standard_normal(np.einsum(eq, *ops).shape)
    grads = fn.einsum_vjp(eq, ops, g)
    assert len(grads) == len(ops)
    for got, want, op in zip(grads, exact_grads(eq, ops, g), ops, strict=True):
        assert got.shape == op.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("eq,shapes", CASES, ids=IDS)
def test_gradients_match_torch(eq, shapes, rng, torch):
    ops = operands(shapes, rng)
    g = rng.standard_normal(np.einsum(eq, *ops).shape)
    tops = [torch.tensor(o, requires_grad=True) for o in ops]
    torch.einsum(eq.replace(" ", ""), *tops).backward(torch.tensor(g))
    for got, t in zip(fn.einsum_vjp(eq, ops, g), tops, strict=True):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_same_array_twice_gets_the_sum_of_both_gradients(rng):
    x = rng.standard_normal((3, 3))
    g = rng.standard_normal((3, 3))
    g1, g2 = fn.einsum_vjp("ij,jk->ik", [x, x], g)
    numeric = numeric_vjp(lambda v: np.einsum("ij,jk->ik", v, v), x, g)
    np.testing.assert_allclose(g1 + g2, numeric, rtol=1e-7)


def test_mixed_dtypes_take_the_wider(rng):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((3, 2))
    assert fn.einsum("ij,jk", a, b).dtype == np.float64
    assert fn.einsum("ij,jk", a, b.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize(
    "eq,shapes,words",
    [
        ("ij->k", [(2, 3)], "output subscript 'k' does not appear"),
        ("ij,jk", [(2, 3), (4, 5)], "subscript 'j' has size 3"),
        ("ij", [(2, 3), (3, 4)], "subscripts for 1 operand"),
        ("ij,jk,kl", [(2, 3), (3, 4)], "subscripts for 3 operand"),
        ("ijk", [(2, 3)], "2 dimensions"),
        ("ij", [(2, 3, 4)], "3 dimensions"),
        ("ii", [(2, 3)], "repeats subscript 'i'"),
        ("ij->ii", [(2, 2)], "repeats an output"),
        ("i..j", [(2, 3)], "malformed"),
        ("i1->i", [(2, 3)], "invalid subscript '1'"),
        ("i->i->i", [(2,)], "more than one"),
    ],
)
def test_bad_equations_are_value_errors(eq, shapes, words, rng):
    with pytest.raises(ValueError, match=words):
        fn.einsum(eq, *operands(shapes, rng))


def test_bad_operands():
    with pytest.raises(TypeError, match="complex"):
        fn.einsum("i->", np.ones(3, complex))
    with pytest.raises(TypeError, match="string"):
        fn.einsum(3, np.ones(3))
    with pytest.raises(ValueError, match="at least one operand"):
        fn.einsum("->")
    with pytest.raises(ValueError, match=r"grad_out has shape \(2,\), expected \(3,\)"):
        fn.einsum_vjp("i->i", [np.ones(3)], np.ones(2))


def test_einsum_module_with_a_learned_parameter_in_a_graph(rng):
    # A bilinear layer: y_b = x_b W z_b, W a parameter node; x also feeds a ReLU
    # branch (fan-out) that meets the bilinear output again.
    g = fn.Graph()
    x = g.input("x")
    z = g.input("z")
    w = g.param("W", rng.standard_normal((3, 4)))
    bil = g.add(fn.Einsum("bi,ij,bj->b"), x, w, z)
    r = g.add(fn.Einsum("bi->b"), g.add(fn.ReLU(), x))
    g.add(fn.Einsum("b,b->b"), bil, r)
    xv, zv = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    dy = rng.standard_normal(5)
    g.forward(x=xv, z=zv)
    grads = g.backward(dy)
    w_grad = w.grad.copy()

    def with_w(v):
        old = w.value.copy()
        w.value[...] = v
        out = g.forward(x=xv, z=zv).copy()
        w.value[...] = old
        return out

    np.testing.assert_allclose(
        w_grad, numeric_vjp(with_w, w.value.copy(), dy), rtol=1e-7
    )
    np.testing.assert_allclose(
        grads["x"],
        numeric_vjp(lambda v: g.forward(x=v, z=zv).copy(), xv, dy),
        rtol=1e-6,
        atol=1e-9,
    )
    assert "W" in g.params and g.grads["W"] is w.grad


LETTERS = "abcde"


@st.composite
def equations(draw):
    n_ops = draw(st.integers(1, 3))
    sizes = {c: draw(st.integers(1, 3)) for c in LETTERS}
    terms = [
        "".join(draw(st.lists(st.sampled_from(LETTERS), min_size=0, max_size=3)))
        for _ in range(n_ops)
    ]
    used = sorted(set(itertools.chain(*terms)))
    if draw(st.booleans()):
        out = "".join(draw(st.permutations(used))[: draw(st.integers(0, len(used)))])
        eq = ",".join(terms) + "->" + out
    else:
        eq = ",".join(terms)
    shapes = [tuple(sizes[c] for c in t) for t in terms]
    return eq, shapes


@settings(max_examples=60, deadline=None)
@given(case=equations(), seed=st.integers(0, 2**16))
def test_hypothesis_random_equations(case, seed):
    eq, shapes = case
    rng = np.random.default_rng(seed)
    ops = operands(shapes, rng)
    want = np.einsum(eq, *ops)
    np.testing.assert_allclose(fn.einsum(eq, *ops), want, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(want.shape)
    for got, exact in zip(
        fn.einsum_vjp(eq, ops, g), exact_grads(eq, ops, g), strict=True
    ):
        np.testing.assert_allclose(got, exact, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("eq", ["ij->i", "ii->i", "ijk->k"])
def test_large_single_operand_reductions_take_the_parallel_kernel(eq, rng):
    shape = {"ij->i": (600, 600), "ii->i": (600, 600), "ijk->k": (60, 70, 80)}[eq]
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(fn.einsum(eq, x), np.einsum(eq, x), rtol=1e-12)


# -- the public corpus ----------------------------------------------------------------
CORPUS_IDS = [f"{src}:{eq.strip()}|{'x'.join(map(str, sh))}" for src, eq, sh in CORPUS]
# The result's error against float64 references is bounded by the same einsum of the
# absolute values (a sum of |products|) times a few roundings per product and sum.
RTOL = {np.float32: 1e-5, np.float64: 1e-12}


@functools.cache
def corpus_case(k):
    """Operands (float32 values, so both dtypes share one reference), ``grad_out``,
    the float64 result and exact gradients, and the bounds of their errors."""
    _, eq, shapes = CORPUS[k]
    rng = np.random.default_rng(k)
    ops = [rng.standard_normal(s).astype(np.float32).astype(np.float64) for s in shapes]
    want = np.einsum(eq, *ops, optimize=True)
    g = rng.standard_normal(want.shape).astype(np.float32).astype(np.float64)
    absolute = [np.abs(o) for o in ops]
    return {
        "ops": ops,
        "g": g,
        "want": want,
        "bound": np.einsum(eq, *absolute, optimize=True),
        "grads": exact_grads(eq, ops, g),
        "grad_bounds": exact_grads(eq, absolute, np.abs(g)),
    }


def assert_within(got, want, bound, dtype):
    assert got.shape == np.shape(want) and got.dtype == dtype
    err = np.abs(got.astype(np.float64) - want)
    assert np.all(err <= RTOL[dtype] * bound + 1e-30), (
        f"max error {np.max(err, initial=0)}, bound {RTOL[dtype] * np.max(bound)}"
    )


@pytest.mark.parametrize("k", range(len(CORPUS)), ids=CORPUS_IDS)
def test_corpus_forward_matches_numpy_optimized(k, dtype):
    case = corpus_case(k)
    got = fn.einsum(CORPUS[k][1], *[o.astype(dtype) for o in case["ops"]])
    assert_within(got, case["want"], case["bound"], dtype)


@pytest.mark.parametrize("k", range(len(CORPUS)), ids=CORPUS_IDS)
def test_corpus_gradients_match_the_exact_jacobian(k, dtype):
    case = corpus_case(k)
    ops = [o.astype(dtype) for o in case["ops"]]
    grads = fn.einsum_vjp(CORPUS[k][1], ops, case["g"].astype(dtype))
    assert len(grads) == len(ops)
    for got, want, bound in zip(grads, case["grads"], case["grad_bounds"], strict=True):
        assert_within(got, want, bound, dtype)


ISSUE17 = [(eq, shapes) for src, eq, shapes in CORPUS if src == "issue17"]


@pytest.mark.parametrize("eq,shapes", ISSUE17, ids=[eq for eq, _ in ISSUE17])
def test_summed_ellipsis_matches_torch(eq, shapes, rng, torch):
    # numpy's unoptimised einsum refuses these; torch is a second reference
    ops = operands(shapes, rng)
    tops = [torch.tensor(o, requires_grad=True) for o in ops]
    ty = torch.einsum(eq, *tops)
    g = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(fn.einsum(eq, *ops), ty.detach().numpy(), rtol=1e-12)
    for got, t in zip(fn.einsum_vjp(eq, ops, g), tops, strict=True):
        np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_numpy_unoptimised_refuses_a_summed_ellipsis_which_fastnet_sums(rng):
    x = rng.standard_normal((3, 4, 5))
    with pytest.raises(ValueError):
        np.einsum("i...->i", x)
    np.testing.assert_allclose(fn.einsum("i...->i", x), x.sum(axis=(1, 2)))


# -- plans: cached, bounded, immutable, shared by threads -----------------------------
def test_a_repeated_call_reuses_its_plan(rng):
    contract._forward_plan.cache_clear()
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    fn.einsum("ij,jk->ik", x, y)
    before = contract._forward_plan.cache_info()
    fn.einsum("ij,jk->ik", rng.standard_normal((3, 4)), y)
    after = contract._forward_plan.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses
    # another shape or dtype is another plan
    fn.einsum("ij,jk->ik", x.astype(np.float32), y.astype(np.float32))
    assert contract._forward_plan.cache_info().misses == after.misses + 1


def test_the_plan_cache_is_bounded():
    assert contract._forward_plan.cache_info().maxsize == contract.PLAN_CACHE_SIZE
    assert contract._vjp_plan.cache_info().maxsize == contract.PLAN_CACHE_SIZE
    for n in range(1, contract.PLAN_CACHE_SIZE + 40):
        x = np.ones(n)
        fn.einsum_vjp("i,i->", [x, x], np.ones(()))
    assert contract._forward_plan.cache_info().currsize <= contract.PLAN_CACHE_SIZE
    assert contract._vjp_plan.cache_info().currsize <= contract.PLAN_CACHE_SIZE


@pytest.mark.parametrize(
    "eq,shapes",
    [
        ("ii,ij->j", [(3, 3), (3, 4)]),
        ("bi,ij,bj->b", [(6, 3), (3, 4), (6, 4)]),
        ("iij,jk->ik", [(3, 3, 2), (2, 4)]),
        ("ij...,i...->i", [(2, 3, 4, 1), (2, 4, 6)]),
    ],
)
def test_a_plan_holds_no_writable_array(eq, shapes):
    plans = [
        contract._forward_plan(eq, tuple(shapes), np.dtype(np.float64)),
        contract._vjp_plan(eq, tuple(shapes), np.dtype(np.float64)),
    ]
    arrays = 0
    for plan in plans:
        assert isinstance(plan.steps, tuple)
        for step in plan.steps:
            for cell in step.__closure__:
                value = cell.cell_contents
                assert not (isinstance(value, np.ndarray) and value.flags.writeable)
                assert not isinstance(value, (list, dict, set))
                arrays += isinstance(value, np.ndarray)
    assert arrays or "ii" not in eq  # (diagonals need stride tables)


def test_results_are_new_arrays(rng):
    x = rng.standard_normal((3, 4))
    y = fn.einsum("ij->ij", x)
    assert not np.shares_memory(x, y)
    assert not np.shares_memory(y, fn.einsum("ij->ij", x))
    g = rng.standard_normal((3, 4))
    (dx,) = fn.einsum_vjp("ij->ij", [x], g)
    assert not np.shares_memory(dx, g) and not np.shares_memory(dx, x)
    np.testing.assert_array_equal(dx, g)


@pytest.mark.parametrize(
    "eq,shapes",
    [
        ("bi,ij,bj->b", [(32, 8), (8, 8), (32, 8)]),
        ("ij,jk,kl->il", [(8, 8), (8, 8), (8, 8)]),
        ("iij,j...->i", [(40, 40, 9), (9, 30)]),
    ],
)
def test_concurrent_calls_on_one_plan_give_each_their_own_result(eq, shapes):
    rng = np.random.default_rng(7)
    inputs = [[rng.standard_normal(s) for s in shapes] for _ in range(8)]
    dys = [rng.standard_normal(np.shape(fn.einsum(eq, *ops))) for ops in inputs]
    want = [
        (fn.einsum(eq, *o), fn.einsum_vjp(eq, o, d))
        for o, d in zip(inputs, dys, strict=True)
    ]

    def work(k):
        for r in range(100):
            j = (k + r) % len(inputs)
            y = fn.einsum(eq, *inputs[j])
            grads = fn.einsum_vjp(eq, inputs[j], dys[j])
            np.testing.assert_array_equal(y, want[j][0])
            for got, w in zip(grads, want[j][1], strict=True):
                np.testing.assert_array_equal(got, w)
        return k

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(work, range(8))) == list(range(8))
