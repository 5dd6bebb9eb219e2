"""Direct BLAS ``?gemm`` calls from compiled kernels, on row-major arrays.

A product whose result is one row or one column goes to ``?gemv`` instead, as
Numba's own ``np.dot`` does, and so does each row of a result of up to
:data:`GEMV_ROWS` rows: OpenBLAS's ``?gemm`` packs the whole other operand first.
For a few rows ``?gemv`` row by row is faster; beyond :data:`GEMV_ROWS` rows
``?gemm`` is as fast or faster, also for narrow layers (the figures, float32
``predict_proba`` through 784-256-128-10, are in ``bench/REPORT.md``).

``np.dot`` inside ``@njit`` reaches SciPy's BLAS too, but compiles shape checks
and error-message formatting into every kernel that uses it (a large part of
a cold first fit went to compiling ``np.dot``'s lowering and its messages), and it
has no ``alpha`` / ``beta``. These kernels call Numba's own C entry point to SciPy's
``?gemm`` and ``?gemv`` (``numba_xxgemm``, ``numba_xxgemv``: what ``np.dot``
itself calls, so the results are the same bits and the cache works as for any
kernel) with the scaling and transposes given, so ``C = alpha A B + beta C``
accumulates without an extra pass.

Callers check shapes, dtypes and C-contiguity: BLAS reads and writes exactly the
extents it is given.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._config import jit_inline
from ._numba_internals import blas_helpers

ensure_blas, get_blas_kind = blas_helpers()

_CHAR = ir.IntType(8)
_VOIDP = cgutils.voidptr_t


def _numba_xxgemm(context, builder):
    """The declaration, in the module being built, of Numba's C entry point to
    SciPy's ``?gemm``: ``(kind, transa, transb, m, n, k, alpha, a, lda, b, ldb,
    beta, c, ldc)``, scalars by pointer, returning BLAS's status."""
    intp = context.get_value_type(types.intp)
    params = [_CHAR, _CHAR, _CHAR, intp, intp, intp, _VOIDP, _VOIDP, intp]
    params += [_VOIDP, intp, _VOIDP, _VOIDP, intp]
    fnty = ir.FunctionType(ir.IntType(32), params)
    return cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")


def _numba_xxgemv(context, builder):
    """Numba's C entry point to SciPy's ``?gemv``: ``(kind, trans, m, n, alpha, a,
    lda, x, beta, y)``, unit strides, scalars by pointer, returning 0."""
    intp = context.get_value_type(types.intp)
    params = [_CHAR, _CHAR, intp, intp, _VOIDP, _VOIDP, intp, _VOIDP, _VOIDP, _VOIDP]
    fnty = ir.FunctionType(ir.IntType(32), params)
    return cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemv")


#: up to this many rows of ``out`` (``a`` not transposed), one ``?gemv`` per row
#: instead of ``?gemm`` (:func:`_call_product`)
GEMV_ROWS = 6


