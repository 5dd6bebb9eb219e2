"""Model files read only what they declare: crafted files, each made from a real
saved model by editing its members, are a ValueError naming the field at load time
(and a one-line error with exit code 2 from ``fastnet info`` and ``fastnet
predict``), and a hostile size is refused before anything is decompressed or
allocated."""

import io
import json
import math
import re
import shutil
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits

import fastnet as fn
from fastnet.tabular import cli
from tests import train_script

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: the most a load of a crafted file may allocate at its peak (a hostile one asked
#: for 2 GiB or 74.5 GiB); the models here hold a few kilobytes
PEAK = 32 * 2**20


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A real model file of each kind, trained on a few rows for two epochs."""
    folder = tmp_path_factory.mktemp("saved")
    X, y = load_digits(return_X_y=True)
    Xr, yr = load_diabetes(return_X_y=True)
    models = {
        "classifier": fn.MLPClassifier(
            hidden_layer_sizes=(8,), max_iter=2, random_state=0
        ).fit(X[:60], y[:60]),
        "regressor": fn.MLPRegressor(
            hidden_layer_sizes=(8,), max_iter=2, random_state=0
        ).fit(Xr[:40], yr[:40]),
        "sequential": fn.Sequential(
            fn.Linear(5, 8, dtype=np.float64, random_state=0),
            fn.ReLU(),
            fn.Linear(8, 3, dtype=np.float64, random_state=1),
        ),
    }
    for name, model in models.items():
        fn.save(model, folder / f"{name}.npz")
    return folder


def _read(path):
    """``(arrays, meta)`` of a model file, read plainly (the test's own reader)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return arrays, json.loads(str(arrays.pop("__meta__")))


def _write(path, arrays, meta):
    np.savez(path, __meta__=np.array(json.dumps(meta)), **arrays)


def _write_zip(path, entries):
    """A zip of ``entries`` ``(name, data, method, size, crc)`` written as given:
    ``data`` already compressed, ``size`` and ``crc`` whatever the test declares."""
    out, central = bytearray(), bytearray()
    for name, data, method, size, crc in entries:
        n = name.encode()
        head = (method, 0, 33, crc, len(data), size, len(n), 0)  # 33: 1980-01-01
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, *head, 0,
                               0, 0, 0, len(out)) + n  # fmt: skip
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, *head) + n + data
    n = len(entries)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))


def _entries(path):
    """The members of ``path`` as stored entries for :func:`_write_zip`."""
    with zipfile.ZipFile(path) as z:
        return [
            (e.filename, z.read(e), zipfile.ZIP_STORED, e.file_size, e.CRC)
            for e in z.infolist()
        ]


def _npy(shape, dtype="<f8", data=b""):
    """An .npy member whose header declares ``shape`` and whose data is ``data``."""
    head = {"descr": dtype, "fortran_order": False, "shape": shape}
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, head)
    return f.getvalue() + data


def _replace(entries, name, data, deflated_from=None, size=None):
    """``entries`` with member ``name`` holding ``data``: stored, or the deflated
    stream of ``deflated_from`` (its CRC then right), declaring ``size`` bytes."""
    method, crc = zipfile.ZIP_STORED, zlib.crc32(data)
    if deflated_from is not None:
        method, crc = zipfile.ZIP_DEFLATED, zlib.crc32(deflated_from)
    size = len(data) if size is None else size
    return [(name, data, method, size, crc) if e[0] == name else e for e in entries]


def _short_deflated(entries, name, shape):
    """``entries`` with member ``name`` a deflated .npy header of ``shape`` whose
    directory entry declares the whole array's size, with the right CRC: a read
    trusting the header allocates that size before it finds the data missing."""
    head = _npy(shape)
    size = len(head) + math.prod(shape) * 8
    return _replace(entries, name, zlib.compress(head, wbits=-15), head, size)


def _deep_json(meta, depth):
    """``meta``'s JSON with its user metadata nested ``depth`` lists deep."""
    meta["user"] = "HOLE"
    return json.dumps(meta).replace('"HOLE"', "[" * depth + "]" * depth)


