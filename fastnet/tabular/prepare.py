"""Preparing table columns for a network, and the model that predicts from raw rows.

:class:`Preparation` is scikit-learn's ``ColumnTransformer``: numeric columns
median-imputed (``SimpleImputer``) and standardised (``StandardScaler``); text
columns imputed with their most frequent value and one-hot encoded
(``OneHotEncoder(handle_unknown="ignore")``: a category unseen in training encodes
as zeros). Its learned numbers go into the model file as arrays and JSON, never
pickle; :meth:`Preparation.from_state` rebuilds the same fitted transformers from
them, so a loaded model prepares rows exactly as the one that was trained.

:class:`TabularModel` joins a preparation, a fitted fastnet estimator and, for
regression, the target's standardisation: ``fastnet train`` makes one,
``fastnet.load`` gives it back, ``fastnet predict`` uses it.
"""

import warnings

import numpy as np

from .table import few

#: a text column with more distinct values than this share of its rows (and more
#: than MAX_CATEGORIES_ALWAYS) is free text or an identifier, not a category
UNIQUE_SHARE = 0.5
MAX_CATEGORIES_ALWAYS = 20
#: a text column is read as numbers with a few bad cells when at least this share
#: of its filled cells are numbers
NUMERIC_SHARE = 0.9


def _pd():
    import pandas as pd

    return pd


_BOOLS = {"true": 1.0, "false": 0.0}


def numbers(col):
    """(float64 values, NaN where missing; mask of cells that are filled but not
    numbers) of a column: numbers, booleans, or text holding numbers or
    true / false (a column of booleans with an empty cell reads as text)."""
    pd = _pd()
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(col), bool)
    filled = col.notna()
    values = col.map(_number, na_action="ignore").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    return values, np.isnan(values) & filled.to_numpy()


def _number(value):
    """A cell as a float (NaN: not a number); numbers are kept as they are, never
    rounded through text."""
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return float(value)
    text = str(value).strip()
    if text.lower() in _BOOLS:
        return _BOOLS[text.lower()]
    try:
        return float(text)
    except ValueError:
        return np.nan


def _first_bad(values, bad):
    """The position of the first cell that is filled but not a finite number, or
    None (``values``, ``bad``: as :func:`numbers` gives them)."""
    bad = bad | np.isinf(values)
    return int(np.argmax(bad)) if bad.any() else None


def _cell_error(table, col, i, value):
    where = f"{table.path}: line {table.line(col.index[i])}, column {col.name!r}"
    if np.isnan(value):
        return ValueError(
            f"{where}: {col.iloc[i]!r} is not a number (the column's other cells "
            "are; leave a missing cell empty or write NA)"
        )
    return ValueError(f"{where}: {value} is not finite")


def check_numbers(table, frame, names):
    """Raise ``ValueError`` naming the line, column and cell of the first cell of
    ``frame``'s columns ``names`` that is filled but not a finite number."""
    for name in names:
        values, bad = numbers(frame[name])
        i = _first_bad(values, bad)
        if i is not None:
            raise _cell_error(table, frame[name], i, values[i])


def column_kinds(table, features):
    """(numeric names, categorical names, notes) of ``features`` in ``table``.

    A column is numeric when at least NUMERIC_SHARE of its filled cells are numbers
    (or true / false), else categorical. Raises ``ValueError`` for a numeric column
    with a cell that is not a number (its line, column and cell) or that is
    infinite, and, naming every such column at once, for text columns whose values
    are mostly unique: free text, identifiers or dates. ``notes``: what to tell the
    user (a column of distinct whole numbers may be an identifier).
    """
    numeric, categorical, notes, refused = [], [], [], []
    for name in features:
        col = table.frame[name]
        values, bad = numbers(col)
        filled = int(col.notna().sum())
        if not filled or (filled - bad.sum()) / filled >= NUMERIC_SHARE:
            i = _first_bad(values, bad)
            if i is not None:
                raise _cell_error(table, col, i, values[i])
            numeric.append(name)
            kept = values[~np.isnan(values)]
            if (
                len(kept) > MAX_CATEGORIES_ALWAYS
                and np.all(kept == np.round(kept))
                and len(np.unique(kept)) == len(kept)
            ):
                notes.append(
                    f"column {name!r} holds a different whole number on every row: "
                    f"if it is an identifier, leave it out (--drop {name})"
                )
            continue
        cells = col.dropna().map(_text)
        distinct = cells.nunique()
        if distinct > MAX_CATEGORIES_ALWAYS and distinct > UNIQUE_SHARE * len(cells):
            why = f"is text with {distinct} different values in {len(cells)} rows"
            if _dates(cells):
                why = f"holds dates ({cells.iloc[0]})"
            refused.append((name, why))
            continue
        categorical.append(name)
    if refused:
        what = "; ".join(f"column {n!r} {why}" for n, why in refused)
        raise ValueError(
            f"{table.path}: {what}: fastnet learns from numbers and categories, not "
            "free text, identifiers or dates (turn a date into numbers, such as days "
            f"since a day): leave {'them' if len(refused) > 1 else 'it'} out with "
            f"--drop {','.join(n for n, _ in refused)}"
        )
    return numeric, categorical, notes


