"""``einsum`` for any equation NumPy accepts, and its vector-Jacobian product.

An equation is parsed into integer labels (letters by code point; the axes under
``...`` get negative labels, right-aligned) and contracted pairwise along
``numpy.einsum_path(optimize="greedy")``: a strided loop for diagonals and sums within
one operand, and a permute → reshape → batched GEMM (BLAS) for each pair of operands.

All of that is worked out once per (equation, operand shapes, dtype) into a *plan*:
a fixed list of steps, each one kernel call (or one NumPy copy) whose permutations,
shapes, stride tables and BLAS flags were computed in advance. Plans live in an LRU
cache of :data:`PLAN_CACHE_SIZE` entries, so a repeated call costs its kernels plus
a dictionary look-up.

Safety: a plan runs only on operands of its key's shapes and dtype, C-contiguous and
in native byte order (checked on every call); every other array a kernel sees was
allocated by the plan at its planned shape. Threads: a plan holds only immutable
values (tuples, read-only index arrays, closures over them) and each call allocates
its own intermediates and output, so concurrent calls never share a buffer.

The gradient of operand ``i`` is itself an einsum: ``grad_out`` contracted with the
other operands onto the labels of ``i`` that reach the output or another operand at
full size; then broadcast along labels only ``i`` has (they were summed away), and
scattered onto the diagonal (zeros elsewhere) where ``i`` repeats a label. Where
``i`` has size 1 against a larger size it was broadcast, and its gradient is summed
over that label, which the contraction does by leaving the label out.
"""

import functools
import math
import string
from typing import NamedTuple

import numpy as np

from .. import kernels
from .._runtime.checks import as_float_array

_LETTERS = string.ascii_letters
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

#: Plans kept, least recently used dropped first (forward and gradient plans each).
PLAN_CACHE_SIZE = 256


# -- parsing ---------------------------------------------------------------------------
def _split_term(term, equation):
    if term.count("...") > 1 or term.replace("...", "").count(".") > 0:
        raise ValueError(
            f"einsum equation {equation!r}: '{term}' has a malformed '...'"
        )
    for ch in term.replace("...", ""):
        if ch not in _LETTERS:
            raise ValueError(
                f"einsum equation {equation!r}: invalid subscript {ch!r} (only letters "
                "and '...' are allowed)"
            )
    if "..." in term:
        head, tail = term.split("...")
        return [ord(c) for c in head], [ord(c) for c in tail], True
    return [ord(c) for c in term], [], False


def _parse(equation, shapes):
    """(labels per operand, output labels, size per label) for these operand shapes."""
    eq = equation.replace(" ", "")
    if eq.count("->") > 1:
        raise ValueError(f"einsum equation {equation!r} has more than one '->'")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum equation {equation!r} has subscripts for {len(terms)} operand(s) "
            f"but {len(shapes)} were given"
        )
    labels, n_ell = [], 0
    for i, (term, shape) in enumerate(zip(terms, shapes, strict=True)):
        head, tail, has_ell = _split_term(term, equation)
        k = len(shape) - len(head) - len(tail)
        if k < 0 or (k > 0 and not has_ell):
            raise ValueError(
                f"einsum equation {equation!r}: operand {i} has {len(shape)} "
                f"dimensions but its subscripts '{term}' name {len(head) + len(tail)}"
            )
        n_ell = max(n_ell, k)
        labels.append(tuple(head + list(range(-k, 0)) + tail))
    if arrow:
        # An explicit output without '...' sums the '...' axes, as torch.einsum and
        # numpy.einsum(optimize=True) do (numpy's unoptimised path refuses it).
        head, tail, has_ell = _split_term(rhs, equation)
        out = head + (list(range(-n_ell, 0)) if has_ell else []) + tail
        seen = {lab for ls in labels for lab in ls}
        for lab in out:
            if lab >= 0 and lab not in seen:
                raise ValueError(
                    f"einsum equation {equation!r}: output subscript {chr(lab)!r} does "
                    "not appear in any operand"
                )
        if len(set(out)) != len(out):
            raise ValueError(
                f"einsum equation {equation!r} repeats an output subscript"
            )
    else:
        counts = {}
        for ls in labels:
            for lab in ls:
                counts[lab] = counts.get(lab, 0) + 1
        out = list(range(-n_ell, 0)) + sorted(
            lab for lab, c in counts.items() if c == 1 and lab >= 0
        )
    sizes = {}
    for i, (ls, shape) in enumerate(zip(labels, shapes, strict=True)):
        own = {}
        for lab, d in zip(ls, shape, strict=True):
            if own.setdefault(lab, d) != d:
                raise ValueError(
                    f"einsum equation {equation!r}: operand {i} repeats subscript "
                    f"{_name(lab)} over axes of sizes {own[lab]} and {d}"
                )
            prev = sizes.get(lab, 1)
            if prev != d and prev != 1 and d != 1:
                raise ValueError(
                    f"einsum equation {equation!r}: subscript {_name(lab)} has size "
                    f"{prev} in one operand and {d} in operand {i}"
                )
            sizes[lab] = d if prev == 1 else prev
    return tuple(labels), tuple(out), sizes