def _peak(func, *args):
    """``func(*args)``'s result or exception, and the most it allocated at once."""
    tracemalloc.start()
    try:
        try:
            result = func(*args)
        except Exception as exc:  # the test looks at what it was
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- the crafted files: (model, edit of (arrays, meta) or of the path, words) -------
def _edit(func):
    """A craft that edits the arrays and document through ``func(arrays, meta)``."""

    def craft(path):
        arrays, meta = _read(path)
        func(arrays, meta)
        _write(path, arrays, meta)

    return craft


def _raw(func):
    """A craft that rewrites the zip's entries through ``func(entries, meta)``."""

    def craft(path):
        _, meta = _read(path)
        _write_zip(path, func(_entries(path), meta))

    return craft


def _zero_width(a, m):
    a["coef_0"], a["intercept_0"] = a["coef_0"][:, :0], a["intercept_0"][:0]
    a["coef_1"] = a["coef_1"][:0]


def _linear_sizes(n_in, n_out):
    def edit(a, m):
        m["layers"][0].update(n_in=n_in, n_out=n_out)

    return edit


def _next_linear_takes_7(a, m):
    m["layers"][2]["n_in"] = 7
    a["2.W"] = np.zeros((7, 3))


def _astype(dtype):
    """Every weight in ``dtype``, as one: the file loads consistent but for that."""

    def edit(a, m):
        for k in a:
            if k.startswith(("coef_", "intercept_")):
                a[k] = a[k].astype(dtype)

    return edit


def _meta_text(text):
    def rewrite(entries, meta):
        return _replace(entries, "__meta__.npy", _npy((), f"<U{len(text)}",
                        text.encode("utf-32-le")))  # fmt: skip

    return rewrite


def _resize(meta):
    """``meta`` with its first Linear declared 100000 x 100000."""
    meta["layers"][0].update(n_in=100000, n_out=100000)
    return meta


