"""fastnet's one point of contact with scikit-learn's private internals.

``fastnet.sklearn.estimators`` subclasses scikit-learn's ``MLPClassifier`` /
``MLPRegressor``:
it overrides private methods that scikit-learn's own ``_fit`` calls
(``_fit_stochastic``, ``_fit_lbfgs``, ``_validate_input``, ``_init_coef``,
``_forward_pass_fast``), calls others (``_fit``, ``_update_no_improvement_count``,
``_check_solver``; ``fastnet.model_files`` calls ``_validate_params``), imports private
helpers
(``_param_validation``, ``_check_optimize_result``) and, with ``fastnet.model_files``
and
``fastnet.tabular.cli``, reads the attributes that ``_initialize`` and
``_validate_input`` set
(``_label_binarizer``, ``_random_state``, ``_no_improvement_count``, ``_best_coefs``,
``_best_intercepts``). Private names change between releases without a deprecation,
so they are imported here and nowhere else, and checked once at import: a
scikit-learn older than the tested range, or one whose internals no longer look as
fastnet expects, raises an ``ImportError`` that names the tested range, instead of a
fit failing later with an unrelated ``TypeError``.

The attributes cannot be checked without fitting; the estimator tests cover them.
"""

import inspect
import re

import sklearn

try:
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier
    from sklearn.neural_network import MLPRegressor as SkMLPRegressor
    from sklearn.utils._param_validation import Interval, StrOptions
    from sklearn.utils.optimize import _check_optimize_result as check_optimize_result
    from sklearn.utils.validation import validate_data
except ImportError as exc:  # raised below, after the version check
    _import_error = exc
else:
    _import_error = None

#: The oldest and the newest scikit-learn release (major, minor) that
#: ``.ci/versions.sh`` tests; pyproject.toml's floor is the first.
TESTED = ((1, 7), (1, 9))

#: Private methods of scikit-learn's MLPs that fastnet overrides or calls, with the
#: parameters (after ``self``) that scikit-learn's callers and fastnet's pass.
PRIVATE_METHODS = {
    "_fit": ("X", "y", "sample_weight", "incremental"),
    "_validate_input": ("X", "y", "incremental", "reset"),
    "_initialize": ("y", "layer_units", "dtype"),
    "_init_coef": ("fan_in", "fan_out", "dtype"),
    "_fit_stochastic": (
        "X",
        "y",
        "sample_weight",
        "activations",
        "deltas",
        "coef_grads",
        "intercept_grads",
        "layer_units",
        "incremental",
    ),
    "_fit_lbfgs": (
        "X",
        "y",
        "sample_weight",
        "activations",
        "deltas",
        "coef_grads",
        "intercept_grads",
        "layer_units",
    ),
    "_update_no_improvement_count": ("early_stopping", "X", "y", "sample_weight"),
    "_loss_grad_lbfgs": (
        "packed_coef_inter",
        "X",
        "y",
        "sample_weight",
        "activations",
        "deltas",
        "coef_grads",
        "intercept_grads",
    ),
    "_forward_pass_fast": ("X", "check_input"),
    "_check_solver": (),
    "_validate_params": (),
}


def release(version):
    """``(major, minor)`` of a version string such as ``'1.9.1'`` or ``'1.10.dev0'``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def unsupported(problem):
    """The ImportError for an installed scikit-learn that fastnet cannot use."""
    (lo_major, lo_minor), (hi_major, hi_minor) = TESTED
    return ImportError(
        "fastnet's estimators build on scikit-learn's private MLP internals and are "
        f"tested with scikit-learn {lo_major}.{lo_minor} to {hi_major}.{hi_minor}; "
        f"the installed scikit-learn {sklearn.__version__} {problem}. Install a "
        f"tested release: pip install 'scikit-learn>={lo_major}.{lo_minor},"
        f"<{hi_major}.{hi_minor + 1}'"
    )


def check_internals(classifier, regressor):
    """Raise :func:`unsupported`'s ImportError unless every private method fastnet
    relies on exists with the parameters it expects, and the regressor has
    ``loss=`` (scikit-learn 1.7+)."""
    for cls in (classifier, regressor):
        for name, expected in PRIVATE_METHODS.items():
            method = getattr(cls, name, None)
            if not callable(method):
                raise unsupported(f"has no {cls.__name__}.{name}")
            found = tuple(inspect.signature(method).parameters)[1:]  # after self
            if found != expected:
                raise unsupported(
                    f"has {cls.__name__}.{name}({', '.join(found)}) where fastnet "
                    f"expects ({', '.join(expected)})"
                )
        if not isinstance(getattr(cls, "_parameter_constraints", None), dict):
            raise unsupported(f"has no {cls.__name__}._parameter_constraints")
    if "loss" not in regressor._parameter_constraints:
        raise unsupported(f"has no {regressor.__name__}(loss=...) parameter")


if release(sklearn.__version__) < TESTED[0]:
    raise unsupported("is older") from _import_error
if _import_error is not None:
    problem = f"fails an import fastnet needs: {_import_error}"
    raise unsupported(problem) from _import_error
check_internals(SkMLPClassifier, SkMLPRegressor)

__all__ = [
    "PRIVATE_METHODS",
    "TESTED",
    "Interval",
    "SkMLPClassifier",
    "SkMLPRegressor",
    "StrOptions",
    "check_internals",
    "check_optimize_result",
    "release",
    "unsupported",
    "validate_data",
]
