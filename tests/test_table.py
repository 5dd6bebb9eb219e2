"""Reading data files: delimiters, header detection, quoting, byte-order marks,
duplicate names and the one-line errors (fastnet.tabular.table)."""

import numpy as np
import pandas as pd
import pytest

from fastnet.tabular.table import TableError, looks_like_header, read_table, sniff

IRIS_LIKE = [
    ["sepal_length", "sepal_width", "species"],
    ["5.1", "3.5", "setosa, small"],
    ["4.9", "3.0", "setosa, small"],
    ["6.3", "3.3", "virginica"],
]


def write(path, rows, sep=",", bom=False, quote=True):
    def cell(c):
        return f'"{c}"' if quote and (sep in c or '"' in c) else c

    text = "\n".join(sep.join(cell(c) for c in r) for r in rows) + "\n"
    path.write_text(text, encoding="utf-8-sig" if bom else "utf-8")
    return path


@pytest.mark.parametrize("sep", [",", "\t", ";", "|"])
@pytest.mark.parametrize("bom", [False, True])
def test_delimiters_quotes_and_bom(tmp_path, sep, bom):
    t = read_table(write(tmp_path / "d.txt", IRIS_LIKE, sep, bom))
    assert t.sep == sep and t.header
    assert list(t.frame.columns) == IRIS_LIKE[0]  # no invisible BOM in the name
    species = ["setosa, small", "setosa, small", "virginica"]
    assert t.frame["species"].tolist() == species
    np.testing.assert_array_equal(t.frame["sepal_length"], [5.1, 4.9, 6.3])


def test_tsv_extension_means_tab_and_sep_forces(tmp_path):
    rows = [["a,b", "c"], ["1", "2"], ["3", "4"]]
    t = read_table(write(tmp_path / "d.tsv", rows, "\t", quote=False))
    assert list(t.frame.columns) == ["a,b", "c"]
    t = read_table(write(tmp_path / "d.csv", rows, "\t", quote=False), sep="\t")
    assert list(t.frame.columns) == ["a,b", "c"]


@pytest.mark.parametrize(
    "rows,header",
    [
        ([["1", "2"], ["3", "4"]], False),  # numbers first: data
        ([["x", "y"], ["3", "4"]], True),  # names above numbers
        ([["1.5", "red"], ["2.5", "blue"], ["0.5", "red"]], False),  # text data
        ([["size", "color"], ["2.5", "blue"]], True),
        ([["color", "shape"], ["red", "round"], ["blue", "square"]], True),
        ([["red", "round"], ["blue", "square"], ["red", "square"]], False),
        ([["", "2"], ["3", "4"]], False),  # an empty first cell is missing data
    ],
)
def test_header_detection(rows, header):
    assert looks_like_header(rows) is header


def test_headerless_columns_are_named_by_position(tmp_path):
    t = read_table(write(tmp_path / "d.csv", [["1", "2", "0"], ["3", "4", "1"]]))
    assert not t.header and list(t.frame.columns) == ["col1", "col2", "col3"]
    assert len(t.frame) == 2  # the first row is not lost
    assert t.line(0) == 1
    t = read_table(write(tmp_path / "e.csv", [["x", "y"], ["1", "2"]]), header=False)
    assert t.frame["col1"].tolist() == ["x", "1"]


def test_missing_cells(tmp_path):
    (tmp_path / "m.csv").write_text("a,b,c\n1,,x\nNA,2,\n3,NaN,y\n")
    f = read_table(tmp_path / "m.csv").frame
    assert f.isna().sum().tolist() == [1, 2, 1]


def test_sniff_prefers_a_consistent_split():
    assert sniff(["a;b;c", "1,5;2;3"]) == ";"
    assert sniff(["a", "1", "2"]) == ","


@pytest.mark.parametrize(
    "text,words",
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("a,b,a\n1,2,3\n", "names a more than once"),
        ("a,,c\n1,2,3\n", "column 2 of the header has no name"),
        ("a,b\n", "has a header but no data rows"),
        ("a,b\n1,2\n3,4,5\n", "more cells than columns"),
    ],
)
def test_errors_are_one_line(tmp_path, text, words):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(TableError, match=words) as err:
        read_table(tmp_path / "bad.csv")
    assert "\n" not in str(err.value)


def test_not_utf8_and_missing_files(tmp_path):
    (tmp_path / "l1.csv").write_bytes("name,x\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(TableError, match="not UTF-8"):
        read_table(tmp_path / "l1.csv")
    with pytest.raises(TableError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(TableError, match="is a folder"):
        read_table(tmp_path)


def test_npz(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((3, 2)), y=np.arange(3))
    t = read_table(tmp_path / "d.npz")
    assert list(t.frame.columns) == ["x0", "x1", "y"]
    np.savez(tmp_path / "bad.npz", X=np.ones(3))
    with pytest.raises(TableError, match="2-D numeric"):
        read_table(tmp_path / "bad.npz")
    np.savez(tmp_path / "bad2.npz", X=np.ones((3, 2)), y=np.ones(4))
    with pytest.raises(TableError, match="one value per row"):
        read_table(tmp_path / "bad2.npz")


def test_a_large_file_is_read_whole(tmp_path):
    # more than the 64 KiB sample: the sample ends on a whole line
    frame = pd.DataFrame(np.arange(60_000).reshape(-1, 3) * 1.5, columns=list("abc"))
    frame.to_csv(tmp_path / "big.csv", index=False, sep=";")
    t = read_table(tmp_path / "big.csv")
    assert t.sep == ";" and t.header
    np.testing.assert_array_equal(t.frame.to_numpy(), frame.to_numpy())


def test_chunks_read_the_same_table(tmp_path, monkeypatch):
    import fastnet.tabular.table

    rows = [["a", "b", "c"]] + [
        [str(i * 0.5), "x" if i > 25 else "1", ""] for i in range(40)
    ]
    path = write(tmp_path / "d.csv", rows)
    whole = read_table(path).frame
    monkeypatch.setattr(fastnet.tabular.table, "CHUNK_ROWS", 7)
    pieces = read_table(path).frame
    pd.testing.assert_series_equal(pieces["a"], whole["a"])
    assert pieces["c"].isna().all() and len(pieces) == 40
    # a text column whose first chunks hold only numbers: the same categories
    from fastnet.tabular.prepare import Preparation

    prep = Preparation(["b"], [], ["b"])
    assert set(prep.cells(pieces)["b"]) == set(prep.cells(whole)["b"]) == {"1", "x"}


def test_decimal_commas_beside_more_text_cells_than_numbers(tmp_path):
    """A new-user trial's file: one column of decimal-comma numbers (a missing
    cell and a whole number among them) beside two text columns, which hold more
    cells than it; the comma is still the decimal mark."""
    rows = [["alpha", "colour", "label"]]
    rows += [[f"{50 + i},{i % 10}5", ["red", "blue"][i % 2], "yes"] for i in range(6)]
    rows += [["", "red", "no"], ["48", "blue", "no"]]
    t = read_table(write(tmp_path / "eu.csv", rows, ";"))
    assert t.sep == ";" and t.header
    expected = [50.05, 51.15, 52.25, 53.35, 54.45, 55.55, np.nan, 48.0]
    np.testing.assert_array_equal(t.frame["alpha"], expected)
    assert t.frame["colour"].tolist()[:2] == ["red", "blue"]