CASES = {
    # a declared size the file does not hold: in the JSON, then the header too
    "linear-100000x100000": (
        "sequential",
        _edit(_linear_sizes(100000, 100000)),
        r"layer 0 \(Linear\) declares W \(100000, 100000\)",
    ),
    "header-100000x100000": (
        "sequential",
        _raw(
            lambda e, m: _meta_text(json.dumps(_resize(m)))(
                _replace(e, "0.W.npy", _npy((100000, 100000), data=bytes(320))), m
            )
        ),
        r"array '0.W' declares shape \(100000, 100000\) of float64, but its member "
        "holds 320 bytes",
    ),
    "directory-64x8000000": (
        "classifier",
        _raw(lambda e, m: _short_deflated(e, "coef_0.npy", (64, 8_000_000))),
        r"array 'coef_0' declares 4096000128 bytes in \d+ compressed ones",
    ),
    "deep-json": (
        "classifier",
        _raw(lambda e, m: _meta_text(_deep_json(m, 200_000))(e, m)),
        "__meta__ nests deeper than 64 levels",
    ),
    "meta-not-npy": (
        "classifier",
        _raw(lambda e, m: _replace(e, "__meta__.npy", json.dumps(m).encode())),
        r"array '__meta__' is not a readable \.npy",
    ),
    "meta-not-text": (
        "classifier",
        _raw(lambda e, m: _replace(e, "__meta__.npy", _npy((2,), data=bytes(16)))),
        r"__meta__ holds float64 of shape \(2,\), not JSON text",
    ),
    "meta-not-json": (
        "classifier",
        _raw(_meta_text("{not json")),
        "__meta__ is not JSON",
    ),
    "bzip2-member": (
        "classifier",
        None,  # written by zipfile itself, below
        "array '__meta__' has zip compression 12",
    ),
    "3-classes-for-10-outputs": (
        "classifier",
        _edit(lambda a, m: a.update(classes=a["classes"][:3])),
        r"classes_ has shape \(3,\), but a multiclass classifier with 10 outputs "
        "has 10 classes",
    ),
    "binary-with-10-outputs": (
        "classifier",
        _edit(lambda a, m: m.update(label_type="binary")),
        "out_activation_ = 'softmax', but a MLPClassifier for 'binary' outputs "
        "'logistic'",
    ),
    "classifier-identity-output": (
        "classifier",
        _edit(lambda a, m: m["attributes"].update(out_activation_="identity")),
        "out_activation_ = 'identity', but a MLPClassifier for 'multiclass' outputs "
        "'softmax'",
    ),
    "regressor-logistic-output": (
        "regressor",
        _edit(lambda a, m: m["attributes"].update(out_activation_="logistic")),
        "out_activation_ = 'logistic', but a MLPRegressor for 'squared_error' outputs",
    ),
    "poisson-identity-output": (
        "regressor",
        _edit(lambda a, m: m["params"].update(loss="poisson")),
        "out_activation_ = 'identity', but a MLPRegressor for 'poisson' outputs 'exp'",
    ),
    "big-endian": (
        "classifier",
        _edit(_astype(">f8")),
        r"array 'coef_0' has dtype >f8 .*native byte order",
    ),
    "float16": (
        "classifier",
        _edit(_astype(np.float16)),
        r"array 'coef_0' has dtype <f2 \(float16\)",
    ),
    "float128": (
        "regressor",
        _edit(_astype(np.longdouble)),
        r"array 'coef_0' has dtype <f(16|12) \(float(128|96)\)",
    ),
    "zero-itemsize-classes": (
        "classifier",
        _raw(lambda e, m: _replace(e, "classes.npy", _npy((10**12,), "<U0"))),
        r"array 'classes' has dtype <U0",
    ),
    "integer-weights": (
        "classifier",
        _edit(_astype(np.int64)),
        "non-float dtypes: coef_0 int64",
    ),
    "zero-width-layer": (
        "classifier",
        _edit(_zero_width),
        r"coef_0 has shape \(64, 0\): a layer of zero width",
    ),
    "zero-width-linear": (
        "sequential",
        _edit(_linear_sizes(5, 0)),
        r"layer 0 \(Linear\) has sizes \[5, 0\]: zero width",
    ),
    "mismatched-layers": (
        "classifier",
        _edit(lambda a, m: a.update(coef_1=a["coef_1"][:3])),
        r"layer 1 has inconsistent shapes: coef_1 \(3, 10\) and intercept_1 "
        r"\(10,\) after coef_0's 8 outputs",
    ),
    "mismatched-linears": (
        "sequential",
        _edit(_next_linear_takes_7),
        r"layer 2 \(Linear\) has n_in = 7, but the Linear before gives 8",
    ),
}


def _craft(case, saved, path):
    model, craft, _ = CASES[case]
    shutil.copy(saved / f"{model}.npz", path)
    if case == "bzip2-member":
        arrays, meta = _read(path)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as z:
            for k, a in {"__meta__": np.array(json.dumps(meta)), **arrays}.items():
                with z.open(f"{k}.npy", "w") as f:
                    np.lib.format.write_array(f, a)
    else:
        craft(path)


@pytest.mark.parametrize("case", CASES)
def test_a_crafted_file_is_a_value_error_naming_the_field(case, saved, tmp_path):
    path = tmp_path / "m.npz"
    _craft(case, saved, path)
    with pytest.raises(ValueError, match=CASES[case][2]):
        fn.load(path)


