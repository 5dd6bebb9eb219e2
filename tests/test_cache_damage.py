"""A damaged kernel cache is a miss, never an error or a wrong answer; a full disk is
a warning.

One cache is populated by a small workload that reads both of fastnet's caches: an
``adam`` fit and its prediction (the native cache's object files), an ``lbfgs`` fit
and a module's forward and backward (Numba's cache, ``.nbi`` index and ``.nbc``
data files). Then every file of a copy is damaged in one way at a time: swapped
with another file of its kind, truncated, a byte flipped, zeroed, replaced by a
folder, replaced by a link to ``/dev/zero``. The next run must give the undamaged
run's answers bit for bit, with exactly one warning, and rewrite every file; the
run after it must be clean. A data file is only read through an intact index, so
each way of damage takes two runs: the object files and the indexes, then the data
files.

A full disk (a 64 KiB tmpfs where one can be mounted, and a fake that fills each
file at 4 KiB) gives the same answers, one warning, and no temporary file left.

Each run is a fresh process (``tests/processes.py``), with the background
compilation off (``tests/conftest.py``): its helper could still be writing when a
file is damaged.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

from fastnet.kernels import _paths
from tests.processes import fresh_env, python_lines

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="links to /dev/zero, ELF objects"
)

WORKLOAD = """
import hashlib, warnings
warnings.simplefilter("ignore")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", RuntimeWarning)
    import numpy as np, fastnet as fn
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    y = (X[:, 0] > 0).astype(int)
    adam = fn.MLPClassifier((4,), max_iter=3, random_state=0).fit(X, y)
    lbfgs = fn.MLPClassifier((4,), solver="lbfgs", max_iter=3, random_state=0)
    lbfgs.fit(X, y)
    relu = fn.ReLU()
    out = [*adam.coefs_, *adam.intercepts_, adam.predict_proba(X), *lbfgs.coefs_,
           *lbfgs.intercepts_, relu.forward(X), relu.backward(X - 0.5)]
print(hashlib.sha256(b"".join(a.tobytes() for a in out)).hexdigest())
for w in caught:
    if issubclass(w.category, RuntimeWarning):
        print("warning:", w.message)
"""


def _run(cache, code=WORKLOAD):
    """``(answer, warnings)`` of ``code`` run with the kernel cache ``cache``."""
    lines = python_lines(code, fresh_env(cache))
    return lines[0], [line for line in lines[1:] if line.startswith("warning:")]


def _files(cache, suffix):
    return sorted(p for p in pathlib.Path(cache).rglob(f"*{suffix}") if p.is_file())


def _swap(paths):
    contents = [p.read_bytes() for p in paths]
    for path, data in zip(paths, contents[1:] + contents[:1], strict=True):
        path.write_bytes(data)


def _each(change):
    def damage(paths):
        for path in paths:
            change(path)

    return damage


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _zero(path):
    path.write_bytes(bytes(path.stat().st_size))


def _replace(make):
    def change(path):
        path.unlink()
        make(path)

    return change


DAMAGES = {
    "swapped": _swap,
    "truncated": _each(_truncate),
    "flipped": _each(_flip),
    "zeros": _each(_zero),
    "folder": _each(_replace(os.mkdir)),
    "dev-zero": _each(_replace(lambda p: os.symlink("/dev/zero", p))),
}
#: the files damaged together in one run: an index's damage hides its data files'
BATCHES = {"objects-and-indexes": (".o", ".nbi"), "data": (".nbc",)}


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """A populated cache, and the workload's answer with it."""
    cache = tmp_path_factory.mktemp("populated")
    cold, said = _run(cache)
    assert not said, said
    counts = {suffix: len(_files(cache, suffix)) for suffix in (".o", ".nbi", ".nbc")}
    # the adam path's kernels (epoch, forward and their small C kernels) as
    # objects, the lbfgs and module paths' through Numba (an index and a data
    # file each)
    assert counts[".o"] >= 8 and counts[".nbi"] == counts[".nbc"] >= 6, counts
    warm, said = _run(cache)
    assert warm == cold and not said, said
    return cache, cold


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("damage", DAMAGES)
def test_every_damaged_cache_file_is_a_miss_and_is_rewritten(
    populated, tmp_path, damage, batch
):
    source, answer = populated
    cache = tmp_path / "cache"
    shutil.copytree(source, cache)
    damaged = []
    for suffix in BATCHES[batch]:
        paths = _files(cache, suffix)
        DAMAGES[damage](paths)
        damaged += paths
    assert damaged
    got, said = _run(cache)
    assert got == answer
    assert len(said) == 1 and "cannot trust" in said[0], said
    for path in damaged:  # rewritten, as a record of its own
        assert path.is_file() and not path.is_symlink(), path
        assert _paths.read_record(path) is not None
    assert not list(cache.rglob("*.tmp"))
    assert _run(cache) == (answer, [])


