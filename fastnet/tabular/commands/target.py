"""The target column of ``fastnet train``: which column it is, whether it is
classified or regressed, and its values."""

import numpy as np

from ..errors import CliError, did_you_mean
from ..table import few

#: integer targets with at most this many values are classes unless --task says
MAX_CLASSES_ALWAYS = 20


def _pd():
    import pandas as pd

    return pd


def target_name(table, target):
    """The target column's name: ``--target`` as a name, or as a 1-based position
    in a file without a header; the last column by default."""
    names = list(table.frame.columns)
    if target is None:
        return names[-1]
    if target in names:
        return target
    if target.isdigit() and not table.header and 1 <= int(target) <= len(names):
        return names[int(target) - 1]
    hint = (
        f"its columns are {few(names)}{did_you_mean(target, names)}"
        if table.header
        else f"it has no header: name the target by position, 1 to {len(names)}"
    )
    raise CliError(f"{table.path} has no column {target!r}; {hint}")


def rows_with_target(table, target, say):
    """The table's rows whose target cell is not empty (saying how many were
    dropped)."""
    frame = table.frame
    lost = frame[target].isna()
    if lost.all():
        raise CliError(f"{table.path}: the target {target!r} has no values")
    if lost.any():
        say(f"dropped {int(lost.sum())} rows whose target {target!r} is missing")
        frame = frame[~lost]
    return frame


def infer_task(y, name):
    """('classify' or 'regress', why) for the target column ``y`` (no missing
    values): text is classes; non-integer numbers are regressed; integers are classes
    when there are at most MAX_CLASSES_ALWAYS of them or they are the codes 0..k-1,
    else regressed (an age, a count, a price)."""
    pd = _pd()
    text = pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y)
    if text:
        y = y.astype(str).str.strip()
    distinct = int(y.nunique())
    rows = f"{distinct} value{'s' * (distinct != 1)} in {len(y):,} rows"
    if text:
        return "classify", f"target {name!r} is text with {rows}"
    values = y.to_numpy(dtype=np.float64)
    if not np.all(values == np.round(values)):
        return "regress", f"target {name!r} has non-integer numbers"
    why = f"target {name!r} has {distinct} integer values in {len(y):,} rows"
    if distinct <= MAX_CLASSES_ALWAYS:
        return "classify", why
    labels = np.unique(values)
    if labels[0] == 0 and labels[-1] == distinct - 1 and len(y) >= 5 * distinct:
        return "classify", why + f", the codes 0 to {distinct - 1}"
    return "regress", why


def target_values(table, y, name, task, forced):
    """The target's values for ``task``: class labels, or finite numbers;
    ``forced``: the task was chosen with --task, so any number of classes goes."""
    if task == "classify":
        y = _labels(y)
        classes = np.unique(y)
        if not forced and len(classes) > max(MAX_CLASSES_ALWAYS, len(y) / 2):
            raise CliError(
                f"{table.path}: the target {name!r} has {len(classes)} different "
                f"values in {len(y):,} rows, too many to be classes: choose the target "
                "with --target (or force --task)"
            )
        if len(classes) < 2:
            # (the estimator fits a constant model, as scikit-learn's does; here it
            # is almost surely the wrong target column)
            raise CliError(
                f"{table.path}: the target has one class only ({classes[0]}); "
                "classifying needs at least 2"
            )
    else:
        y = _regress_target(y, table, name)
    if len(y) < 4:
        raise CliError(f"{table.path}: {len(y)} rows are too few to train and evaluate")
    return y


def _labels(y):
    """Class labels: integers where the column holds whole numbers, else text."""
    pd = _pd()
    if pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y):
        values = y.to_numpy(dtype=np.float64)
        if np.all(values == np.round(values)):
            return values.astype(np.int64)
        return values
    return y.astype(str).str.strip().to_numpy(dtype=str)


def _regress_target(y, table, name):
    pd = _pd()
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        values = pd.to_numeric(y, errors="coerce")
        bad = values.isna()
        if bad.any():
            i = bad.idxmax()
            raise CliError(
                f"{table.path}: line {table.line(i)}, target {name!r}: {y[i]!r} "
                "is not a number, and regression needs numbers (--task classify?)"
            )
        y = values
    values = y.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        i = int(np.argmax(~np.isfinite(values)))
        raise CliError(
            f"{table.path}: line {table.line(y.index[i])}, target {name!r}: "
            f"{values[i]} is not finite"
        )
    return values
