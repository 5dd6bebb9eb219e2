"""``python -m fastnet._runtime.background NAME...``: compile the named C kernels into
the
native cache; the helper process of
:func:`fastnet._runtime.native.compile_in_background`.

It runs at a lower priority than the process that started it, and finishes its list
even where that process has ended (the kernels are then there for the next one).
Helpers of processes that share a cache folder take turns (an exclusive lock on a
file in it): a later one then finds the kernels written and compiles nothing. Every
file is written atomically, so a helper stopped midway leaves no partial file.
"""

import fcntl
import os
import sys

from . import native as _native


def main(names):
    os.nice(5)  # behind the process that started it, whose fit may want both cores
    loader = _native._loader()
    if loader is None:
        return 1
    os.makedirs(loader.folder, exist_ok=True)
    with open(os.path.join(loader.folder, "background.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in names:
            _native.ensure(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
