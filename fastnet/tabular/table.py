"""Reading data files as people have them: CSV, TSV or semicolon-separated text with
or without a header row, quoted fields, a UTF-8 byte-order mark; or ``.npz``.

pandas' C reader parses the cells; this module decides what pandas cannot guess
safely (the delimiter, whether the first row is a header) from a sample of the file,
and refuses what it must not guess at (duplicate or empty column names).

Every problem is a :class:`TableError` with a one-line message.
"""

import contextlib
import csv
import io
import os
import re
from dataclasses import dataclass

import numpy as np

#: delimiters tried when none is given, in order of preference on a tie
DELIMITERS = (",", "\t", ";", "|")
#: bytes of the file's start used to choose the delimiter and detect a header
SAMPLE_BYTES = 1 << 16
#: rows parsed at a time (see _parse)
CHUNK_ROWS = 100_000
#: cells read as missing: pandas' usual marks, and "?" (the UCI repository's)
MISSING = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "<NA>", "#N/A", "-NaN", "?"]
#: a number written with a decimal comma (European spreadsheets' CSV export)
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")


class TableError(ValueError):
    """A data file that cannot be read as it is; the message is one line."""


@dataclass
class Table:
    """A data file's cells (``frame``: a DataFrame, names as in the file, or
    ``col1``, ``col2``... when it has no header) and how it was read."""

    frame: object
    path: str
    header: bool
    sep: str
    decimal: str = "."
    notes: tuple = ()

    def line(self, i):
        """The file line (1-based, as editors and spreadsheets count) of data row
        ``i`` (0-based); blank lines, which are skipped, are not counted."""
        return i + 1 + self.header


def positional_names(n):
    """The names of a header-less file's columns: ``col1`` ... ``coln``."""
    return [f"col{i + 1}" for i in range(n)]


def few(names, limit=5):
    """At most ``limit`` names, then how many more: for one-line messages."""
    names = [str(n) for n in names]
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def read_table(path, sep=None, header=None):
    """The :class:`Table` in ``path`` (``.npz``: arrays ``X`` and optionally ``y``).

    ``sep``: the delimiter, or ``None`` to choose among comma, tab, semicolon and
    ``|`` from the file's first lines. ``header``: ``True`` / ``False`` to force,
    ``None`` to detect (a first row whose cells are all numbers is data; a first row
    with a text cell above numbers is a header).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise TableError(f"no such file: {path}")
    if os.path.isdir(path):
        raise TableError(f"{path} is a folder, not a data file")
    if path.endswith(".npz"):
        return _read_npz(path)
    rows, sep = _sample(path, sep)
    if header is None:
        header = looks_like_header(rows)
    notes = []
    index_column = False
    if header:
        names = [c.strip() for c in rows[0]]
        if len(names) > 1 and not names[0] and all(names[1:]):
            # pandas' to_csv writes the index first, under an empty name
            index_column = True
            names[0] = "(index)"
        empty = [i + 1 for i, n in enumerate(names) if not n]
        if empty:
            raise TableError(
                f"{path}: column {few(empty)} of the header has no name "
                "(give every column a name, or pass --no-header)"
            )
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TableError(f"{path}: the header names {few(dup)} more than once")
    else:
        names = positional_names(max(len(r) for r in rows))
    decimal = _decimal(rows[1:] if header else rows, sep)
    frame = _parse(path, sep, header, names, decimal)
    if len(frame) == 0:
        raise TableError(
            f"{path} has a header but no data rows" if header else f"{path} is empty"
        )
    if index_column:
        frame = frame.drop(columns="(index)")
        notes.append("left out the first column: it has no name (a saved index)")
    if decimal == ",":
        notes.append("read numbers with decimal commas (1,5 is one and a half)")
    return Table(frame, path, header, sep, decimal, tuple(notes))


def _sample(path, sep):
    """(the first rows, as lists of cells, and the delimiter)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(SAMPLE_BYTES)
            complete = len(raw) < SAMPLE_BYTES
    except OSError as exc:
        raise TableError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if complete or exc.start < len(raw) - 4:  # not just a cut multi-byte char
            raise TableError(
                f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8 CSV"
            ) from None
        text = raw[: exc.start].decode("utf-8-sig")
    if not complete:
        text = text[: text.rfind("\n") + 1] or text  # whole lines only
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise TableError(f"{path} is empty")
    if sep is None:
        sep = "\t" if path.lower().endswith((".tsv", ".tab")) else sniff(lines)
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=sep))
    return [r for r in rows if r], sep


