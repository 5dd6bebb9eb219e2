"""Small whole-array helpers the Python layer needs without doing arithmetic itself."""

from ._config import jit


@jit
def all_finite(x):
    """True when no element of the 1-D array ``x`` is NaN or infinite.

    ``x - x`` is 0 for a finite value and NaN for NaN or ±inf, and an OR over
    ``d != d`` is an integer reduction, which LLVM vectorises (a branch per element,
    as ``math.isfinite`` needs, does not; vectorised it costs about one read of the
    array). Blocks of 64 Ki elements stop early
    after a bad value.
    """
    n = x.shape[0]
    for start in range(0, n, 65536):
        bad = False
        for i in range(start, min(start + 65536, n)):
            d = x[i] - x[i]
            bad |= d != d
        if bad:
            return False
    return True


@jit
def axpy(y, a, x):
    r""":math:`y \leftarrow y + a x` on 1-D arrays."""
    for i in range(y.shape[0]):
        y[i] += a * x[i]
