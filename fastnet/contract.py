"""``einsum`` for any equation NumPy accepts, and its vector-Jacobian product.

An equation is parsed once per (equation, shapes, dtype) into integer labels (letters
by code point; the axes under ``...`` get negative labels, right-aligned) and a
pairwise contraction order from ``numpy.einsum_path(optimize="greedy")``. It then
runs as kernels: a strided loop for diagonals and sums within one operand, and a
permute → reshape → batched GEMM (BLAS) for each pair of operands.

The gradient of operand ``i`` is itself an einsum: ``grad_out`` contracted with the
other operands onto the labels of ``i`` that reach the output or another operand;
then broadcast along labels only ``i`` has (they were summed away), summed over axes
where ``i`` had size 1 and was broadcast, and scattered onto the diagonal (zeros
elsewhere) where ``i`` repeats a label.
"""

import functools
import math
import string

import numpy as np

from . import kernels
from ._checks import as_float_array

_LETTERS = string.ascii_letters


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


@functools.lru_cache(maxsize=512)
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


@functools.lru_cache(maxsize=512)
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


# -- execution -------------------------------------------------------------------------
def _reduce_to(x, labels, keep):
    """Sum ``x`` (axes labelled ``labels``) onto the labels in ``keep`` (in order of
    first appearance), taking diagonals of repeated labels: one strided loop."""
    unique = list(dict.fromkeys(labels))
    kept = [lab for lab in unique if lab in keep]
    if kept == list(labels):
        return x, kept
    x = np.asarray(x, order="C")
    strides = [s // x.itemsize for s in x.strides]

    def stride(lab):
        return sum(s for s, m in zip(strides, labels, strict=True) if m == lab)

    def size(lab):
        return x.shape[labels.index(lab)]

    dropped = [lab for lab in unique if lab not in keep]
    out_shape = np.array([size(lab) for lab in kept], np.int64)
    out = np.empty(math.prod(out_shape.tolist()), x.dtype)
    kernel = kernels.pick(kernels.strided_reduce, x.size)
    kernel(
        x.reshape(-1),
        0,
        out_shape,
        np.array([stride(lab) for lab in kept], np.int64),
        np.array([size(lab) for lab in dropped], np.int64),
        np.array([stride(lab) for lab in dropped], np.int64),
        out,
    )
    return out.reshape(tuple(out_shape)), kept


def _arrange(x, labels, order, sizes):
    """``x`` broadcast to ``sizes`` and permuted to ``order``, C-contiguous."""
    if list(labels) != list(order):
        x = np.transpose(x, [labels.index(lab) for lab in order])
    shape = tuple(sizes[lab] for lab in order)
    if x.shape != shape:  # size-1 axes broadcast against larger ones
        x = np.broadcast_to(x, shape)
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def _pair(x, lx, y, ly, keep, sizes, want=None):
    """Contract two operands, keeping the labels in ``keep``: one batched GEMM.

    ``want``: the label order the caller needs next; when swapping the operands
    yields it directly, they are swapped, which saves a transposing copy.
    """
    x, lx = _reduce_to(x, lx, keep | set(ly))
    y, ly = _reduce_to(y, ly, keep | set(lx))
    if want is not None:
        swapped = [lab for lab in ly if lab in lx and lab in keep]
        swapped += [lab for lab in ly if lab not in lx] + [
            lab for lab in lx if lab not in ly
        ]
        if swapped == list(want):
            return _pair(y, ly, x, lx, keep, sizes)
    batch = [lab for lab in lx if lab in ly and lab in keep]
    contr = [lab for lab in lx if lab in ly and lab not in keep]
    fx = [lab for lab in lx if lab not in ly]
    fy = [lab for lab in ly if lab not in lx]
    nb, m, k, n = (math.prod(sizes[lab] for lab in g) for g in (batch, fx, contr, fy))
    # Use an operand as it lies when its axes are already (batch, free, contracted)
    # or (batch, contracted, free): BLAS takes the transpose as a flag.
    ta = lx == batch + contr + fx
    a = _arrange(x, lx, batch + (contr + fx if ta else fx + contr), sizes)
    tb = ly == batch + fy + contr
    b = _arrange(y, ly, batch + (fy + contr if tb else contr + fy), sizes)
    out = np.empty((nb, m, n), x.dtype)
    if out.size and k:
        a = a.reshape((nb, k, m) if ta else (nb, m, k))
        b = b.reshape((nb, n, k) if tb else (nb, k, n))
        kernels.batched_matmul(a, b, out, ta, tb)
    else:
        out[...] = 0.0
    labels = batch + fx + fy
    return out.reshape([sizes[lab] for lab in labels]), labels


def _contract(operands, labels, out, sizes):
    """The einsum of ``operands`` (axes labelled by ``labels``) onto ``out``."""
    ops = list(operands)
    lbs = [list(ls) for ls in labels]
    path = _path(tuple(map(tuple, lbs)), tuple(out), tuple(o.shape for o in ops))
    for step in path:
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
            z, lz = _pair(z, lz, y, ly, keep, sizes, want=out if last else None)
        ops.append(z)
        lbs.append(lz)
    (x,), (lx,) = ops, lbs
    x, lx = _reduce_to(x, lx, set(out))
    return _arrange(x, lx, list(out), sizes)


def _operands(operands):
    if not operands:
        raise ValueError("einsum needs at least one operand")
    arrays = [as_float_array(x, f"einsum operand {i}") for i, x in enumerate(operands)]
    dtype = np.result_type(*arrays)
    return [a.astype(dtype, copy=False) for a in arrays]


def einsum(equation, *operands):
    """Evaluate the Einstein summation ``equation`` as ``numpy.einsum`` does.

    Explicit (``'ij,jk->ik'``) and implicit (``'ij,jk'``) outputs, ``...``
    broadcasting, repeated labels (diagonals, traces), size-1 broadcasting, any number
    of operands; float32 and float64 (mixed inputs take the wider type).

    An explicit output without ``...`` sums the operands' ``...`` axes:
    ``einsum('i...->i', x)`` is ``x.reshape(len(x), -1).sum(1)``, and
    ``'ij...,i...->i'`` sums the broadcast ``...`` axes after the product. This
    follows ``torch.einsum`` and ``numpy.einsum(..., optimize=True)`` (and
    opt_einsum and JAX); NumPy's unoptimised path (``optimize=False``, its default)
    refuses such equations.
    """
    if not isinstance(equation, str):
        raise TypeError(
            f"einsum equation must be a string, got {type(equation).__name__}"
        )
    ops = _operands(operands)
    labels, out, sizes = _parse(equation, tuple(o.shape for o in ops))
    return _contract(ops, labels, out, sizes)


def einsum_vjp(equation, operands, grad_out):
    """Gradients of ``sum(grad_out * einsum(equation, *operands))``, one per operand,
    each with its operand's shape (an array passed twice gets one gradient per use;
    their sum is its total gradient)."""
    if not isinstance(equation, str):
        raise TypeError(
            f"einsum equation must be a string, got {type(equation).__name__}"
        )
    ops = _operands(operands)
    labels, out, sizes = _parse(equation, tuple(o.shape for o in ops))
    out_shape = tuple(sizes[lab] for lab in out)
    g = as_float_array(grad_out, "einsum grad_out", ops[0].dtype)
    if g.shape != out_shape:
        raise ValueError(f"einsum grad_out has shape {g.shape}, expected {out_shape}")
    return tuple(_operand_grad(i, ops, labels, out, sizes, g) for i in range(len(ops)))


def _operand_grad(i, ops, labels, out, sizes, g):
    mine = labels[i]
    others = [ls for j, ls in enumerate(labels) if j != i]
    reach = set(out).union(*map(set, others))
    unique = list(dict.fromkeys(mine))
    reached = [lab for lab in unique if lab in reach]
    grad = _contract(
        [g] + [o for j, o in enumerate(ops) if j != i], [out, *others], reached, sizes
    )
    # Labels only this operand has were summed away: their gradient is a broadcast.
    own = dict(zip(mine, ops[i].shape, strict=True))
    grad = grad.reshape([sizes[lab] if lab in reach else 1 for lab in unique])
    grad = np.broadcast_to(
        grad, [sizes[lab] if lab in reach else own[lab] for lab in unique]
    )
    # Axes where this operand had size 1 and was broadcast: sum them back to 1.
    shrink = tuple(
        a for a, lab in enumerate(unique) if own[lab] == 1 and grad.shape[a] != 1
    )
    if shrink:
        grad = grad.sum(axis=shrink, keepdims=True)
    if len(unique) == len(mine):
        return np.asarray(grad, order="C")
    # Repeated labels: the gradient lives on the diagonal, zeros elsewhere.
    full = np.zeros(ops[i].shape, ops[i].dtype)
    diag = np.lib.stride_tricks.as_strided(
        full,
        shape=[own[lab] for lab in unique],
        strides=[
            sum(s for s, m in zip(full.strides, mine, strict=True) if m == lab)
            for lab in unique
        ],
    )
    diag[...] = grad
    return full
