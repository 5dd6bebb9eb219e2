"""The column preparation (fastnet.tabular.prepare): what it learns, its model-file
round
trip (bit for bit), and TabularModel predicting from raw rows."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import fastnet as fn
from fastnet.tabular.prepare import Preparation, TabularModel, column_kinds
from fastnet.tabular.table import Table


def frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    f = pd.DataFrame(
        {
            "area": rng.uniform(30, 300, n),
            "lot": rng.uniform(100, 1e5, n),
            "rooms": rng.integers(1, 8, n),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
            "good": rng.choice([True, False], n),
        }
    )
    f.loc[rng.choice(n, 9, replace=False), "area"] = np.nan
    f.loc[rng.choice(n, 7, replace=False), "city"] = np.nan
    return f


def kinds(f, notes=False):
    out = column_kinds(Table(f, "f.csv", True, ","), list(f.columns))
    return out if notes else out[:2]


def test_column_kinds():
    assert kinds(frame()) == (["area", "lot", "rooms", "good"], ["city"])


def test_a_stray_text_cell_in_numbers_is_an_error_naming_it():
    f = pd.DataFrame({"a": [str(i) for i in range(30)] + ["zz"]})
    with pytest.raises(ValueError, match=r"line 32, column 'a': 'zz' is not a number"):
        kinds(f)


def test_free_text_is_refused_by_name():
    f = pd.DataFrame({"name": [f"person {i}" for i in range(100)]})
    with pytest.raises(ValueError, match="column 'name' is text with 100 different"):
        kinds(f)


def test_booleans_with_a_gap_are_numbers():
    f = pd.DataFrame({"smoker": ["True", np.nan, "False", "true"]})
    assert kinds(f) == (["smoker"], [])
    prep = Preparation(["smoker"], ["smoker"], [], scale=False).fit(f)
    np.testing.assert_array_equal(prep.transform(f)[:, 0], [1, 1, 0, 1])


def test_dates_and_free_text_are_refused_together():
    n = 60
    f = pd.DataFrame(
        {
            "signup": pd.date_range("2020-01-01", periods=n).astype(str),
            "name": [f"person {i}" for i in range(n)],
            "x": np.arange(n) * 0.5,
        }
    )
    with pytest.raises(ValueError) as err:
        kinds(f)
    msg = str(err.value)
    assert "column 'signup' holds dates (2020-01-01)" in msg
    assert "column 'name' is text with 60 different values" in msg
    assert msg.endswith("--drop signup,name") and "\n" not in msg


def test_a_column_of_distinct_whole_numbers_is_noted_as_an_identifier():
    f = pd.DataFrame({"id": np.arange(1001, 1051), "x": np.arange(50) % 3})
    _, _, notes = kinds(f, notes=True)
    assert notes == [
        "column 'id' holds a different whole number on every row: if it is an "
        "identifier, leave it out (--drop id)"
    ]


def test_infinity_is_refused():
    with pytest.raises(ValueError, match="column 'a': inf is not finite"):
        kinds(pd.DataFrame({"a": [1.0, np.inf]}))


@pytest.mark.parametrize("impute,scale", [(True, True), (True, False), (False, True)])
def test_matches_scikit_learn_and_round_trips_bit_for_bit(impute, scale):
    f = frame()
    if not impute:
        f = f.dropna()
    num, cat = kinds(f)
    prep = Preparation(f.columns, num, cat, impute=impute, scale=scale).fit(f)
    # the reference: the same scikit-learn transformers, built here
    steps = [SimpleImputer(strategy="median")] if impute else []
    steps += [StandardScaler()] if scale else []
    csteps = [SimpleImputer(strategy="most_frequent")] if impute else []
    ref = ColumnTransformer(
        [
            ("num", make_pipeline(*steps), num),
            (
                "cat",
                make_pipeline(
                    *csteps, OneHotEncoder(handle_unknown="ignore", sparse_output=False)
                ),
                cat,
            ),
        ]
    )
    cells = f.astype({"good": float}).astype({"city": object})
    expected = ref.fit_transform(cells)
    np.testing.assert_allclose(prep.transform(f), expected, rtol=1e-12)
    # rebuilt from the stored numbers: the same output, bit for bit, on new rows
    # holding missing cells and a category never seen
    arrays, meta = prep.state()
    again = Preparation.from_state(arrays, meta)
    new = frame(50, seed=1)
    new.loc[3, "city"] = "Quito"
    if not impute:
        new = new.dropna()
    np.testing.assert_array_equal(again.transform(new), prep.transform(new))
    assert again.output_names() == prep.output_names()
    assert prep.unseen(new) == {"city": ["Quito"]}


def test_malformed_state_is_a_value_error():
    f = frame()
    prep = Preparation(f.columns, *kinds(f)).fit(f)
    arrays, meta = prep.state()
    arrays["median"] = arrays["median"][:2]
    with pytest.raises(ValueError, match="'median' is missing or malformed"):
        Preparation.from_state(arrays, meta)


def tabular(f, y, regress=False):
    num, cat = kinds(f)
    prep = Preparation(f.columns, num, cat).fit(f)
    X = prep.transform(f)
    if regress:
        shift, scale = y.mean(), y.std()
        est = fn.MLPRegressor(
            hidden_layer_sizes=(16,), solver="lbfgs", max_iter=200, random_state=0
        )
        est.fit(X, (y - shift) / scale)
        return TabularModel(prep, est, "price", shift, scale)
    est = fn.MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0)
    est.fit(X, y)
    return TabularModel(prep, est, "label")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_tabular_model_file_round_trip(tmp_path):
    f = frame()
    price = 2000 * f["area"].fillna(150) + 0.5 * f["lot"] + 1e4 * (f["city"] == "Oslo")
    for model in (tabular(f, f["rooms"] > 3), tabular(f, price.to_numpy(), True)):
        fn.save(model, tmp_path / "m.npz")
        back = fn.load(tmp_path / "m.npz")
        assert isinstance(back, TabularModel) and back.target == model.target
        new = frame(40, seed=2)
        np.testing.assert_array_equal(back.predict(new), model.predict(new))
        # columns by name in any order, or raw values in the training order
        np.testing.assert_array_equal(
            back.predict(new[new.columns[::-1]]), model.predict(new)
        )
        np.testing.assert_array_equal(
            back.predict(new.to_numpy(dtype=object)), model.predict(new)
        )
        if model.is_classifier:
            np.testing.assert_array_equal(
                back.predict_proba(new), model.predict_proba(new)
            )
    # regression predictions are in the target's units
    assert model.score(f, price) > 0.95


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_tabular_model_input_errors():
    f = frame()
    model = tabular(f, f["rooms"] > 3)
    with pytest.raises(ValueError, match="lacks 1 of the model's 5 columns: city"):
        model.predict(f.drop(columns="city"))
    with pytest.raises(ValueError, match="2-D array of 5 columns"):
        model.predict(np.ones((3, 4)))