def _dates(cells):
    """Whether most of the first 50 ``cells`` read as dates or times."""
    import warnings

    pd = _pd()
    sample = cells.iloc[:50]
    if not sample.str.contains(r"\d[-/.:]\d|\d[-/.]\w", regex=True).all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return parsed.notna().mean() >= NUMERIC_SHARE


def _text(value):
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (float, np.floating)):
        return f"{value:.15g}"
    return str(value)


class Preparation:
    """The fitted column preparation of a table (see the module docstring).

    ``features``: the columns the model reads, in order; ``numeric`` and
    ``categorical`` split them. ``impute=False`` makes a missing cell an error;
    ``scale=False`` leaves numbers as they are.
    """

    def __init__(self, features, numeric, categorical, impute=True, scale=True):
        self.features = list(features)
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        if sorted(self.numeric + self.categorical) != sorted(self.features):
            raise ValueError("numeric and categorical must split the features")
        self.impute = bool(impute)
        self.scale = bool(scale)
        self.transformer = None

    # -- building ----------------------------------------------------------------------
    def _build(self, categories="auto"):
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        parts = []
        if self.numeric:
            steps = []
            if self.impute:
                steps.append(
                    (
                        "impute",
                        SimpleImputer(strategy="median", keep_empty_features=True),
                    )
                )
            if self.scale:
                steps.append(("scale", StandardScaler()))
            parts.append(
                ("num", Pipeline(steps) if steps else "passthrough", self.numeric)
            )
        if self.categorical:
            steps = []
            if self.impute:
                steps.append(
                    (
                        "impute",
                        SimpleImputer(
                            strategy="most_frequent", keep_empty_features=True
                        ),
                    )
                )
            encoder = OneHotEncoder(
                categories=categories, handle_unknown="ignore", sparse_output=False
            )
            steps.append(("onehot", encoder))
            parts.append(("cat", Pipeline(steps), self.categorical))
        return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)

    def cells(self, frame):
        """``frame``'s feature columns as the transformer takes them: numbers as
        float64, text as Python strings, missing cells as NaN."""
        pd = _pd()
        out = {}
        for name in self.numeric:
            out[name] = numbers(frame[name])[0]
        for name in self.categorical:
            col = frame[name]
            # numbers in a text column (a chunk of the file may have read them as
            # numbers) as they were written: 1.0 -> "1"
            text = col.map(_text, na_action="ignore").to_numpy(dtype=object)
            text[col.isna().to_numpy()] = np.nan
            out[name] = text
        return pd.DataFrame(out, index=frame.index, columns=self.features)

    def fit(self, frame):
        """Learn the medians, means, scales and categories from ``frame``."""
        self.transformer = self._build().fit(self.cells(frame))
        return self

    # -- applying ----------------------------------------------------------------------
    def missing(self, frame):
        """{column: number of missing cells} over the features, where any."""
        counts = frame[self.features].isna().sum()
        return {k: int(v) for k, v in counts.items() if v}

    def unseen(self, frame):
        """{column: sorted categories not seen in training}, where any."""
        return self._unseen(self.cells(frame))

    def _unseen(self, cells):
        if not self.categorical:
            return {}
        cats = self.categories()
        out = {}
        for name in self.categorical:
            values = cells[name].dropna()
            new = sorted(set(values) - set(cats[name]))
            if new:
                out[name] = new
        return out

    def transform(self, frame):
        """The prepared feature matrix (float64) of ``frame``'s rows."""
        return self._transform(self.cells(frame))

    def _transform(self, cells):
        if self.transformer is None:
            raise ValueError("this Preparation is not fitted")
        with warnings.catch_warnings():
            # unseen categories encode as zeros; callers say so (see unseen)
            warnings.filterwarnings("ignore", "Found unknown categories")
            out = self.transformer.transform(cells)
        return np.ascontiguousarray(out, dtype=np.float64)

    def output_names(self):
        """The prepared matrix's column names (``color_red`` for a one-hot column)."""
        return [n.split("__", 1)[1] for n in self.transformer.get_feature_names_out()]

    # -- the learned numbers ---------------------------------------------------------
    def _step(self, part, step):
        pipe = self.transformer.named_transformers_.get(part)
        if not hasattr(pipe, "named_steps"):  # absent, or passed through
            return None
        return pipe.named_steps.get(step)

    def categories(self):
        """{text column: its categories as learned, sorted}."""
        enc = self._step("cat", "onehot")
        if enc is None:
            return {}
        return {
            n: [str(c) for c in cats]
            for n, cats in zip(self.categorical, enc.categories_, strict=True)
        }

    def state(self):
        """(arrays, JSON-able dict): every learned number, for a model file."""
        arrays = {}
        imp, scaler = self._step("num", "impute"), self._step("num", "scale")
        if imp is not None:
            arrays["median"] = imp.statistics_.astype(np.float64)
        if scaler is not None:
            arrays["mean"] = scaler.mean_
            arrays["var"] = scaler.var_
            arrays["scale"] = scaler.scale_
        cat_imp = self._step("cat", "impute")
        if cat_imp is not None:
            arrays["mode"] = np.asarray(cat_imp.statistics_, dtype=str)
        for j, cats in enumerate(self.categories().values()):
            arrays[f"categories{j}"] = np.asarray(cats, dtype=str)
        meta = {
            "features": self.features,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "impute": self.impute,
            "scale": self.scale,
        }
        return arrays, meta

    @classmethod
    def from_state(cls, arrays, meta):
        """The fitted preparation that :meth:`state` describes.

        The transformers are fitted on one synthetic row of the stored medians and
        most frequent values (whose median and mode are themselves), with the stored
        categories given explicitly, and the scaler's mean and scale set to the
        stored ones: every number is the trained one, bit for bit.
        Raises ``ValueError`` if an array is missing or has the wrong shape.
        """
        self = cls(
            meta["features"],
            meta["numeric"],
            meta["categorical"],
            meta["impute"],
            meta["scale"],
        )
        n_num, n_cat = len(self.numeric), len(self.categorical)

        def get(key, n, kind="f"):
            a = arrays.get(key)
            if a is None or a.shape != (n,) or a.dtype.kind != kind:
                raise ValueError(f"preparation array {key!r} is missing or malformed")
            return a

        categories = []
        for j in range(n_cat):
            a = arrays.get(f"categories{j}")
            if a is None or a.ndim != 1 or a.dtype.kind != "U" or not len(a):
                raise ValueError(f"preparation array 'categories{j}' is malformed")
            categories.append(a.astype(object))
        row = {}
        if n_num:
            median = get("median", n_num) if self.impute else np.zeros(n_num)
            row.update(zip(self.numeric, median, strict=True))
        if n_cat:
            mode = (
                get("mode", n_cat, "U") if self.impute else [c[0] for c in categories]
            )
            row.update(zip(self.categorical, (str(m) for m in mode), strict=True))
        one = _pd().DataFrame({k: [row[k]] for k in self.features})
        self.transformer = self._build(categories or "auto").fit(self.cells(one))
        scaler = self._step("num", "scale")
        if scaler is not None:
            scaler.mean_ = get("mean", n_num).copy()
            scaler.var_ = get("var", n_num).copy()
            scaler.scale_ = get("scale", n_num).copy()
            scaler.n_samples_seen_ = np.int64(0)  # unknown; transform does not use it
        return self

    def describe(self):
        """One line per feature: its kind and preparation, for ``fastnet info``."""
        lines = []
        arrays, _ = self.state()
        for j, name in enumerate(self.numeric):
            how = []
            if "median" in arrays:
                how.append(f"missing -> {arrays['median'][j]:.6g}")
            if "mean" in arrays:
                how.append(
                    f"standardised (mean {arrays['mean'][j]:.6g}, "
                    f"scale {arrays['scale'][j]:.6g})"
                )
            lines.append(f"{name}: number" + (f", {', '.join(how)}" if how else ""))
        for name, cats in self.categories().items():
            line = f"{name}: category, one-hot over {len(cats)} values ({few(cats)})"
            if "mode" in arrays:
                mode = str(arrays["mode"][self.categorical.index(name)])
                line += f", missing -> {mode!r}"
            lines.append(line)
        order = {n: i for i, n in enumerate(self.features)}
        return sorted(lines, key=lambda ln: order[ln.split(": ", 1)[0]])