def _name(label):
    return repr(chr(label)) if label >= 0 else "'...'"


def _path(labels, out, shapes):
    """Pairwise contraction order for these operands (NumPy's greedy path)."""
    if len(labels) < 3:
        return [(0, 1)] if len(labels) == 2 else []
    letters = {}
    for lab in [lab for ls in labels for lab in ls] + list(out):
        letters.setdefault(lab, _LETTERS[len(letters)])
    eq = ",".join("".join(letters[lab] for lab in ls) for ls in labels)
    eq += "->" + "".join(letters[lab] for lab in out)
    dummies = [np.broadcast_to(np.empty(()), s) for s in shapes]
    return [
        tuple(step) for step in np.einsum_path(eq, *dummies, optimize="greedy")[0][1:]
    ]


# -- plans -----------------------------------------------------------------------------
class _Plan(NamedTuple):
    """Steps over a list of registers: the inputs, then one per step result."""

    steps: tuple  # callables step(registers), run in order
    blank: tuple  # (None,) per intermediate register
    outputs: tuple  # the registers holding the results
    out_shape: tuple  # the einsum's output shape


class _Builder:
    """The registers (their shapes) and steps of a plan while it is made."""

    def __init__(self, shapes, dtype):
        self.shapes = [tuple(s) for s in shapes]
        self.n_inputs = len(self.shapes)
        self.dtype = dtype
        self.steps = []

    def new(self, shape):
        self.shapes.append(tuple(shape))
        return len(self.shapes) - 1

    def temporary(self, reg):
        """Intermediates are read by one step only, which then drops them."""
        return reg >= self.n_inputs

    def plan(self, outputs, out_shape):
        blank = (None,) * (len(self.shapes) - self.n_inputs)
        return _Plan(tuple(self.steps), blank, tuple(outputs), tuple(out_shape))


def _c_strides(shape):
    """Element strides of a C-contiguous array of ``shape``."""
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return strides[::-1]


def _index(values):
    arr = np.array(values, dtype=np.int64).reshape(len(values))
    arr.flags.writeable = False
    return arr


def _layout(shape, labels, order, sizes):
    """How to lay out an array (``shape``, unique ``labels``) in label ``order`` at the
    full ``sizes``: ``(perm, full shape, whether a reshape does it)`` (it does when
    nothing is broadcast and only size-1 axes move)."""
    full = tuple(sizes[lab] for lab in order)
    perm = tuple(labels.index(lab) for lab in order)
    moved = [p for p in perm if shape[p] != 1]
    reshape = moved == sorted(moved) and all(
        shape[p] == d for p, d in zip(perm, full, strict=True)
    )
    return perm, full, reshape


def _laid_out(x, perm, full, shape, dtype):
    """``x`` permuted by ``perm`` and broadcast to ``full`` in a new C-contiguous
    array (``x`` itself when ``perm`` is None), reshaped to ``shape``."""
    if perm is not None:
        buf = np.empty(full, dtype)
        np.copyto(buf, x.transpose(perm))
        x = buf
    return x.reshape(shape)


# Each step is a closure over its plan-time constants; it reads its registers, drops
# the intermediates it consumed, and stores one new array.
def _reduce_step(src, drop, dst, kernel, shape, out_strides, red, red_strides, dtype):
    size = math.prod(shape)
    out_shape, out_strides, red, red_strides = map(
        _index, (shape, out_strides, red, red_strides)
    )

    def step(regs):
        x = regs[src]
        if drop:
            regs[src] = None
        out = np.empty(size, dtype)
        kernel(x.ravel(), 0, out_shape, out_strides, red, red_strides, out)
        regs[dst] = out.reshape(shape)

    return step