def test_records_of_another_kernel_source_or_machine_are_misses(populated, tmp_path):
    # consistent records (their digests match) that are not this process's: a
    # kernel's object relabelled as another's, one of another source or another
    # CPU, and one whose code needs a symbol no one defines (MCJIT would abort the
    # process): all compiled again, one warning (the last is no damage)
    source, answer = populated
    cache = tmp_path / "cache"
    shutil.copytree(source, cache)
    objects = {p.stem: p for p in _files(cache, ".o")}
    relabelled = {"c_relu_bias_act_float64": "c_identity_bias_act_float64"}
    changes = {"c_epoch": (3, "0" * 12), "c_forward": (4, "f" * 12)}
    for name, path in objects.items():
        fields, obj = _paths.read_record(path)
        if name in relabelled:
            fields, obj = _paths.read_record(objects[relabelled[name]])
            fields[2] = name
        elif name in changes:
            at, value = changes[name]
            fields[at] = value
        elif name == "c_relu_act_backward_float64":
            assert obj.count(b"numba_gil_ensure") == 1
            obj = obj.replace(b"numba_gil_ensure", b"nobody_defines_t")
            fields[1] = hashlib.sha256(obj).hexdigest()
        else:
            continue
        _paths.write_record(path, fields, obj)
    got, said = _run(cache)
    assert got == answer
    assert len(said) == 1 and "cannot trust" in said[0], said
    assert _run(cache) == (answer, [])


# fills every file in the cache at 4 KiB, then says the disk is full
FULL_DISK = """
import errno, os
_cache, _write = os.path.realpath(os.environ["FASTNET_CACHE_DIR"]), os.write
def _full_disk(fd, data):
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        target = ""
    if target.startswith(_cache + os.sep):
        room = 4096 - os.fstat(fd).st_size
        if room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        data = data[:room]
    return _write(fd, data)
os.write = _full_disk
"""

# two runs on a 64 KiB tmpfs ($1), in a mount namespace of their own
ON_TMPFS = """
set -e
mount -t tmpfs -o size=64k tmpfs "$1"
"$2" -c "$3"
echo ---
"$2" -c "$3"
echo ---
find "$1" -name "*.tmp"
"""


def _on_tmpfs(disk):
    """The output lines of :data:`ON_TMPFS`; a skip where no tmpfs can be mounted
    (no root, no user namespaces)."""
    disk.mkdir()
    command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c"]
    if (
        not shutil.which("unshare")
        or subprocess.run(
            [*command, f"mount -t tmpfs -o size=64k tmpfs {disk}"], capture_output=True
        ).returncode
    ):
        pytest.skip("no tmpfs can be mounted here (unshare needs user namespaces)")
    run = subprocess.run(
        [*command, ON_TMPFS, "sh", str(disk), sys.executable, WORKLOAD],
        env=fresh_env(disk),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


@pytest.mark.parametrize("disk", ["tmpfs", "fake"])
def test_a_full_disk_warns_once_and_leaves_no_temporary_files(
    populated, tmp_path, disk
):
    _, answer = populated
    if disk == "tmpfs":
        *runs, left = _on_tmpfs(tmp_path / "disk").split("---\n")
    else:
        cache = tmp_path / "cache"
        code = textwrap.dedent(FULL_DISK) + WORKLOAD
        runs = ["\n".join(python_lines(code, fresh_env(cache))) for _ in range(2)]
        left = "\n".join(map(str, cache.rglob("*.tmp")))
        # what fitted is whole: written files are records
        written = [p for p in cache.rglob("*") if p.suffix in (".o", ".nbi", ".nbc")]
        assert all(_paths.read_record(p) for p in written)
    for run in runs:  # the first cold, the second with what the first could write
        got, *said = run.splitlines()
        assert got == answer
        assert len(said) == 1 and "cannot write" in said[0], said
    assert left.strip() == ""
