"""Input checks that run before every kernel call.

Numba kernels do not bounds-check, so a wrong shape or dtype reaching one is memory
corruption, not an exception: everything a kernel reads is checked here first.
"""

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_dtype(dtype):
    """``dtype`` as a NumPy dtype, which must be float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def check_positive_int(value, name):
    """``value`` as an int, which must be an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def as_float_array(x, name, dtype=None):
    """``x`` as a C-contiguous, native-byte-order float array.

    Float32 and float64 input keeps its dtype unless ``dtype`` is given; booleans,
    integers and other float widths become ``dtype`` or float64. Complex, string and
    object input raises ``TypeError``. Non-contiguous, read-only and big-endian
    arrays are accepted (copied where needed).
    """
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind not in "biuf":
        if kind == "c":
            raise TypeError(f"{name} must be real; complex values are not supported")
        raise TypeError(f"{name} must hold numbers, got an array of dtype {arr.dtype}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in FLOAT_DTYPES else np.dtype(np.float64)
    # newbyteorder("=") makes a big-endian dtype native; astype then converts bytes.
    # (np.ascontiguousarray would turn a 0-d array into 1-d.)
    return np.asarray(arr, dtype=np.dtype(dtype).newbyteorder("="), order="C")


def check_shape(arr, shape, name):
    """Raise ``ValueError`` unless ``arr.shape == shape``."""
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {arr.shape}, expected {tuple(shape)}")


def check_ndim(arr, ndims, name):
    """Raise ``ValueError`` unless ``arr.ndim`` is one of ``ndims``."""
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got {arr.ndim}-D shape {arr.shape}")


def make_generator(random_state):
    """A ``numpy.random.Generator`` from None, an int, a Generator or a RandomState."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    if random_state is not None and (
        isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral)
    ):
        raise TypeError(
            f"random_state must be None, an int or a generator, got {random_state!r}"
        )
    return np.random.default_rng(random_state)