@pytest.mark.parametrize("case", CASES)
def test_the_commands_say_so_in_one_line(case, saved, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short paths: the line keeps the words whole
    _craft(case, saved, tmp_path / "m.npz")
    (tmp_path / "x.csv").write_text("0," * 63 + "0\n")
    for args in (["info", "m.npz"], ["predict", "m.npz", "x.csv"]):
        code = cli.main(args)
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert re.search(CASES[case][2], err), (args, err)


@pytest.mark.parametrize(
    "case", ["linear-100000x100000", "header-100000x100000", "directory-64x8000000"]
)
def test_a_hostile_size_allocates_nothing(case, saved, tmp_path):
    path = tmp_path / "m.npz"
    _craft(case, saved, path)
    assert path.stat().st_size < 20_000
    error, peak = _peak(fn.load, path)
    assert isinstance(error, ValueError) and peak < PEAK, (error, peak)


@pytest.fixture(scope="module")
def junk():
    """An entry for :func:`_write_zip`: an unused 2 GiB member of zeros, deflated
    to about 2 MB (the stream is one block of 16 MiB repeated, each ending in a
    full flush, so that no two depend on each other)."""
    block = bytes(16 * 2**20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = (c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)) * 128 + c.flush()
    crc = 0
    for _ in range(128):
        crc = zlib.crc32(block, crc)
    return ("junk.npy", stream, zipfile.ZIP_DEFLATED, 2**31, crc)


@pytest.fixture(scope="module")
def with_2gib_junk(saved, junk, tmp_path_factory):
    """The classifier's file plus the unused 2 GiB member of :func:`junk`."""
    path = tmp_path_factory.mktemp("junk") / "m.npz"
    _write_zip(path, [*_entries(saved / "classifier.npz"), junk])
    return path


def test_an_unused_2gib_member_is_never_read(with_2gib_junk, capsys):
    path = with_2gib_junk
    assert path.stat().st_size < 3 * 2**20
    with zipfile.ZipFile(path) as z:  # an honest member, only a large one
        assert z.getinfo("junk.npy").file_size == 2**31
    model, peak = _peak(fn.load, path)
    assert isinstance(model, fn.MLPClassifier) and peak < PEAK, (model, peak)
    code, peak = _peak(cli.main, ["info", str(path)])
    assert code == 0 and peak < PEAK, (capsys.readouterr().err, peak)
    assert "64 -> 8 -> 10" in capsys.readouterr().out


def test_brackets_inside_strings_do_not_count_as_nesting(saved, tmp_path):
    est = fn.load(saved / "classifier.npz")
    note = '[{"' * 100 + "\\" * 3 + "]"
    fn.save(est, tmp_path / "m.npz", metadata={"note": note, "deep": [[[[1]]]]})
    assert fn.model_files.read_metadata(tmp_path / "m.npz")["note"] == note


def test_a_document_over_16_mib_is_refused_before_it_is_read(saved, tmp_path):
    est = fn.load(saved / "classifier.npz")
    fn.save(est, tmp_path / "m.npz", metadata={"pad": "a" * (4 * 2**20)})
    with pytest.raises(ValueError, match=r"__meta__ is \d+ bytes, more than"):
        fn.load(tmp_path / "m.npz")


@pytest.mark.parametrize("model", ["classifier", "regressor", "sequential"])
def test_compressed_and_fortran_ordered_files_still_load(model, saved, tmp_path):
    arrays, meta = _read(saved / f"{model}.npz")
    key = "0.W" if model == "sequential" else "coef_0"
    arrays[key] = np.asfortranarray(arrays[key])
    np.savez_compressed(tmp_path / "m.npz", __meta__=np.array(json.dumps(meta)),
                        **arrays)  # fmt: skip
    back = fn.load(tmp_path / "m.npz")
    W = back.modules[0].params["W"] if model == "sequential" else back.coefs_[0]
    np.testing.assert_array_equal(W, arrays[key])
    assert W.flags.c_contiguous


def test_every_kind_the_format_holds_has_a_builder():
    from fastnet import model_files

    assert set(model_files.BUILDERS) == set(model_files.KINDS)


# -- checkpoints: read as model files are -------------------------------------------
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A ``Trainer``'s checkpoint after 2 epochs, and the command's (digits, 2
    epochs)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    train_script.make_trainer(folder / "trainer.npz", epochs=2).fit(
        *train_script.data()
    )
    args = ["train", "--epochs", "2", "--hidden", "8", "--out", str(folder / "m.npz")]
    assert cli.main([*args, "--checkpoint", str(folder / "command.npz")]) == 0
    return folder


def _resume_trainer(path):
    """Resume the ``Trainer`` fit of ``path``, already at its last epoch: only the
    checkpoint's load runs."""
    trainer = train_script.make_trainer(path, epochs=2)
    return trainer.fit(*train_script.data(), resume=True)


def _resume_command(path):
    """``fastnet train --resume`` from ``path`` for one more epoch: the exit code."""
    return cli.main(["train", "--checkpoint", str(path), "--resume", "--epochs", "3"])


@pytest.mark.parametrize(
    "name,resume", [("trainer", _resume_trainer), ("command", _resume_command)]
)
def test_a_checkpoint_s_unused_2gib_member_is_never_read(
    name, resume, checkpoints, junk, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the command writes its model file here
    path = tmp_path / "c.npz"
    _write_zip(path, [*_entries(checkpoints / f"{name}.npz"), junk])
    assert path.stat().st_size < 3 * 2**20
    result, peak = _peak(resume, path)
    assert not isinstance(result, Exception) and peak < PEAK, (result, peak)
    assert result == 0 if name == "command" else len(result.loss) == 2


def _slot_lies(entries, meta):
    """The first Linear's Adam moment ``m`` declared 100000 x 100000 in its .npy
    header, its member holding 320 bytes."""
    return _replace(entries, "opt/0.W/m.npy", _npy((100000, 100000), data=bytes(320)))


def _weights_lie(entries, meta):
    """The first Linear's weights declared as their own shape, holding 8 bytes."""
    return _replace(entries, "param/0.W.npy", _npy((64, 32), "<f4", bytes(8)))


def _directory_lies(entries, meta):
    """The moment ``m`` a deflated .npy header alone (of the right shape and dtype),
    its directory entry declaring the whole array."""
    head = _npy((2048,), "<f4")
    deflated = zlib.compress(head, wbits=-15)
    return _replace(entries, "opt/0.W/m.npy", deflated, head, len(head) + 2048 * 4)


def _slot_missing(entries, meta):
    return [e for e in entries if e[0] != "opt/0.W/v.npy"]


def _meta_malformed(entries, meta):
    meta["history"] = {"no such field": 1}
    return _meta_text(json.dumps(meta))(entries, meta)


CHECKPOINT_CASES = {
    "slot-header-100000x100000": (
        _slot_lies,
        r"array 'opt/0\.W/m' declares shape \(100000, 100000\) of float64, but its "
        "member holds 320 bytes of data",
    ),
    "weights-header-8-bytes": (
        _weights_lie,
        r"array 'param/0\.W' declares shape \(64, 32\) of float32, but its member "
        "holds 8 bytes",
    ),
    "slot-directory-whole": (
        _directory_lies,
        r"array 'opt/0\.W/m' is (not a readable \.npy|truncated or corrupt)",
    ),
    "slot-missing": (
        _slot_missing,
        r"does not match this model \(optimizer state 'opt/0\.W/v': \d+ of float",
    ),
    "meta-malformed": (_meta_malformed, "missing or malformed field"),
}


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_a_damaged_trainer_checkpoint_is_a_value_error(case, checkpoints, tmp_path):
    craft, words = CHECKPOINT_CASES[case]
    path = tmp_path / "c.npz"
    _raw(craft)(shutil.copy(checkpoints / "trainer.npz", path))
    error, peak = _peak(_resume_trainer, path)
    assert isinstance(error, ValueError) and peak < PEAK, (error, peak)
    assert re.search(words, str(error)) and str(path) in str(error), error


@pytest.mark.parametrize("case", ["slot-header-100000x100000", "slot-missing"])
def test_resuming_a_damaged_checkpoint_says_so_in_one_line(
    case, checkpoints, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # short paths: the line keeps the words whole
    craft, words = CHECKPOINT_CASES[case]
    _raw(craft)(shutil.copy(checkpoints / "command.npz", tmp_path / "c.npz"))
    code, peak = _peak(_resume_command, "c.npz")
    err = capsys.readouterr().err
    assert code == 2 and peak < PEAK, (err, peak)
    # the last line: the fit's progress bar may come before it
    last = err.strip().splitlines()[-1]
    assert last.startswith("fastnet: error: checkpoint 'c.npz'"), err
    assert "Traceback" not in err and re.search(words, last), err