def _call_product(context, builder, kind, item, trans_a, trans_b, m, n, k, alpha, a,
                  b, beta, out, lda=None):  # fmt: skip
    r"""Emit row-major ``out (m, n) = alpha op(a) op(b) + beta out`` (every operand
    C-contiguous; ``trans_*`` LLVM booleans, sizes ``intp``, the rest ``void*``,
    ``alpha`` and ``beta`` pointing at scalars of the dtype of BLAS letter code
    ``kind``, an ``i8``, of ``item`` bytes) and return BLAS's status.

    One ``?gemv`` per row where ``out`` has one row, or up to :data:`GEMV_ROWS`
    with ``a`` not transposed (row ``i``: ``out_i^T = op(b)^T a_i^T``); else one
    ``?gemv`` where ``out`` is one column (``n = 1``: ``out = op(a) op(b)``, the
    vector ``op(b)`` contiguous whether transposed or not); else ``?gemm``. A
    row-major ``(r, c)`` matrix is BLAS's column-major ``(c, r)`` with leading
    dimension ``c``, so a row-major operand not transposed is BLAS's ``'t'`` case
    when it is the matrix of ``?gemv``'s ``op(A) x``.

    Row by row, each row of ``out`` is the same bits whatever the other rows (up to
    :data:`GEMV_ROWS`, one output column too): a row predicted alone equals it
    predicted in a small batch.

    ``lda``: the length of ``a``'s rows where ``a`` is part of a wider matrix (an
    ``intp``; None: ``a`` is contiguous).
    """
    intp = context.get_value_type(types.intp)
    one = ir.Constant(intp, 1)
    if lda is None:
        lda = builder.select(trans_a, m, k)  # a's row length
    ldb = builder.select(trans_b, k, n)  # b's row length
    status = cgutils.alloca_once_value(builder, ir.Constant(ir.IntType(32), 0))
    column = builder.icmp_signed("==", n, one)
    few = builder.icmp_signed("<=", m, ir.Constant(intp, GEMV_ROWS))
    by_rows = builder.or_(
        builder.icmp_signed("==", m, one), builder.and_(few, builder.not_(trans_a))
    )
    gemv = _numba_xxgemv(context, builder)
    with builder.if_else(by_rows) as (on_rows, other):
        with on_rows:  # out_i^T (n) = op(b)^T (n, k) a_i^T (k)
            # b row-major (k, n) = BLAS (n, k): 'n'; b^T: BLAS (k, n), 't'
            rows = builder.select(trans_b, k, n)
            cols = builder.select(trans_b, n, k)
            flag = _trans(builder, trans_b)
            with cgutils.for_range(builder, m) as loop:
                i = loop.index
                x = builder.gep(a, [builder.mul(i, builder.mul(lda, item))])
                y = builder.gep(out, [builder.mul(i, builder.mul(n, item))])
                call_args = (kind, flag, rows, cols, alpha, b, ldb, x, beta, y)
                done = builder.call(gemv, call_args)
                builder.store(builder.or_(builder.load(status), done), status)
        with other:
            with builder.if_else(column) as (on_column, matrix):
                with on_column:  # out (m) = op(a) (m, k) op(b) (k)
                    # a row-major (m, k) = BLAS (k, m): 't'; a^T: BLAS (m, k), 'n'
                    rows = builder.select(trans_a, m, k)
                    cols = builder.select(trans_a, k, m)
                    flag = _trans(builder, builder.not_(trans_a))
                    call_args = (kind, flag, rows, cols, alpha, a, lda, b, beta, out)
                    builder.store(builder.call(gemv, call_args), status)
                with matrix:
                    # row-major out = op(a) op(b): column-major out^T = op(b)^T op(a)^T
                    call_args = (kind, _trans(builder, trans_b),
                                 _trans(builder, trans_a), n, m, k, alpha, b, ldb, a,
                                 lda, beta, out, n)  # fmt: skip
                    gemm = _numba_xxgemm(context, builder)
                    builder.store(builder.call(gemm, call_args), status)
    return builder.load(status)


def _casts(context, builder, sig, args):
    """``(on, size)``: functions giving an intrinsic's argument ``i`` as an LLVM
    boolean and as an ``intp``."""
    tys = sig.args

    def on(i):
        return context.cast(builder, args[i], tys[i], types.boolean)

    def size(i):
        return context.cast(builder, args[i], tys[i], types.intp)

    return on, size


def _trans(builder, on):
    """BLAS's transpose flag: ``'t'`` where the boolean ``on`` holds, else ``'n'``."""
    t, n = ir.Constant(_CHAR, ord("t")), ir.Constant(_CHAR, ord("n"))
    return builder.select(on, t, n)


