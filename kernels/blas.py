"""Direct BLAS ``?gemm`` calls from compiled kernels, on row-major arrays.

``np.dot`` inside ``@njit`` reaches SciPy's BLAS too, but compiles shape checks
and error-message formatting into every kernel that uses it (measured: about 4 s of
a cold first fit went to compiling ``np.dot``'s lowering and its messages), and it
has no ``alpha`` / ``beta``. These kernels call Numba's own C entry point to SciPy's
``?gemm`` (``numba_xxgemm``, what ``np.dot`` itself calls, so the results are the
same bits and the cache works as for any kernel) with the scaling and transposes
given, so ``C = alpha A B + beta C`` accumulates without an extra pass.

Callers check shapes, dtypes and C-contiguity: BLAS reads and writes exactly the
extents it is given.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.linalg import ensure_blas, get_blas_kind

from ._config import jit_inline

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


def _trans(builder, on):
    """BLAS's transpose flag: ``'t'`` where the boolean ``on`` holds, else ``'n'``."""
    t, n = ir.Constant(_CHAR, ord("t")), ir.Constant(_CHAR, ord("n"))
    return builder.select(on, t, n)


@intrinsic
def _xxgemm(typingctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Column-major ``C (m, n) = alpha op(A) op(B) + beta C`` (Fortran BLAS
    conventions: ``op(A)`` is ``(m, k)``, leading dimensions in elements); the
    scalars are cast to ``c``'s dtype. Returns BLAS's status (0: fine)."""
    ensure_blas()
    dtype = c.dtype
    kind = ord(get_blas_kind(dtype))

    def codegen(context, builder, sig, args):
        fn = _numba_xxgemm(context, builder)
        tys = sig.args

        def flag(i):
            on = context.cast(builder, args[i], tys[i], types.boolean)
            return _trans(builder, on)

        def size(i):
            return context.cast(builder, args[i], tys[i], types.intp)

        def scalar(i):  # BLAS takes alpha and beta by pointer
            value = context.cast(builder, args[i], tys[i], dtype)
            return builder.bitcast(cgutils.alloca_once_value(builder, value), _VOIDP)

        def data(i):
            array = context.make_array(tys[i])(context, builder, args[i])
            return builder.bitcast(array.data, _VOIDP)

        call_args = (
            ir.Constant(_CHAR, kind), flag(0), flag(1), size(2), size(3), size(4),
            scalar(5), data(6), size(7), data(8), size(9),
            scalar(10), data(11), size(12),
        )  # fmt: skip
        return builder.call(fn, call_args)

    sig = types.int32(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    return sig, codegen


@jit_inline
def gemm(a, b, out, alpha, beta, trans_a, trans_b):
    r"""Row-major :math:`out = \alpha\, op(a)\, op(b) + \beta\, out`, ``op`` a
    transpose where ``trans_*`` is true; ``a``, ``b``, ``out`` C-contiguous 2-D of
    one dtype. ``beta = 0`` overwrites ``out`` (its old values, even NaN, are not
    read). Returns BLAS's status.

    Row-major ``out = op(a) op(b)`` is column-major ``out^T = op(b)^T op(a)^T``, so
    BLAS gets ``b`` first, each operand with its own row length as leading dimension.
    """
    m = out.shape[0]
    n = out.shape[1]
    k = a.shape[0] if trans_a else a.shape[1]
    return _xxgemm(
        trans_b, trans_a, n, m, k, alpha, b, b.shape[1], a, a.shape[1], beta, out, n
    )


@intrinsic
def gemm_at(typingctx, kind, a, b, out, m, n, k, alpha, beta, trans_a, trans_b):
    r""":func:`gemm` on addresses: row-major ``out (m, n) = alpha op(a) op(b) +
    beta out``, ``op(a)`` of shape ``(m, k)``, ``op(b)`` of ``(k, n)``, every matrix
    C-contiguous of the dtype of BLAS letter ``kind`` (its code: ``ord('d')``
    float64, ``ord('s')`` float32); ``alpha`` and ``beta`` are addresses of scalars
    of that dtype. Returns BLAS's status.

    An intrinsic, not a jitted helper: the network kernels call it at several
    places, and an inlined helper is typed again at each (measured: 0.1 s of the
    epoch kernel's compilation).
    """
    ensure_blas()

    def codegen(context, builder, sig, args):
        fn = _numba_xxgemm(context, builder)
        tys = sig.args

        def on(i):
            return context.cast(builder, args[i], tys[i], types.boolean)

        def flag(i):
            return _trans(builder, on(i))

        def size(i):
            return context.cast(builder, args[i], tys[i], types.intp)

        def address(i):
            return builder.inttoptr(size(i), _VOIDP)

        m_, n_, k_ = size(4), size(5), size(6)
        lda = builder.select(on(9), m_, k_)  # a's row length
        ldb = builder.select(on(10), k_, n_)  # b's row length
        # row-major out = op(a) op(b) is column-major out^T = op(b)^T op(a)^T
        call_args = (
            builder.trunc(size(0), _CHAR), flag(10), flag(9), n_, m_, k_,
            address(7), address(2), ldb, address(1), lda, address(8), address(3), n_,
        )  # fmt: skip
        return builder.call(fn, call_args)

    sig = types.int32(kind, a, b, out, m, n, k, alpha, beta, trans_a, trans_b)
    return sig, codegen
