"""Calls between compiled kernels through C function pointers.

A whole-network kernel (``kernels/mlp.py``) is compiled once per dtype and takes
its activation, loss and optimizer as the addresses of small C-callable kernels
(Numba ``cfunc``, one per activation, loss or optimizer and dtype, compiled on
first use and cached on disk like every kernel). A new setting then compiles only
its small kernels, never the whole network again. Arrays cross as data pointers,
integers as ``int64``, floats as ``double``; the callee rebuilds its arrays with
``numba.carray``. The call costs a few nanoseconds, once per array, not per element.

:func:`view` turns an address back into an array inside a kernel: the network
kernels take the addresses of the layers' arrays as an ``int64`` table, so the
number of layers is data, not part of a tuple type (one compilation for any depth).
The caller keeps those arrays alive and checks their shapes, dtypes and contiguity.
"""

from llvmlite import ir
from numba import carray, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._config import jit_inline

_VOIDP = cgutils.voidptr_t


def _c_args(context, builder, tys, values):
    """Arrays as data pointers, integers as int64, floats as double."""
    out = []
    for ty, value in zip(tys, values, strict=True):
        if isinstance(ty, types.Array):
            data = context.make_array(ty)(context, builder, value).data
            out.append(builder.bitcast(data, _VOIDP))
        elif isinstance(ty, (types.Integer, types.Boolean)):
            out.append(context.cast(builder, value, ty, types.int64))
        elif isinstance(ty, types.Float):
            out.append(context.cast(builder, value, ty, types.float64))
        else:  # pragma: no cover - a programming error, caught at compile time
            raise TypeError(f"cannot pass {ty} to a C kernel")
    return out


def _c_type(ty):
    if isinstance(ty, types.Array):
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


@intrinsic
def _voidptr(typingctx, address):
    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], _VOIDP)

    return types.voidptr(address), codegen


@jit_inline
def view(address, shape, like):
    """The array of ``shape`` and ``like``'s dtype at ``address`` (no copy, no
    ownership: the caller keeps the memory alive)."""
    return carray(_voidptr(address), shape, like.dtype)
