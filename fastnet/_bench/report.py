"""The benchmark report: interleaved repetitions, per-repetition ratios, one table.

For each workload of :mod:`fastnet._bench.workloads`, every entry is called once to
compile
and allocate (not timed), then a calibration picks how many calls make one sample
(samples of at least ``target`` seconds, so microsecond calls are not lost in the
clock's resolution). Then each repetition times one sample of every entry, in an
order rotated by one and reversed every other repetition, so no entry always runs
first, last or after the same neighbour, and each sample starts after a pause
(:data:`SETTLE`). fastnet's time divided by a peer's in the
same repetition is one ratio; the table gives the median (min-max) of those ratios
for every fastnet entry against every peer, and each entry's median (min-max) time
per call.
"""

import contextlib
import gc
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from . import workloads as _bench
from .workloads import THREADS

SHARED = (
    "The machine may be shared: other processes can slow any run, so the ratios "
    "(fastnet's time over a peer's, within each repetition), not the absolute "
    "times, are the result."
)


#: seconds of rest before each timed sample. A BLAS or OpenMP pool spins for a
#: while after its work (OpenBLAS about 2^28 cycles, some 0.1 s), and on two cores
#: the previous entry's spinning threads take the next entry's second core: fastnet's
#: 784-256-128-10 epoch right after NumPy's GEMM floor was markedly slower than after
#: this pause (fastnet and NumPy have separate OpenBLAS pools: SciPy's and NumPy's
#: own; the figures are in bench/REPORT.md).
SETTLE = 0.2


def _sample(fn, number):
    """Seconds per call over ``number`` calls, with the garbage collector off (as
    timeit does: a collection triggered by another entry's garbage is not ours)."""
    gc.disable()
    try:
        began = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - began) / number
    finally:
        gc.enable()


def _calls_per_sample(fn, target):
    number = 1
    while True:
        seconds = _sample(fn, number) * number
        if seconds >= 0.2 * target or number >= 10**6:
            return max(1, math.ceil(number * target / max(seconds, 1e-9)))
        number *= 10


def _order(names, rep):
    k = rep % len(names)
    order = names[k:] + names[:k]
    return order[::-1] if rep % 2 else order


def measure(peers, repeats, target, settle=SETTLE):
    """``name -> [seconds per call in repetition i]``; warm-up excluded; ``settle``
    seconds of rest before each sample."""
    names = list(peers)
    for fn in peers.values():
        fn()  # warm-up: compilation, first allocations
    numbers = {name: _calls_per_sample(peers[name], target) for name in names}
    times = {name: [0.0] * repeats for name in names}
    for rep in range(repeats):
        for name in _order(names, rep):
            time.sleep(settle)
            times[name][rep] = _sample(peers[name], numbers[name])
    return times


def ratios(times):
    """``(fastnet entry, peer) -> [fastnet_i / peer_i for each repetition i]``."""
    ours = [k for k in times if k.startswith("fastnet")]
    peers = [k for k in times if not k.startswith("fastnet")]
    return {
        (f, p): [a / b for a, b in zip(times[f], times[p], strict=True)]
        for f in ours
        for p in peers
    }


def _git_commit():
    here = os.path.dirname(os.path.abspath(__file__))

    def git(*args):
        run = subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, check=True
        )
        return run.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not run from a git checkout)"
    return f"{head} (with uncommitted changes)" if dirty else head


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(repeats, torch):
    import numba
    import scipy
    import sklearn

    import fastnet

    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    versions = [
        f"Python {platform.python_version()}",
        f"fastnet {fastnet.__version__}",
        f"NumPy {np.__version__}",
        f"Numba {numba.__version__}",
        f"SciPy {scipy.__version__}",
        f"scikit-learn {sklearn.__version__}",
        f"PyTorch {torch.__version__}" if torch else "PyTorch not installed",
        _ort_version(),
    ]
    return [
        "# fastnet benchmark",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- Git commit: {_git_commit()}",
        f"- Machine: {_cpu()}, {cores} logical cores ({usable} usable by this "
        f"process); {platform.system()} {platform.release()}",
        f"- Versions: {', '.join(versions)}",
        f"- Threads: {THREADS} for every library (numba.set_num_threads, BLAS "
        "through threadpoolctl, torch.set_num_threads, ONNX Runtime's "
        "intra_op_num_threads)",
        f"- Inference peers hold fastnet's weights; their probabilities matched "
        f"fastnet's (rtol {_bench.PROBA_RTOL:g}, atol {_bench.PROBA_ATOL:g}) "
        "before timing.",
        f"- Repetitions: {repeats}, interleaved: each runs every entry once, in an "
        "order rotated and reversed between repetitions, each sample after "
        f"{SETTLE} s of rest (the previous entry's BLAS threads spin for a while); "
        "compilation and warm-up excluded. Times are per call, median (min-max) "
        "over repetitions; ratios are fastnet / peer per repetition, median "
        "(min-max); below 1 means fastnet is faster.",
        f"- {SHARED}",
    ]


def _ort_version():
    ort = _bench._onnxruntime()
    if ort is None:
        return "ONNX Runtime not installed (or skl2onnx)"
    import skl2onnx

    return f"ONNX Runtime {ort.__version__}, skl2onnx {skl2onnx.__version__}"


def _fmt(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _spread(values, fmt):
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"


def _ratio(r):
    return f"{r:.2f}"


def table(title, times):
    """The markdown lines of one workload: a row per entry, its time, and one
    ratio column per fastnet entry (cells on peers' rows)."""
    ours = [k for k in times if k.startswith("fastnet")]
    rs = ratios(times)
    lines = [
        f"## {title}",
        "",
        "| entry | time per call | " + " | ".join(f"{f} / peer" for f in ours) + " |",
        "| --- | --- |" + " --- |" * len(ours),
    ]
    for name, ts in times.items():
        cells = ["—" if name in ours else _spread(rs[f, name], _ratio) for f in ours]
        lines.append(f"| {name} | {_spread(ts, _fmt)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


@contextlib.contextmanager
def same_threads(torch):
    """Numba, BLAS and torch at ``THREADS`` threads, restored afterwards."""
    import numba
    from threadpoolctl import threadpool_limits

    numba_before = numba.get_num_threads()
    torch_before = torch.get_num_threads() if torch else None
    numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))
    if torch:
        torch.set_num_threads(THREADS)
    try:
        with threadpool_limits(limits=THREADS):
            yield
    finally:
        numba.set_num_threads(numba_before)
        if torch:
            torch.set_num_threads(torch_before)


def report(quick=False, tiny=False):
    """Print the report. ``quick``: 5 repetitions of short samples; ``tiny``: toy
    sizes, one call per sample and no fresh-process timings (for tests)."""
    repeats = 5 if quick or tiny else 11
    target = 0.0 if tiny else 0.05 if quick else 0.2
    torch = _bench._torch()
    print("\n".join(header(repeats, torch)), end="\n\n")
    with same_threads(torch):
        for title, build in _bench.workloads(tiny=tiny).items():
            times = measure(build(), repeats, target, 0.0 if tiny else SETTLE)
            print("\n".join(table(title, times)))
            sys.stdout.flush()
        if not tiny:
            _first_result(1 if quick else 3)
    return 0


def _first_result(runs):
    print("## Time to first result (a fresh process; no peer)\n")
    print("| run | seconds, median (min-max) |", "| --- | --- |", sep="\n")
    for cold in (True, False):
        ((name, fn),) = _bench.time_to_first_result(cold).items()
        ts = [fn() for _ in range(runs)]
        print(f"| {name} | {_spread(ts, _fmt)} |")
    print()
