"""The classifier's quick input checks: scikit-learn's ``_validate_input`` for
the common case (float arrays, 1-D integer labels), in a fraction of its time.

Each returns what scikit-learn's check would, or None for any other input, which
then takes scikit-learn's own path with its errors and warnings; a test compares the
state they set with scikit-learn's, attribute by attribute, in every scikit-learn
version CI runs.
"""

import numpy as np
from sklearn.preprocessing import LabelBinarizer

from .._runtime import native as _native


def partial_fit_input(est, X, y, incremental, reset):
    """scikit-learn's checks of a later ``partial_fit`` call, in a fraction of
    their time, for the common case: float arrays of the fitted width and dtype
    kind, finite, with 1-D labels that are all among ``classes_``. Returns
    ``(X, y)`` as scikit-learn's ``_validate_input`` would (``y`` its label
    binarizer's rows, as bool), or None for anything else, which then takes
    scikit-learn's path and its errors and warnings."""
    if not (
        incremental
        and not reset
        and not est.warm_start
        and hasattr(est, "classes_")
        and not hasattr(est, "feature_names_in_")
        and type(X) is np.ndarray
        and type(y) is np.ndarray
        and X.ndim == 2
        and X.dtype in (np.float32, np.float64)
        and X.shape[0] > 0
        and X.shape[1] == est.n_features_in_
        and y.shape == (X.shape[0],)
        and y.dtype.kind in "iu"
        and est.classes_.dtype.kind in "iu"
    ):
        return None
    classes = est.classes_  # sorted, distinct (LabelBinarizer's)
    codes = np.minimum(np.searchsorted(classes, y), classes.shape[0] - 1)
    X = np.ascontiguousarray(X)
    if not (np.array_equal(classes[codes], y) and _native.all_finite(X)):
        return None  # scikit-learn's path says what is wrong
    return X, _binarized(codes, classes.shape[0])


def fit_input(est, X, y, incremental, reset):
    """scikit-learn's checks of a ``fit`` (not ``partial_fit``, nor a warm
    start that keeps its classes), in a fraction of their time, for the common
    case: a finite C-contiguous float array and 1-D integer labels of at least
    two classes. Sets what scikit-learn's ``_validate_input`` sets
    (``n_features_in_``, no ``feature_names_in_``, ``_label_binarizer`` fitted on
    the classes, ``classes_``) and returns ``(X, y)`` as it would; None for
    anything else, which takes scikit-learn's path with its errors and warnings."""
    if not (
        not incremental
        and reset
        and not (est.warm_start and hasattr(est, "classes_"))
        and type(X) is np.ndarray
        and type(y) is np.ndarray
        and X.ndim == 2
        and X.dtype in (np.float32, np.float64)
        and X.flags.c_contiguous
        and X.shape[0] > 0
        and X.shape[1] > 0
        and y.shape == (X.shape[0],)
        and y.dtype.kind in "iu"
        and y.dtype.isnative  # scikit-learn's classes_ come out native
    ):
        return None
    classes, codes = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2 or not _native.all_finite(X):
        return None  # scikit-learn's path says what is wrong
    # the state LabelBinarizer.fit(y) gives, without its type_of_target and
    # unique_labels (a test compares them attribute by attribute, in every
    # scikit-learn version CI runs)
    binarizer = LabelBinarizer()
    binarizer.y_type_ = "binary" if classes.shape[0] == 2 else "multiclass"
    binarizer.sparse_input_ = False
    binarizer.classes_ = classes
    est._label_binarizer = binarizer
    est.classes_ = binarizer.classes_
    est.n_features_in_ = X.shape[1]
    if hasattr(est, "feature_names_in_"):
        del est.feature_names_in_  # X has no column names
    return X, _binarized(codes.reshape(-1), classes.shape[0])


def _binarized(codes, n_classes):
    """``LabelBinarizer.transform``'s rows, as bool, for the class indices
    ``codes``: one column, the positive class, for two classes; else one-hot."""
    if n_classes == 2:
        return codes.astype(bool).reshape(-1, 1)
    onehot = np.zeros((codes.shape[0], n_classes), bool)
    onehot[np.arange(codes.shape[0]), codes] = True
    return onehot
