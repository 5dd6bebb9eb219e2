"""fastnet estimators on Dask: training over the blocks of a ``dask.array`` and
prediction block by block. Needs the ``dist`` extra (``pip install 'fastnet[dist]'``).

Hyperparameter searches need nothing from this module: fastnet's estimators are
scikit-learn estimators, so ``GridSearchCV``, ``RandomizedSearchCV`` and
``cross_validate`` run on a cluster under ``joblib.parallel_backend("dask")``, with
the same results as a serial run. In a worker's task an estimator with
``n_threads=None`` fits with one Numba/BLAS thread (a worker runs one task per
thread); give ``n_threads`` to choose otherwise.

:func:`fit_blocks` rather than dask-ml's ``Incremental``: ``Incremental`` passes the
model along a chain of tasks, and the scheduler computes the data blocks of that
chain ahead of it — on two workers it held 17 of 40 blocks in memory at once
(measured with dask-ml 2025.1.0), which is what data larger than memory cannot
afford. :func:`fit_blocks` asks for one block at a time.
"""

import collections
import numbers

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._runtime.checks import check_positive_int

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - the dist extra is not installed
    raise ImportError(
        "fastnet.dask needs Dask: pip install 'fastnet[dist]' (or 'dask[distributed]')"
    ) from exc

__all__ = ["fit_blocks", "fit_distributed", "predict_blocks"]


def fit_blocks(
    estimator,
    X,
    y,
    *,
    classes=None,
    sample_weight=None,
    epochs=1,
    shuffle_blocks=True,
    random_state=None,
    prefetch=1,
    client=None,
):
    """Train ``estimator`` with ``partial_fit`` over the row blocks of ``X``, ``y``.

    Each block is computed where ``X`` lives — on the cluster of ``client`` (by
    default the current ``dask.distributed`` client, if any; else Dask's local
    scheduler) — and brought to this process for one ``partial_fit`` call, while the
    next ``prefetch`` blocks are computed on the cluster. At most ``1 + prefetch``
    blocks exist at a time, so ``X`` can be far larger than memory. The model stays
    in this process.

    Parameters
    ----------
    estimator : an estimator with ``partial_fit`` (``fastnet.MLPClassifier``,
        ``fastnet.MLPRegressor`` with ``solver='sgd'`` or ``'adam'``, or any
        scikit-learn incremental estimator).
    X : dask.array.Array, 2-D, rows chunked (chunks across columns are joined).
    y : dask.array.Array or array-like of ``X.shape[0]`` rows; rechunked to ``X``'s
        row blocks where they differ.
    classes : all class labels, needed on a classifier's first ``partial_fit`` (a
        block need not contain every class).
    sample_weight : dask.array.Array or array-like of ``X.shape[0]``, or None.
    epochs : passes over all blocks; each ``partial_fit`` is one pass over a block.
    shuffle_blocks : visit the blocks in a new random order every epoch (rows within
        a block are shuffled by the estimator's own ``shuffle``).
    random_state : seed or ``numpy.random.RandomState`` for the block orders.
    prefetch : blocks computed ahead (>= 0). One hides the cluster's latency when a
        block takes longer to fit than to compute; more keep more workers busy when
        blocks are expensive to compute (read, decoded, joined).
    client : a ``dask.distributed.Client``; None takes the default client if there
        is one.

    Returns the fitted ``estimator``.
    """
    _check_incremental(estimator)
    epochs = check_positive_int(epochs, "epochs")
    if isinstance(prefetch, bool) or not isinstance(prefetch, numbers.Integral):
        raise TypeError(f"prefetch must be an integer >= 0, got {prefetch!r}")
    if prefetch < 0:
        raise ValueError(f"prefetch must be an integer >= 0, got {prefetch}")
    X = _check_X(X, "X")
    n = X.shape[0]
    rows = X.chunks[0]
    y = _rows_like(y, "y", n, rows)
    w = (
        None
        if sample_weight is None
        else _rows_like(sample_weight, "sample_weight", n, rows)
    )
    if w is not None and w.ndim != 1:
        raise ValueError(f"sample_weight must be 1-D, got shape {w.shape}")
    kwargs = {}
    if classes is not None:
        kwargs["classes"] = np.asarray(classes)
    elif is_classifier(estimator) and not hasattr(estimator, "classes_"):
        raise ValueError(
            "classes= is needed for a classifier's first partial_fit: list every "
            "class label (a block need not contain them all)"
        )
    client = _client(client)
    # one Delayed per block, keyed by the arrays' own block keys: unique per block.
    # (Computing ``X.blocks[i]`` and ``y.blocks[i]`` on distributed 2026.8 gave two
    # blocks of a derived ``y`` the same optimised key, and a KeyError.)
    parts = [
        a.to_delayed(optimize_graph=False).ravel() for a in (X, y, w) if a is not None
    ]
    rng = check_random_state(random_state)
    blocks = [i for i, size in enumerate(rows) if size > 0]
    for _ in range(epochs):
        order = list(rng.permutation(blocks)) if shuffle_blocks else list(blocks)
        _one_pass(estimator, client, parts, order, prefetch, kwargs)
    return estimator


