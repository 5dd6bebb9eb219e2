"""Where the kernel cache lives: outside the package, chosen by FASTNET_CACHE_DIR or
NUMBA_CACHE_DIR, and a folder that cannot be written never stops fastnet.

Each case runs in a fresh process (the folder is chosen when the kernels are made,
at import), compiling one small kernel.
"""

import os
import pathlib
import subprocess
import sys

import pytest

import fastnet

PACKAGE = pathlib.Path(fastnet.__file__).parent
KERNELS = pathlib.Path(fastnet.kernels.__file__).parent

# compiles and runs one kernel, then prints where its cache lives
CODE = """
import warnings, numpy as np
warnings.simplefilter("error", RuntimeWarning) if {strict} else None
from fastnet import kernels
out = np.empty(3)
kernels.ACTIVATIONS["relu"].forward[0](np.array([-1.0, 0.0, 2.0]), 0.0, out)
assert out.tolist() == [0.0, 0.0, 2.0]
cache = kernels.ACTIVATIONS["relu"].forward[0]._cache
print(cache._impl.locator.get_cache_path() if hasattr(cache, "_impl") else "")
"""


def _run(tmp_path, strict=True, **env):
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NUMBA_CACHE_DIR", "FASTNET_CACHE_DIR", "XDG_CACHE_HOME")
    }
    return subprocess.run(
        [sys.executable, "-c", CODE.format(strict=strict)],
        env={**base, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )


def _cache_files(folder):
    return sorted(
        p for p in pathlib.Path(folder).rglob("*") if p.suffix in (".nbi", ".nbc")
    )


def test_fastnet_cache_dir_chooses_the_folder(tmp_path):
    run = _run(tmp_path, FASTNET_CACHE_DIR=str(tmp_path / "cache"))
    assert run.returncode == 0, run.stderr
    assert pathlib.Path(run.stdout.strip()).parents[1] == tmp_path / "cache"
    assert _cache_files(tmp_path / "cache"), "no cache files written"


def test_numba_cache_dir_wins(tmp_path):
    run = _run(
        tmp_path,
        FASTNET_CACHE_DIR=str(tmp_path / "fastnet"),
        NUMBA_CACHE_DIR=str(tmp_path / "numba"),
    )
    assert run.returncode == 0, run.stderr
    assert _cache_files(tmp_path / "numba")
    assert not (tmp_path / "fastnet").exists()


def test_default_is_the_per_user_cache_folder(tmp_path):
    # XDG_CACHE_HOME is the per-user cache root on Linux (Numba's appdirs reads it)
    if sys.platform != "linux":
        pytest.skip("the XDG convention is Linux's")
    run = _run(tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert run.returncode == 0, run.stderr
    assert pathlib.Path(run.stdout.strip()).parents[1] == tmp_path / "xdg" / "fastnet"
    assert _cache_files(tmp_path / "xdg" / "fastnet")


def test_nothing_is_written_inside_the_package(tmp_path):
    before = _cache_files(PACKAGE) + _cache_files(KERNELS)
    run = _run(tmp_path, FASTNET_CACHE_DIR=str(tmp_path / "cache"))
    assert run.returncode == 0, run.stderr
    assert _cache_files(PACKAGE) + _cache_files(KERNELS) == before == []


def test_an_unwritable_cache_folder_warns_once_and_still_computes(tmp_path):
    # (a path below a regular file cannot be created, even by root, for whom
    # permission bits do not stop writes)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    run = _run(tmp_path, strict=False, FASTNET_CACHE_DIR=str(blocker / "cache"))
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("cannot write its kernel cache folder") == 1, run.stderr
    assert run.stdout.strip() == ""  # the kernel is uncached, and it ran


def test_a_changed_kernel_source_anywhere_gets_a_new_cache_folder(tmp_path):
    # The whole-network kernels compile in code from other files (activations,
    # losses); Numba's stamp only covers the file defining a kernel, so after an
    # upgrade that changed activations.py the old machine code was loaded.
    from fastnet.kernels import _cache

    copy = tmp_path / "kernels"
    copy.mkdir()
    for path in pathlib.Path(_cache.__file__).parent.glob("*.py"):
        (copy / path.name).write_bytes(path.read_bytes())
    assert _cache.source_hash(copy) == _cache.SOURCE_HASH
    with open(copy / "activations.py", "a") as f:
        f.write("\n# changed\n")
    assert _cache.source_hash(copy) != _cache.SOURCE_HASH
    assert (
        _cache.SOURCE_HASH
        in fastnet.kernels.mlp_epoch._cache._impl.locator.get_cache_path()
    )


# -- the cache's files: records (kernels/_paths.py) ------------------------------------
def test_a_record_reads_back_what_was_written_and_names_itself(tmp_path):
    from fastnet.kernels import _paths

    path = tmp_path / "kernel.nbi"
    assert _paths.read_record(path) is None  # no file: a plain miss
    _paths.write_record(path, ["numba-index", "abc", "kernel.nbi"], b"body\n\0")
    assert _paths.read_record(path) == (
        ["numba-index", "abc", "kernel.nbi"],
        b"body\n\0",
    )
    with pytest.raises(ValueError, match="printable ASCII words"):
        _paths.write_record(path, ["two words"], b"")
    assert os.listdir(tmp_path) == ["kernel.nbi"]


def test_a_record_that_is_not_a_whole_regular_file_is_damaged(tmp_path, monkeypatch):
    from fastnet.kernels import _paths

    good = tmp_path / "good"
    _paths.write_record(good, ["data", "good"], bytes(range(256)) * 4)
    data = good.read_bytes()
    bad = {
        "truncated": data[: len(data) // 2],
        "flipped": data[:-1] + bytes([data[-1] ^ 1]),
        "zeros": bytes(len(data)),
        "empty": b"",
        "no header": b"\xff" * 10,
    }
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "folder").mkdir()
    (tmp_path / "dev-zero").symlink_to("/dev/zero")
    (tmp_path / "link").symlink_to(good)  # a link even to a good record
    os.mkfifo(tmp_path / "fifo")  # refused, not waited on
    for name in [*bad, "folder", "dev-zero", "link", "fifo"]:
        with pytest.raises(_paths.Damaged):
            _paths.read_record(tmp_path / name)
    monkeypatch.setattr(_paths, "MAX_BYTES", len(data) - 1)
    with pytest.raises(_paths.Damaged, match="larger than"):
        _paths.read_record(good)


def test_a_record_replaces_a_folder_or_link_and_leaves_no_temporary_file(
    tmp_path, monkeypatch
):
    import errno

    from fastnet.kernels import _paths

    target = tmp_path / "target"
    target.write_bytes(b"kept")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link").symlink_to(target)
    for name in ("folder", "link"):
        _paths.write_record(tmp_path / name, ["x"], b"new")
        assert _paths.read_record(tmp_path / name) == (["x"], b"new")
    assert target.read_bytes() == b"kept"  # the link was replaced, not followed

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space"):
        _paths.write_record(tmp_path / "folder", ["x"], b"newer")
    monkeypatch.undo()
    assert _paths.read_record(tmp_path / "folder") == (["x"], b"new")
    assert sorted(os.listdir(tmp_path)) == ["folder", "link", "target"]


def test_an_object_symbol_must_be_numbas_wrapper_of_the_kernel_asked_for():
    from fastnet.kernels._numba_internals import wraps_kernel

    symbol = (
        "cfunc._ZN7fastnet7kernels10mlp_cfuncs33c_relu_bias_act_float64__b45ad759"
        "B2v1B114c8tJTIeFIjxB2IKSgI4CrvSCKg1MMbCQQPKkLTj8gEEF9aYtuj_2br1fOE10float64"
    )
    assert wraps_kernel(symbol, "c_relu_bias_act_float64")
    for name in ("c_identity_bias_act_float64", "relu_bias_act_float64", "c_relu"):
        assert not wraps_kernel(symbol, name)
    assert not wraps_kernel(symbol[:60], "c_relu_bias_act_float64")
    assert not wraps_kernel("c_relu_bias_act_float64", "c_relu_bias_act_float64")
