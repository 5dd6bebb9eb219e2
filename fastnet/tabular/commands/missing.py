"""Missing cells of the rows given to ``train`` and ``predict``: what imputation
fills, or, without it, where the first empty cell is."""

import numpy as np

from ..errors import CliError
from ..table import few


def check_missing(table, frame, prep, say, without_impute):
    """Say what ``prep`` imputes in ``frame``'s feature columns; without imputation,
    a :class:`CliError` at the first empty cell, whose message ends in
    ``without_impute``."""
    if prep.impute:
        missing = prep.missing(frame)
        if missing:
            cells = sum(missing.values())
            by = few([f"{k} ({v})" for k, v in missing.items()])
            say(f"imputed {cells} missing cell{'s' * (cells > 1)}: {by}")
        return
    features = frame[prep.features]
    if features.isna().to_numpy().any():
        mask = features.isna().to_numpy()
        r, c = np.argwhere(mask)[0]
        line, column = table.line(features.index[r]), features.columns[c]
        raise CliError(
            f"{table.path}: line {line}, column {column!r} is empty{without_impute}"
        )