@intrinsic
def _product(typingctx, trans_a, trans_b, m, n, k, alpha, a, b, beta, out):
    """Row-major ``out (m, n) = alpha op(a) op(b) + beta out`` on arrays
    (:func:`_call_product`); the scalars are cast to ``out``'s dtype. Returns
    BLAS's status (0: fine)."""
    ensure_blas()
    dtype = out.dtype
    kind = ord(get_blas_kind(dtype))

    def codegen(context, builder, sig, args):
        tys = sig.args
        on, size = _casts(context, builder, sig, args)

        def scalar(i):  # BLAS takes alpha and beta by pointer
            value = context.cast(builder, args[i], tys[i], dtype)
            return builder.bitcast(cgutils.alloca_once_value(builder, value), _VOIDP)

        def data(i):
            array = context.make_array(tys[i])(context, builder, args[i])
            return builder.bitcast(array.data, _VOIDP)

        item = ir.Constant(context.get_value_type(types.intp), dtype.bitwidth // 8)
        return _call_product(
            context, builder, ir.Constant(_CHAR, kind), item, on(0), on(1), size(2),
            size(3), size(4), scalar(5), data(6), data(7), scalar(8), data(9),
        )  # fmt: skip

    sig = types.int32(trans_a, trans_b, m, n, k, alpha, a, b, beta, out)
    return sig, codegen


@jit_inline
def gemm(a, b, out, alpha, beta, trans_a, trans_b):
    r"""Row-major :math:`out = \alpha\, op(a)\, op(b) + \beta\, out`, ``op`` a
    transpose where ``trans_*`` is true; ``a``, ``b``, ``out`` C-contiguous 2-D of
    one dtype. ``beta = 0`` overwrites ``out`` (its old values, even NaN, are not
    read). Returns BLAS's status.

    A few rows or one column of ``out`` go to ``?gemv`` (:func:`_call_product`).
    """
    m = out.shape[0]
    n = out.shape[1]
    k = a.shape[0] if trans_a else a.shape[1]
    return _product(trans_a, trans_b, m, n, k, alpha, a, b, beta, out)


@intrinsic
def gemm_at(typingctx, kind, a, b, out, m, n, k, alpha, beta, trans_a, trans_b):
    r""":func:`gemm` on addresses: row-major ``out (m, n) = alpha op(a) op(b) +
    beta out``, ``op(a)`` of shape ``(m, k)``, ``op(b)`` of ``(k, n)``, every matrix
    C-contiguous of the dtype of BLAS letter ``kind`` (its code: ``ord('d')``
    float64, ``ord('s')`` float32); ``alpha`` and ``beta`` are addresses of scalars
    of that dtype. Returns BLAS's status. A few rows or one column of ``out`` go
    to ``?gemv`` (:func:`_call_product`).

    An intrinsic, not a jitted helper: the network kernels call it at several
    places, and an inlined helper is typed again at each (compile time of the
    epoch kernel).
    """
    ensure_blas()
    sig = types.int32(kind, a, b, out, m, n, k, alpha, beta, trans_a, trans_b)
    return sig, _codegen_at(with_lda=False)


def _codegen_at(with_lda):
    """The code of :func:`gemm_at` (arguments ``kind, a, b, out, m, n, k, alpha,
    beta, trans_a, trans_b``), or of :func:`gemm_lda_at` (``lda`` after ``a``)."""
    s = 1 if with_lda else 0  # where the arguments after ``a`` begin, past 2

    def codegen(context, builder, sig, args):
        on, size = _casts(context, builder, sig, args)

        def address(i):
            return builder.inttoptr(size(i), _VOIDP)

        kind_ = builder.trunc(size(0), _CHAR)
        double = builder.icmp_unsigned("==", kind_, ir.Constant(_CHAR, ord("d")))
        intp = context.get_value_type(types.intp)
        item = builder.select(double, ir.Constant(intp, 8), ir.Constant(intp, 4))
        return _call_product(
            context, builder, kind_, item, on(9 + s), on(10 + s), size(4 + s),
            size(5 + s), size(6 + s), address(7 + s), address(1), address(2 + s),
            address(8 + s), address(3 + s), lda=size(2) if with_lda else None,
        )  # fmt: skip

    return codegen


@intrinsic
def gemm_lda_at(typingctx, kind, a, lda, b, out, m, n, k, alpha, beta, trans_a,
                trans_b):  # fmt: skip
    r""":func:`gemm_at` where ``a`` is a block of a wider row-major matrix, whose
    rows are ``lda`` numbers long (``a`` its block's first element): the training
    epoch's threads each take a block of rows of a weight gradient,
    ``gW[g0:g1] = h[:, g0:g1]^T dy``."""
    ensure_blas()
    sig = types.int32(kind, a, lda, b, out, m, n, k, alpha, beta, trans_a, trans_b)
    return sig, _codegen_at(with_lda=True)