def _pair_step(a_src, b_src, dst, drop, a_how, b_how, out3, flags, shape, dtype):
    matmul = kernels.batched_matmul
    trans_a, trans_b = flags
    a_perm, a_full, a_shape = a_how
    b_perm, b_full, b_shape = b_how
    # a size-0 product, or an empty sum (nothing contracted over a size-0 axis): zeros
    empty = math.prod(out3) == 0 or math.prod(a_shape) == 0

    def step(regs):
        a, b = regs[a_src], regs[b_src]
        if drop[0]:
            regs[a_src] = None
        if drop[1]:
            regs[b_src] = None
        if empty:
            regs[dst] = np.zeros(shape, dtype)
            return
        if a_perm is None:
            a = a.reshape(a_shape)
        else:
            a = _laid_out(a, a_perm, a_full, a_shape, dtype)
        if b_perm is None:
            b = b.reshape(b_shape)
        else:
            b = _laid_out(b, b_perm, b_full, b_shape, dtype)
        out = np.empty(out3, dtype)
        matmul(a, b, out, trans_a, trans_b)
        regs[dst] = out.reshape(shape)

    return step


def _layout_step(src, drop, dst, perm, full, dtype):
    def step(regs):
        x = regs[src]
        if drop:
            regs[src] = None
        regs[dst] = _laid_out(x, perm, full, full, dtype)

    return step


def _grad_step(src, drop, dst, expand, shape, diag, copy, dtype):
    def step(regs):
        x = regs[src].reshape(expand)
        if drop:
            regs[src] = None
        if diag is not None:
            # Repeated labels: the gradient lives on the diagonal, zeros elsewhere.
            out = np.zeros(shape, dtype)
            np.copyto(np.ndarray(diag[0], dtype, out, 0, diag[1]), x)
            x = out
        elif copy:
            # (labels only this operand has were summed away: a broadcast)
            out = np.empty(shape, dtype)
            np.copyto(out, x)
            x = out
        regs[dst] = x

    return step


def _plan_reduce(b, reg, labels, keep):
    """Sum register ``reg`` (axes ``labels``) onto the labels in ``keep`` (in order of
    first appearance), taking diagonals of repeated labels: one strided loop."""
    unique = list(dict.fromkeys(labels))
    kept = [lab for lab in unique if lab in keep]
    if kept == list(labels):
        return reg, kept
    shape = b.shapes[reg]
    strides = _c_strides(shape)

    def stride(lab):
        return sum(s for s, m in zip(strides, labels, strict=True) if m == lab)

    def size(lab):
        return shape[labels.index(lab)]

    dropped = [lab for lab in unique if lab not in keep]
    out_shape = [size(lab) for lab in kept]
    dst = b.new(out_shape)
    kernel = kernels.pick(kernels.strided_reduce, math.prod(shape))
    b.steps.append(
        _reduce_step(
            reg,
            b.temporary(reg),
            dst,
            kernel,
            tuple(out_shape),
            [stride(lab) for lab in kept],
            [size(lab) for lab in dropped],
            [stride(lab) for lab in dropped],
            b.dtype,
        )
    )
    return dst, kept


