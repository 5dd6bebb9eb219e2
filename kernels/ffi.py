"""Calls between compiled kernels through C function pointers.

A whole-network kernel (``kernels/mlp.py``) is compiled once per dtype and takes
its activation, loss and optimizer as the addresses of small C-callable kernels
(Numba ``cfunc``, one per activation, loss or optimizer and dtype, compiled on
first use and cached on disk like every kernel). A new setting then compiles only
its small kernels, never the whole network again. Arrays cross as data pointers,
integers as ``int64``, floats as ``double``; the callee rebuilds its arrays with
``numba.carray``. The call costs a few nanoseconds, once per array, not per element.

:func:`ptr` passes an ``int64`` address as a pointer argument: the network kernels
handle every array as an address (the layers' arrays come as an ``int64`` table),
so the number of layers is data, not part of a tuple type, and the dtype is data
too (its BLAS kind and item size): one compilation for any depth and either dtype.
:func:`copy_bytes` moves rows between addresses; :func:`view` turns an address back
into an array inside a kernel. The caller keeps the arrays alive and checks their
shapes, dtypes and contiguity.
"""

import platform

from llvmlite import ir
from numba import carray, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._config import jit_inline

_VOIDP = cgutils.voidptr_t


def _c_args(context, builder, tys, values):
    """Arrays as data pointers, integers as int64, floats as double, raw
    pointers (:func:`ptr`) as they are."""
    out = []
    for ty, value in zip(tys, values, strict=True):
        if isinstance(ty, types.Array):
            data = context.make_array(ty)(context, builder, value).data
            out.append(builder.bitcast(data, _VOIDP))
        elif isinstance(ty, (types.Integer, types.Boolean)):
            out.append(context.cast(builder, value, ty, types.int64))
        elif isinstance(ty, types.Float):
            out.append(context.cast(builder, value, ty, types.float64))
        elif isinstance(ty, types.RawPointer):
            out.append(builder.bitcast(value, _VOIDP))
        else:  # pragma: no cover - a programming error, caught at compile time
            raise TypeError(f"cannot pass {ty} to a C kernel")
    return out


def _c_type(ty):
    if isinstance(ty, (types.Array, types.RawPointer)):
        return _VOIDP
    if isinstance(ty, (types.Integer, types.Boolean)):
        return ir.IntType(64)
    return ir.DoubleType()


def _ccall(restype, ll_restype):
    @intrinsic
    def call(typingctx, address, args):
        """Call the C function at ``address`` with the tuple ``args``."""
        arg_types = tuple(args)

        def codegen(context, builder, sig, llargs):
            fnty = ir.FunctionType(ll_restype, [_c_type(t) for t in arg_types])
            fn = builder.inttoptr(llargs[0], fnty.as_pointer())
            values = cgutils.unpack_tuple(builder, llargs[1], len(arg_types))
            result = builder.call(fn, _c_args(context, builder, arg_types, values))
            return context.get_dummy_value() if restype is types.void else result

        return restype(address, args), codegen

    return call


#: ``call_void(address, (arg, ...))``: a C kernel returning nothing
call_void = _ccall(types.void, ir.VoidType())
#: ``call_f64(address, (arg, ...))``: a C kernel returning a double
call_f64 = _ccall(types.float64, ir.DoubleType())
#: ``call_i64(address, (arg, ...))``: a C kernel returning an int64
call_i64 = _ccall(types.int64, ir.IntType(64))


@intrinsic
def ptr(typingctx, address):
    """The ``int64`` ``address`` as a ``void *`` (what a C kernel's pointer
    argument takes, whatever its dtype)."""

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], _VOIDP)

    return types.voidptr(address), codegen


@intrinsic
def copy_bytes(typingctx, dst, src, nbytes):
    """``memcpy(dst, src, nbytes)`` between the ``int64`` addresses ``dst`` and
    ``src`` (regions that do not overlap)."""

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        to, frm, n = (
            context.cast(builder, a, t, types.int64)
            for a, t in zip(args, sig.args, strict=True)
        )
        cgutils.raw_memcpy(
            builder,
            builder.inttoptr(to, _VOIDP),
            builder.inttoptr(frm, _VOIDP),
            n,
            ir.Constant(i64, 1),
        )
        return context.get_dummy_value()

    return types.void(dst, src, nbytes), codegen


@jit_inline
def view(address, shape, like):
    """The array of ``shape`` and ``like``'s dtype at ``address`` (no copy, no
    ownership: the caller keeps the memory alive)."""
    return carray(ptr(address), shape, like.dtype)


# Synchronisation between the threads of one kernel: an epoch split over several
# threads (``kernels/mlp.py``) meets at a barrier several times a step, too often
# for a handoff through Python. Each thread runs the same C function; they share an
# int64 array (:data:`.abi.SYNC`) and meet through atomic operations on it.


def _i64_at(builder, address):
    return builder.inttoptr(address, ir.IntType(64).as_pointer())


@intrinsic
def atomic_add(typingctx, address, value):
    """Add the int64 ``value`` to the int64 at ``address`` atomically (sequentially
    consistent); return what was there before."""

    def codegen(context, builder, sig, args):
        where = _i64_at(builder, args[0])
        return builder.atomic_rmw("add", where, args[1], "seq_cst")

    return types.int64(types.int64, types.int64), codegen


@intrinsic
def atomic_load(typingctx, address):
    """The int64 at ``address``, read atomically (sequentially consistent): each
    read in a wait loop reads memory again."""

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_i64_at(builder, args[0]), "seq_cst", 8)

    return types.int64(types.int64), codegen


@intrinsic
def atomic_store(typingctx, address, value):
    """Write the int64 ``value`` to ``address`` atomically (sequentially
    consistent)."""

    def codegen(context, builder, sig, args):
        builder.store_atomic(args[1], _i64_at(builder, args[0]), "seq_cst", 8)
        return context.get_dummy_value()

    return types.void(types.int64, types.int64), codegen


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


@intrinsic
def spin_pause(typingctx):
    """A hint to the processor that this thread waits in a loop (x86's ``pause``:
    the other hyperthread of the core runs meanwhile); nothing elsewhere."""

    def codegen(context, builder, sig, args):
        if _X86:
            fnty = ir.FunctionType(ir.VoidType(), [])
            fn = cgutils.get_or_insert_function(
                builder.module, fnty, "llvm.x86.sse2.pause"
            )
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen
