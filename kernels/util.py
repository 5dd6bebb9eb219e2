"""Small whole-array helpers the Python layer needs without doing arithmetic itself."""

import math

from ._config import jit


@jit
def all_finite(x):
    """True when no element of the 1-D array ``x`` is NaN or infinite (one pass,
    stopping at the first bad value)."""
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            return False
    return True


@jit
def axpy(y, a, x):
    r""":math:`y \leftarrow y + a x` on 1-D arrays."""
    for i in range(y.shape[0]):
        y[i] += a * x[i]
