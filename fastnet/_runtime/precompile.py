"""``fastnet compile``: every C kernel of the estimators' and the Trainer's compiled
paths, compiled ahead of time into the native cache.

A first fit compiles only what its setting needs, on first use (the native cache,
``fastnet._runtime.addresses``, then keeps it for later processes). A new setting
(another activation, loss, optimizer or dtype) therefore pays Numba's import and
start and its own few kernels. Where that matters (a notebook that tries several
settings, an image built once and started often, a shared machine), one ``fastnet
compile`` makes every later process warm for every setting: an ``adam`` or ``sgd``
fit and every prediction then run without importing Numba at all.

What it compiles: ``kernels.mlp_cfuncs.makers`` (the epoch and the forward, and for
each activation, loss, optimizer, output and dtype their small kernels). Kernels the
cache holds already are left alone; a missing or damaged file is compiled again.
The work is shared between ``jobs`` worker processes (``python -m
fastnet._runtime.precompile``: each imports Numba once and compiles one kernel after
another, the longest first); Numba's compiler holds the GIL, so threads would not
run two compilations at once. Every file is written atomically, so several
``fastnet compile`` runs, or fits, at once are safe; an interrupted run keeps what
it finished.

Not covered: the ``lbfgs`` solver and the module-by-module path (``Linear`` and
the other modules' kernels), which go through Numba's own cache as before.
"""

import contextlib
import os
import selectors
import subprocess
import sys
import tempfile
import time
import warnings

from ..kernels._paths import cache_dir
from . import addresses, c_kernels

#: the kernel that takes longest to compile, scheduled first
_FIRST = ("c_epoch", "c_forward")


def kernel_names():
    """The names of every C kernel ``fastnet compile`` compiles (this imports
    Numba and ``fastnet.kernels.mlp_cfuncs``, without compiling anything)."""
    names = sorted(c_kernels.makers_module().makers())
    return [n for n in _FIRST if n in names] + [n for n in names if n not in _FIRST]


def default_jobs():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_writable():
    """A ``RuntimeError`` now, not after the compilation, where the native cache's
    folder cannot be written."""
    folder = addresses.object_folder()
    if folder is None or not addresses.native():
        return
    try:
        os.makedirs(folder.folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder.folder, suffix=".tmp"):
            pass
    except OSError as exc:
        raise RuntimeError(
            f"the kernel cache {folder.folder} cannot be written: {exc.strerror or exc}"
        ) from None


def precompile(jobs=None, each=None):
    """Compile every kernel of :func:`kernel_names` that the native cache lacks,
    in ``jobs`` worker processes (default: :func:`default_jobs`); ``each(name,
    seconds)`` is called as each one finishes.

    Returns ``(compiled, cached, workers, folder)``: the names compiled now, the
    number found in the cache already, the worker processes used, and the cache's
    folder. A ``RuntimeError`` names any
    kernel the cache still lacks afterwards (Linux, where the native cache is
    written; elsewhere Numba's own cache keeps them)."""
    if jobs is None:
        jobs = default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise TypeError(f"jobs must be an int, got {type(jobs).__name__}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    with warnings.catch_warnings():  # an unwritable cache: the error below says it
        warnings.simplefilter("ignore", RuntimeWarning)
        names = kernel_names()
    missing = [n for n in names if addresses.lookup(n) is None]
    workers = min(jobs, len(missing))
    if missing:
        _check_writable()
        _run_workers(missing, workers, each)
        if sys.platform.startswith("linux"):
            lacking = [n for n in missing if addresses.lookup(n) is None]
            if lacking:
                raise RuntimeError(
                    f"{len(lacking)} kernels were compiled but could not be cached "
                    f"in {cache_dir()} (first: {lacking[0]}); is it writable?"
                )
    return missing, len(names) - len(missing), workers, cache_dir()


def _run_workers(names, jobs, each):
    """Compile ``names`` in ``jobs`` worker processes, handing each worker its next
    kernel as it reports the last one done (the longest first, so they end close
    together). Workers are ended, whatever happens here (an interruption included),
    before this returns; their error output is kept out of the terminal and the
    last line of a failed worker's is in the ``RuntimeError``."""
    queue = list(names)
    workers = []
    selector = selectors.DefaultSelector()

    def give(worker):
        if queue:
            worker.stdin.write(queue.pop(0) + "\n")
            worker.stdin.flush()
        else:
            worker.stdin.close()

    try:
        for _ in range(jobs):
            errors = tempfile.TemporaryFile("w+")
            worker = subprocess.Popen(
                [sys.executable, "-m", "fastnet._runtime.precompile"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            worker.errors = errors
            workers.append(worker)
            selector.register(worker.stdout, selectors.EVENT_READ, worker)
            give(worker)
        running = len(workers)
        while running:
            for key, _ in selector.select():
                worker = key.data
                line = worker.stdout.readline()
                if line:
                    name, seconds = line.split()
                    if each is not None:
                        each(name, float(seconds))
                    give(worker)
                    continue
                selector.unregister(worker.stdout)
                running -= 1
                if worker.wait() != 0:
                    worker.errors.seek(0)
                    said = worker.errors.read().strip().splitlines() or ["no output"]
                    raise RuntimeError(
                        f"a compiling process failed (exit {worker.returncode}): "
                        f"{said[-1]}"
                    )
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
            worker.errors.close()
            for stream in (worker.stdin, worker.stdout):
                with contextlib.suppress(OSError):
                    stream.close()
        selector.close()


def _worker():
    """A worker of :func:`_run_workers`: compiles each kernel named on a line of its
    standard input, and says ``name seconds`` on a line when it is done."""
    for line in sys.stdin:
        name = line.strip()
        start = time.perf_counter()
        c_kernels.ensure(name)
        print(name, f"{time.perf_counter() - start:.3f}", flush=True)


if __name__ == "__main__":
    _worker()
