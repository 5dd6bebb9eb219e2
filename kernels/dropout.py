"""Inverted dropout from uniform draws ``u`` made by the caller's seeded generator."""

from numba import prange

from ._config import jit_twins


def _dropout_forward(x, u, p, out):
    r""":math:`y = x\,[u \ge p] / (1 - p)`: each element kept with probability
    :math:`1 - p` and scaled so that :math:`E[y] = x`."""
    scale = 1.0 / (1.0 - p)
    for i in prange(x.shape[0]):
        out[i] = x[i] * scale if u[i] >= p else 0.0


def _dropout_backward(dy, u, p, out):
    r""":math:`dx = dy\,[u \ge p] / (1 - p)`. Saved: the draws ``u``."""
    scale = 1.0 / (1.0 - p)
    for i in prange(dy.shape[0]):
        out[i] = dy[i] * scale if u[i] >= p else 0.0


#: ``dropout_forward(x, u, p, out)`` on 1-D arrays (serial, parallel).
dropout_forward = jit_twins(_dropout_forward)
#: ``dropout_backward(dy, u, p, out)`` on 1-D arrays (serial, parallel).
dropout_backward = jit_twins(_dropout_backward)