def _plan_pair(b, x, lx, y, ly, keep, sizes, want=None):
    """Contract two registers, keeping the labels in ``keep``: one batched GEMM.

    ``want``: the label order the caller needs next; when swapping the operands
    yields it directly, they are swapped, which saves a transposing copy.
    """
    x, lx = _plan_reduce(b, x, lx, keep | set(ly))
    y, ly = _plan_reduce(b, y, ly, keep | set(lx))
    if want is not None:
        swapped = [lab for lab in ly if lab in lx and lab in keep]
        swapped += [lab for lab in ly if lab not in lx] + [
            lab for lab in lx if lab not in ly
        ]
        if swapped == list(want):
            return _plan_pair(b, y, ly, x, lx, keep, sizes)
    batch = [lab for lab in lx if lab in ly and lab in keep]
    contr = [lab for lab in lx if lab in ly and lab not in keep]
    fx = [lab for lab in lx if lab not in ly]
    fy = [lab for lab in ly if lab not in lx]
    nb, m, k, n = (math.prod(sizes[lab] for lab in g) for g in (batch, fx, contr, fy))
    # Use an operand as it lies when its axes are already (batch, free, contracted)
    # or (batch, contracted, free): BLAS takes the transpose as a flag.
    ta = lx == batch + contr + fx
    pa, fa, ra = _layout(
        b.shapes[x], lx, batch + (contr + fx if ta else fx + contr), sizes
    )
    tb = ly == batch + fy + contr
    pb, fb, rb = _layout(
        b.shapes[y], ly, batch + (fy + contr if tb else contr + fy), sizes
    )
    labels = batch + fx + fy
    shape = tuple(sizes[lab] for lab in labels)
    dst = b.new(shape)
    b.steps.append(
        _pair_step(
            x,
            y,
            dst,
            (b.temporary(x), b.temporary(y)),
            (None if ra else pa, fa, (nb, k, m) if ta else (nb, m, k)),
            (None if rb else pb, fb, (nb, n, k) if tb else (nb, k, n)),
            (nb, m, n),
            (ta, tb),
            shape,
            b.dtype,
        )
    )
    return dst, labels


def _plan_contraction(b, regs, labels, out, sizes, fresh):
    """Plan the einsum of registers ``regs`` (axes labelled ``labels``) onto ``out``.

    Returns the register of the result: C-contiguous, at full sizes, axes in ``out``
    order; a new array when ``fresh``, else possibly one of the inputs.
    """
    ops = list(regs)
    lbs = [list(ls) for ls in labels]
    shapes = tuple(b.shapes[r] for r in ops)
    for step in _path(tuple(map(tuple, lbs)), tuple(out), shapes):
        # A step may name more than two operands (NumPy's greedy path does for
        # elementwise products): fold them pairwise, left to right.
        group = [(ops[i], lbs[i]) for i in step]
        for i in sorted(step, reverse=True):
            del ops[i], lbs[i]
        rest = set(out).union(*map(set, lbs))
        z, lz = group[0]
        for m, (y, ly) in enumerate(group[1:], start=2):
            keep = rest.union(*(set(lg) for _, lg in group[m:]))
            last = not lbs and m == len(group)
            z, lz = _plan_pair(b, z, lz, y, ly, keep, sizes, want=out if last else None)
        ops.append(z)
        lbs.append(lz)
    (x,), (lx,) = ops, lbs
    x, lx = _plan_reduce(b, x, lx, set(out))
    perm, full, reshape = _layout(b.shapes[x], lx, list(out), sizes)
    if reshape and (b.temporary(x) or not fresh):  # (never hand back an input)
        if b.shapes[x] == full:
            return x
        perm = None
    dst = b.new(full)
    b.steps.append(_layout_step(x, b.temporary(x), dst, perm, full, b.dtype))
    return dst


def _plan_operand_grad(b, i, labels, out, sizes):
    """Plan the gradient of operand ``i`` (register ``1 + i``; ``grad_out`` is 0)."""
    mine = labels[i]
    shape = b.shapes[1 + i]
    others = [ls for j, ls in enumerate(labels) if j != i]
    reach = set(out).union(*map(set, others))
    own = dict(zip(mine, shape, strict=True))
    unique = list(dict.fromkeys(mine))
    kept = [lab for lab in unique if lab in reach and own[lab] == sizes[lab]]
    regs = [0] + [1 + j for j in range(len(labels)) if j != i]
    r = _plan_contraction(b, regs, [out, *others], kept, sizes, fresh=False)
    expand = tuple(own[lab] if lab in kept else 1 for lab in unique)
    diag = None
    if len(unique) < len(mine):
        strides = [s * b.dtype.itemsize for s in _c_strides(shape)]
        diag = (
            tuple(own[lab] for lab in unique),
            tuple(
                sum(s for s, m in zip(strides, mine, strict=True) if m == lab)
                for lab in unique
            ),
        )
    copy = expand != shape or not b.temporary(r)
    if diag is None and not copy and b.shapes[r] == shape:
        return r  # the contraction's result is the gradient
    dst = b.new(shape)
    b.steps.append(
        _grad_step(r, b.temporary(r), dst, expand, shape, diag, copy, b.dtype)
    )
    return dst


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def _forward_plan(equation, shapes, dtype):
    labels, out, sizes = _parse(equation, shapes)
    b = _Builder(shapes, dtype)
    result = _plan_contraction(b, range(len(shapes)), labels, out, sizes, fresh=True)
    return b.plan([result], [sizes[lab] for lab in out])


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def _vjp_plan(equation, shapes, dtype):
    labels, out, sizes = _parse(equation, shapes)
    out_shape = [sizes[lab] for lab in out]
    b = _Builder([out_shape, *shapes], dtype)
    grads = [_plan_operand_grad(b, i, labels, out, sizes) for i in range(len(shapes))]
    return b.plan(grads, out_shape)