class TabularModel:
    """A fitted :class:`Preparation`, a fitted fastnet estimator and the target's
    standardisation: predicts from raw rows as ``fastnet predict`` does.

    ``X`` for :meth:`predict`, :meth:`predict_proba` and :meth:`score` is a pandas
    DataFrame holding the feature columns by name (others are ignored), or a 2-D
    array of raw values with the features in training order. Thread-safe as the
    estimator is: predictions may run in several threads at once.
    """

    def __init__(self, preparation, estimator, target=None, shift=0.0, scale=1.0):
        self.preparation = preparation
        self.estimator = estimator
        self.target = target
        self.shift = float(shift)
        self.scale = float(scale)

    @property
    def feature_names_in_(self):
        return np.asarray(self.preparation.features, dtype=object)

    @property
    def n_features_in_(self):
        return len(self.preparation.features)

    @property
    def classes_(self):
        return self.estimator.classes_

    @property
    def is_classifier(self):
        return hasattr(self.estimator, "classes_")

    def frame(self, X):
        """``X`` as a DataFrame of the feature columns (see the class docstring)."""
        pd = _pd()
        features = self.preparation.features
        if isinstance(X, pd.DataFrame):
            missing = [f for f in features if f not in X.columns]
            if missing:
                raise ValueError(
                    f"X lacks {len(missing)} of the model's {len(features)} "
                    f"columns: {few(missing)}"
                )
            return X[features]
        X = np.asarray(X, dtype=object if self.preparation.categorical else None)
        if X.ndim != 2 or X.shape[1] != len(features):
            raise ValueError(
                f"X must be a DataFrame or a 2-D array of {len(features)} columns "
                f"({few(features)}), got shape {X.shape}"
            )
        return pd.DataFrame(X, columns=features)

    def transform(self, X):
        """The prepared matrix the estimator sees. Raises ``ValueError`` for a cell
        of a numeric column that is not a number; warns (``UserWarning``) of
        categories not seen in training, which encode as zeros."""
        prep = self.preparation
        frame = self.frame(X)
        for name in prep.numeric:
            i = _first_bad(*numbers(frame[name]))
            if i is not None:
                raise ValueError(
                    f"column {name!r}, row {i}: {frame[name].iloc[i]!r} is not a "
                    "finite number"
                )
        cells = prep.cells(frame)  # once, for the check and the transform
        for name, new in prep._unseen(cells).items():
            warnings.warn(
                f"column {name!r}: categories not seen in training ({few(new)}) "
                "encode as zeros",
                UserWarning,
                stacklevel=3,
            )
        if not prep.impute:
            missing = prep.missing(frame)
            if missing:
                raise ValueError(
                    f"missing cells in {few(missing)} and the model was trained "
                    "with --no-impute"
                )
        return prep._transform(cells)

    def predict(self, X):
        """Class labels, or regression values in the target's own units."""
        y = self.estimator.predict(self.transform(X))
        if self.is_classifier:
            return y
        return y * self.scale + self.shift

    def predict_proba(self, X):
        if not self.is_classifier:
            raise AttributeError("a regression model has no predict_proba")
        return self.estimator.predict_proba(self.transform(X))

    def score(self, X, y):
        """Accuracy (classification) or R² (regression), as scikit-learn's."""
        from sklearn.metrics import accuracy_score, r2_score

        pred = self.predict(X)
        return (accuracy_score if self.is_classifier else r2_score)(y, pred)

    def __repr__(self):
        return (
            f"TabularModel({type(self.estimator).__name__}, "
            f"{len(self.preparation.features)} features, target={self.target!r})"
        )