def sniff(lines):
    """The delimiter that splits every sampled line into the same number (> 1) of
    fields; among several, the one giving the most fields; ``","`` when none does
    (a one-column file)."""
    best, best_fields = ",", 1
    for d in DELIMITERS:
        with contextlib.suppress(csv.Error):
            counts = {len(r) for r in csv.reader(lines, delimiter=d) if r}
            if len(counts) == 1 and (n := counts.pop()) > best_fields:
                best, best_fields = d, n
    if best_fields == 1:
        # ragged lines: the delimiter most lines contain
        score = {d: sum(d in ln for ln in lines) for d in DELIMITERS}
        if max(score.values()) > len(lines) / 2:
            best = max(DELIMITERS, key=score.get)
    return best


def _decimal(rows, sep):
    """``","`` when the file writes numbers with decimal commas (only possible when
    the comma is not the delimiter): some column holds only numbers (and missing
    cells), at least one of them with a decimal comma. Column by column: text
    columns, however many, do not outvote a column of numbers."""
    if sep == ",":
        return "."
    missing = set(MISSING)
    for j in range(max((len(r) for r in rows), default=0)):
        cells = [r[j].strip() for r in rows if j < len(r)]
        cells = [c for c in cells if c not in missing]
        if any(_DECIMAL_COMMA.match(c) for c in cells) and all(
            _numberish(c) for c in cells
        ):
            return ","
    return "."


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _numberish(cell):
    return _is_number(cell) or bool(_DECIMAL_COMMA.match(cell))


def looks_like_header(rows):
    """Whether the first of ``rows`` (lists of cells) names the columns.

    A first row of numbers (and empty cells) is data. A text cell above a column of
    numbers is a name. When every text column is text below too, the first row is a
    header if most of its cells differ from every value below them.
    """
    first, body = rows[0], rows[1:]
    text = [j for j, c in enumerate(first) if c.strip() and not _numberish(c)]
    if not text:
        return False
    if not body:
        return True
    below = [[r[j].strip() for r in body if j < len(r) and r[j].strip()] for j in text]
    if any(col and all(_numberish(c) for c in col) for col in below):
        return True
    unseen = sum(
        first[j].strip() not in set(col) for j, col in zip(text, below, strict=True)
    )
    return unseen > len(text) / 2


def _parse(path, sep, header, names, decimal="."):
    import pandas as pd

    try:
        # in chunks of rows, then one concatenation: the peak is about twice the
        # table, where one read_csv call peaks at three times (bench/read_csv.py)
        chunks = pd.read_csv(
            path,
            sep=sep,
            header=None,
            names=names,
            skiprows=1 if header else 0,
            index_col=False,
            encoding="utf-8-sig",
            skipinitialspace=True,
            na_values=MISSING,
            keep_default_na=False,
            skip_blank_lines=True,
            memory_map=True,
            chunksize=CHUNK_ROWS,
            decimal=decimal,
        )
        with chunks:
            parts = list(chunks)
        if not parts:
            return pd.DataFrame(columns=names)
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    except pd.errors.ParserError as exc:
        msg = str(exc).strip().splitlines()[-1]
        raise TableError(
            f"{path}: {msg} (a row with more cells than columns)"
        ) from None
    except pd.errors.EmptyDataError:
        raise TableError(f"{path} is empty") from None
    except UnicodeDecodeError as exc:
        raise TableError(
            f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8 CSV"
        ) from None
    except (OSError, ValueError) as exc:
        raise TableError(f"cannot read {path}: {exc}") from None


def _read_npz(path):
    import pandas as pd

    try:
        with np.load(path, allow_pickle=False) as data:
            if "X" not in data.files:
                raise TableError(f"{path} must hold an array named 'X' (and 'y')")
            X, y = data["X"], (data["y"] if "y" in data.files else None)
    except TableError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise TableError(f"cannot read {path}: {exc}") from None
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise TableError(
            f"{path}: X must be a 2-D numeric array, got {X.dtype} {X.shape}"
        )
    if X.shape[0] == 0:
        raise TableError(f"{path}: X has no rows")
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    if y is not None:
        if y.ndim != 1 or len(y) != len(X):
            raise TableError(
                f"{path}: y must be 1-D with one value per row of X, got {y.shape}"
            )
        frame["y"] = y
    return Table(frame, path, True, ",")