# -- public ----------------------------------------------------------------------------
def _checked(x, name, dtype):
    """``x`` as a C-contiguous native ``dtype`` array (a plan reads its operands'
    memory as flat C-ordered data); arrays already so pass as they are."""
    if type(x) is np.ndarray and x.dtype == dtype and x.flags.c_contiguous:
        return x
    return as_float_array(x, name, dtype)


def _operands(equation, operands):
    """The operands as C-contiguous native arrays of one float dtype, and that dtype."""
    if not isinstance(equation, str):
        raise TypeError(
            f"einsum equation must be a string, got {type(equation).__name__}"
        )
    if not operands:
        raise ValueError("einsum needs at least one operand")
    ops = list(operands)
    dtype, mixed = None, False
    for i, x in enumerate(ops):
        # (the common case checked inline: this runs on every call)
        if not (type(x) is np.ndarray and x.dtype in _FLOATS and x.flags.c_contiguous):
            ops[i] = x = as_float_array(x, f"einsum operand {i}")
        mixed = mixed or (dtype is not None and x.dtype != dtype)
        dtype = x.dtype
    if mixed:
        dtype = np.result_type(*ops)
        ops = [o.astype(dtype, copy=False) for o in ops]
    return ops, dtype


def einsum(equation, *operands):
    """Evaluate the Einstein summation ``equation`` as ``numpy.einsum`` does.

    Explicit (``'ij,jk->ik'``) and implicit (``'ij,jk'``) outputs, ``...``
    broadcasting, repeated labels (diagonals, traces), size-1 broadcasting, any number
    of operands; float32 and float64 (mixed inputs take the wider type). The result
    is always a new C-contiguous array.

    An explicit output without ``...`` sums the operands' ``...`` axes:
    ``einsum('i...->i', x)`` is ``x.reshape(len(x), -1).sum(1)``, and
    ``'ij...,i...->i'`` sums the broadcast ``...`` axes after the product. This
    follows ``torch.einsum`` and ``numpy.einsum(..., optimize=True)`` (and
    opt_einsum and JAX); NumPy's unoptimised path (``optimize=False``, its default)
    refuses such equations.

    Each (equation, shapes, dtype) is planned once (parsing, contraction order,
    every permutation, reshape and BLAS flag) and the plan cached (an LRU of
    :data:`PLAN_CACHE_SIZE`); concurrent calls are safe and share no buffers.
    """
    ops, dtype = _operands(equation, operands)
    plan = _forward_plan(equation, tuple([o.shape for o in ops]), dtype)
    regs = [*ops, *plan.blank]
    for step in plan.steps:
        step(regs)
    return regs[plan.outputs[0]]


def einsum_vjp(equation, operands, grad_out):
    """Gradients of ``sum(grad_out * einsum(equation, *operands))``, one per operand,
    each with its operand's shape (an array passed twice gets one gradient per use;
    their sum is its total gradient). New arrays, planned and cached as in
    :func:`einsum`."""
    ops, dtype = _operands(equation, operands)
    plan = _vjp_plan(equation, tuple([o.shape for o in ops]), dtype)
    g = _checked(grad_out, "einsum grad_out", dtype)
    if g.shape != plan.out_shape:
        raise ValueError(
            f"einsum grad_out has shape {g.shape}, expected {plan.out_shape}"
        )
    regs = [g, *ops, *plan.blank]
    for step in plan.steps:
        step(regs)
    return tuple([regs[r] for r in plan.outputs])
