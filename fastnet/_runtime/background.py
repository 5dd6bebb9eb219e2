"""A background compilation for a cold cache: a helper process that compiles the
longest C kernels into the native cache while the process that started it imports
and reads its data.

``python -m fastnet._runtime.background NAME...`` is the helper. It runs at a lower
priority than the process that started it, and finishes its list even where that
process has ended (the kernels are then there for the next one). Helpers of
processes that share a cache folder take turns (an exclusive lock on a file in
it): a later one then finds the kernels written and compiles nothing. Every file is
written atomically, so a helper stopped midway leaves no partial file.
"""

import os
import subprocess
import sys
import threading
import time

from . import addresses

#: what a background helper compiles: the epoch (the longest compilation of a cold
#: default fit), then a float64 classifier's prediction kernels; the process that
#: started it compiles its setting's epoch kernels meanwhile
BACKGROUND = (
    "c_epoch",
    "c_forward",
    "c_identity_bias_act_float64",
    "c_softmax_output_float64",
    "c_all_finite_float64",
)
#: the longest a process waits for a background compilation of one kernel
WAIT_S = 120.0

_lock = threading.Lock()
#: "background": None (none started) or (pid, the helper, the names it compiles)
_state = {}


def compile_in_background(names=BACKGROUND):
    """Start compiling the C kernels ``names`` that the native cache lacks in a
    helper process (this module), once per process.

    Called where a fit is coming (the estimators' first import, ``fastnet train``)
    and before the slow imports: with an empty cache the helper compiles while this
    process imports scikit-learn and reads its data, and then compiles the rest of
    its setting's kernels itself, side by side with the helper, on a second core.
    Numba's compiler holds the GIL, so only a second process runs two compilations
    at once. A kernel the helper owns is then waited for (:func:`wait_for`), not
    compiled twice; where the helper fails, this process compiles it as before.

    Nothing happens where the cache holds them all, off Linux (no native cache),
    or with ``FASTNET_BACKGROUND_COMPILE=0``. Helpers of several processes sharing
    a cache folder take turns (a lock file), so each kernel compiles once."""
    if "background" in _state:
        return
    with _lock:
        if "background" in _state:
            return
        _state["background"] = None
        if (
            os.environ.get("FASTNET_BACKGROUND_COMPILE", "1") == "0"
            or not addresses.native()
            or not sys.executable
        ):
            return
        folder = addresses.object_folder()
        if folder is None:
            return
        missing = [n for n in names if not os.path.exists(folder.path(n))]
        if not missing:
            return
        try:
            os.makedirs(folder.folder, exist_ok=True)
            helper = subprocess.Popen(
                [sys.executable, "-m", "fastnet._runtime.background", *missing],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:  # a folder that cannot be written, no interpreter to run
            return
        _state["background"] = (os.getpid(), helper, frozenset(missing))


def _helper_for(name):
    """This process's background helper, where it compiles ``name``; else None."""
    started = _state.get("background")
    if started and started[0] == os.getpid() and name in started[2]:
        return started[1]
    return None


def in_background(name):
    """Whether a background helper of this process compiles ``name``."""
    return _helper_for(name) is not None


def wait_for(name):
    """The address of ``name`` once the background helper has written it; None
    where no helper compiles it, the helper ended without it, or it took longer
    than :data:`WAIT_S` (the caller then compiles it)."""
    helper = _helper_for(name)
    if helper is None:
        return None
    deadline = time.monotonic() + WAIT_S
    while True:
        address = addresses.lookup(name)
        if address is not None:
            return address
        if helper.poll() is not None or time.monotonic() > deadline:
            return addresses.lookup(name)
        time.sleep(0.005)


def main(names):
    """The helper: compile ``names`` into the native cache, in turn with other
    helpers of the same folder."""
    import fcntl  # (Linux: only there is a helper started)

    from . import c_kernels

    os.nice(5)  # behind the process that started it, whose fit may want both cores
    folder = addresses.object_folder()
    if folder is None:
        return 1
    os.makedirs(folder.folder, exist_ok=True)
    with open(os.path.join(folder.folder, "background.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in names:
            c_kernels.ensure(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