def _check_incremental(estimator):
    """A ``TypeError`` / ``ValueError`` where ``estimator`` cannot train block by
    block."""
    if not hasattr(estimator, "partial_fit"):
        raise TypeError(
            f"{type(estimator).__name__} has no partial_fit (for fastnet's MLPs: use "
            "solver='sgd' or 'adam')"
        )
    if getattr(estimator, "solver", None) == "lbfgs":
        # scikit-learn's MLPRegressor offers partial_fit with L-BFGS, but each call
        # is a whole L-BFGS fit on one block, not a step over the data
        raise ValueError(
            f"{type(estimator).__name__}(solver='lbfgs').partial_fit runs a whole "
            "L-BFGS fit on each block: use solver='sgd' or 'adam'"
        )


def _one_pass(estimator, client, parts, order, prefetch, kwargs):
    """One ``partial_fit`` per block of ``order``, the next ``prefetch`` blocks
    computing on the cluster meanwhile."""
    pending = collections.deque()
    for k in range(len(order)):
        # this block and the next `prefetch` ones are asked for; the ones after
        # it compute on the cluster while this one is fitted
        while len(pending) <= prefetch and k + len(pending) < len(order):
            pending.append(_submit(client, parts, order[k + len(pending)]))
        xb, yb, wb = _gather(client, pending.popleft())
        if wb is not None:
            estimator.partial_fit(xb, yb, sample_weight=wb, **kwargs)
        else:
            estimator.partial_fit(xb, yb, **kwargs)
        del xb, yb, wb


def predict_blocks(estimator, X, method="predict"):
    """``estimator.<method>`` over the row blocks of ``X``, as a lazy dask array.

    The fitted estimator is one shared piece of the task graph, pickled to the
    workers once (without compiled kernels: they load from each worker's cache).
    ``method``: ``'predict'``, ``'predict_proba'``, ``'predict_log_proba'`` or any
    other method taking ``X`` and returning one row per row.
    """
    if not isinstance(method, str) or not callable(getattr(estimator, method, None)):
        raise ValueError(f"{type(estimator).__name__} has no method {method!r}")
    check_is_fitted(estimator)
    X = _check_X(X, "X")
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} was fitted "
            f"with {n_features}"
        )
    # the output's dtype and columns, from one row computed here
    sample = getattr(estimator, method)(np.zeros((1, X.shape[1]), X.dtype))
    sample = np.asarray(sample)
    model = dask.delayed(estimator, pure=True)
    if sample.ndim == 1:
        return X.map_blocks(
            _apply,
            model,
            method,
            dtype=sample.dtype,
            chunks=(X.chunks[0],),
            drop_axis=1,
        )
    return X.map_blocks(
        _apply,
        model,
        method,
        dtype=sample.dtype,
        chunks=(X.chunks[0], sample.shape[1:]),
    )


def _apply(block, estimator, method):
    if block.shape[0] == 0:
        shape = getattr(estimator, method)(np.zeros((1, block.shape[1]), block.dtype))
        return np.empty((0, *np.shape(shape)[1:]), np.asarray(shape).dtype)
    return getattr(estimator, method)(block)


def _check_X(X, name):
    if not isinstance(X, da.Array):
        raise TypeError(
            f"{name} must be a dask.array.Array, got {type(X).__name__} (in-memory "
            "data: call the estimator's fit or partial_fit directly)"
        )
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {X.shape}")
    if any(np.isnan(c) for c in X.chunks[0]) or any(np.isnan(c) for c in X.chunks[1]):
        raise ValueError(
            f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first"
        )
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})  # a block is whole rows
    return X


def _rows_like(a, name, n, rows):
    """``a`` as a dask array of ``n`` rows in the row blocks ``rows``."""
    if not isinstance(a, da.Array):
        a = np.asarray(a)
        if a.ndim == 0:
            raise ValueError(f"{name} must have one entry per row of X, got a scalar")
        a = da.from_array(a, chunks=(rows, *a.shape[1:]))
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {a.shape}")
    if np.isnan(a.shape[0]):
        raise ValueError(
            f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first"
        )
    if a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} rows, X has {n}")
    if a.chunks[0] != rows or (a.ndim == 2 and len(a.chunks[1]) > 1):
        a = a.rechunk((rows, *a.shape[1:]))
    return a


def _client(client):
    if client is not None:
        return client
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - dask without distributed
        return None
    try:
        return default_client()
    except ValueError:  # no client: Dask's local scheduler computes the blocks
        return None


def _submit(client, parts, i):
    block = [p[i] for p in parts]
    return block if client is None else client.compute(block)


def _gather(client, pending):
    xb, yb, *wb = dask.compute(*pending) if client is None else client.gather(pending)
    return xb, yb, (wb[0] if wb else None)


from .distributed import fit_distributed  # noqa: E402  (it uses the helpers above)
