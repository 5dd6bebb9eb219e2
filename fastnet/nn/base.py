"""The module protocol and the buffer cache every module uses."""

import numpy as np

from .._runtime.checks import as_float_array, check_shape

#: Buffers kept per key and module, one per distinct shape (see Module._buffer).
MAX_SHAPES = 4


class Module:
    """A differentiable function with its own parameters and workspaces.

    ``forward(x, train=True)`` returns ``y`` and keeps what ``backward`` needs;
    ``backward(dy)`` returns ``dx`` and overwrites ``grads`` (it does not accumulate).
    ``params`` and ``grads`` map the same names to arrays of the same shapes.

    Returned arrays are the module's own buffers, reused by the next call with the
    same shapes, so a training step allocates nothing: copy an output you want to
    keep past the next ``forward``. ``forward(x, train=False)`` returns a new array
    instead.

    Threads: ``forward(x, train=False)`` may run in several threads at once (each
    call writes only into its own new output; parameters are only read). Training
    calls — ``forward(x, train=True)`` and ``backward`` — keep per-call state (the
    saved input, the shared buffers): one thread at a time per module.

    Pickles (and so Dask, joblib and multiprocessing) carry the parameters, their
    gradients and the settings: no buffers, no tensors saved for ``backward`` (the
    attributes named in ``_transient``) and no compiled kernels, which the receiving
    process loads from its own cache.
    """

    #: attributes holding what the last ``forward`` saved for ``backward``
    _transient = ()

    def __init__(self):
        self.params = {}
        self.grads = {}
        self._buffers = {}

    def forward(self, x, train=True):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    # -- second order (Pearlmutter's R-operator; see fastnet.nn.second_order) ----------
    def tangent_forward(self, *tx, tparams):
        """The tangent (JVP) of the last ``forward(x, train=True)``: the change of
        ``y`` along the input tangent(s) ``tx`` and the parameter tangents
        ``tparams`` ({param name: array}, the same names as ``params``).

        ``None`` stands for a zero tangent (a data input), in and out. Keeps what
        :meth:`tangent_backward` needs.
        """
        raise TypeError(
            f"{type(self).__name__} has no tangent_forward / tangent_backward: "
            "Hessian-vector products need them in every module"
        )

    def tangent_backward(self, dy, ddy, hgrads, need_dx=True):
        """``(dx, ddx)``: what ``backward(dy)`` returns and its tangent, given the
        tangent ``ddy`` of ``dy``; writes the tangent of each ``grads[name]`` into
        the array ``hgrads[name]``. ``grads`` themselves are not touched.

        ``dy=None`` is a zero ``dy``: only the Gauss-Newton terms remain, and ``dx``
        is ``None``. With ``need_dx`` false neither ``dx`` nor ``ddx`` is computed
        (the first layer's input is data). Call after :meth:`tangent_forward`.
        """
        raise TypeError(
            f"{type(self).__name__} has no tangent_forward / tangent_backward: "
            "Hessian-vector products need them in every module"
        )

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_buffers"] = {}
        for name in self._transient:
            state[name] = None
        return state

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _buffer(self, key, shape, dtype, fresh=False):
        """A reusable array for ``key`` of this shape and dtype; a new one when
        ``fresh`` (inference, which must not share buffers between threads).

        Up to :data:`MAX_SHAPES` shapes per key are kept, so alternating batch sizes
        (full batches, the last partial one, a validation set) reuse their buffers
        instead of reallocating; the oldest shape is dropped beyond that.
        """
        if fresh:
            return np.empty(shape, dtype=dtype)
        k = (key, shape, dtype)
        buf = self._buffers.get(k)
        if buf is None:
            same = [old for old in self._buffers if old[0] == key]
            if len(same) >= MAX_SHAPES:
                del self._buffers[same[0]]
            buf = self._buffers[k] = np.empty(shape, dtype=dtype)
        return buf

    @staticmethod
    def _unaliased(x, buf):
        """``x``, or a copy if it overlaps ``buf`` (a module fed its own buffer)."""
        return x.copy() if np.may_share_memory(x, buf) else x

    def _check_tangent(self, t, shape, dtype, name):
        """``t`` (a tangent, or None for zero) as a C-contiguous array of ``shape``
        and ``dtype``: checked before any kernel reads it."""
        if t is None:
            return None
        t = as_float_array(t, f"{type(self).__name__} {name}", dtype)
        check_shape(t, shape, f"{type(self).__name__} {name}")
        return t

    def _check_tangent_grads(self, dy, ddy, shape, dtype):
        """``(dy, ddy)`` of ``tangent_backward`` checked as :meth:`_check_tangent`
        does; ``dy`` may be None (the Gauss-Newton product), ``ddy`` may not."""
        name = "output gradient"
        ddy = self._check_tangent(ddy, shape, dtype, f"{name} tangent")
        if ddy is None:
            raise ValueError(f"{type(self).__name__} {name} tangent is required")
        return self._check_tangent(dy, shape, dtype, name), ddy

    def _require_forward(self, *saved):
        if any(s is None for s in saved):
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")

    def __repr__(self):
        return f"{type(self).__name__}()"
