"""The module protocol and the buffer cache every module uses."""

import numpy as np


class Module:
    """A differentiable function with its own parameters and workspaces.

    ``forward(x, train=True)`` returns ``y`` and keeps what ``backward`` needs;
    ``backward(dy)`` returns ``dx`` and overwrites ``grads`` (it does not accumulate).
    ``params`` and ``grads`` map the same names to arrays of the same shapes.

    Returned arrays are the module's own buffers, reused by the next call with the
    same shapes, so a training step allocates nothing: copy an output you want to
    keep past the next ``forward``.
    """

    def __init__(self):
        self.params = {}
        self.grads = {}
        self._buffers = {}

    def forward(self, x, train=True):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _buffer(self, key, shape, dtype):
        """A reusable array for ``key``, reallocated only when shape or dtype change."""
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.empty(shape, dtype=dtype)
            self._buffers[key] = buf
        return buf

    @staticmethod
    def _unaliased(x, buf):
        """``x``, or a copy if it overlaps ``buf`` (a module fed its own buffer)."""
        return x.copy() if np.may_share_memory(x, buf) else x

    def _require_forward(self, *saved):
        if any(s is None for s in saved):
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")

    def __repr__(self):
        return f"{type(self).__name__}()"
