"""Memory a process may still take, and the refusal of work that would not fit.

A fit whose arrays exceed the machine's memory does not fail cleanly: the first
allocations succeed (Linux overcommits), the pages are touched later, and the kernel's
OOM killer ends the process minutes in. So the estimators estimate a fit's memory
from its layer sizes and batch before allocating anything, and refuse with a
``MemoryError`` that gives the figures.

What "available" means here: the least of the system's available memory
(``MemAvailable``, which counts reclaimable caches), a cgroup's limit less its usage
(a container's), and the address-space limit (``ulimit -v``) less the process's size.
Where none of them can be read, nothing is refused.
"""

import os
import resource

_GIB = 2.0**30


def _meminfo_available():
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # other Unix systems: free pages only
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _read_number(path):
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_left():
    """The cgroup's limit less its usage (v2, then v1); None without a limit."""
    pairs = (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    )
    for limit_path, usage_path in pairs:
        limit = _read_number(limit_path)  # "max" (no limit) reads as None
        if limit is not None and limit < 2**60:
            return max(limit - (_read_number(usage_path) or 0), 0)
    return None


def _address_space_left():
    """``RLIMIT_AS`` less the process's virtual size; None without a limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
    return max(soft - size, 0)


def available_bytes():
    """The bytes this process can still allocate (see the module docstring), or None
    where no figure can be read."""
    found = [_meminfo_available(), _cgroup_left(), _address_space_left()]
    found = [v for v in found if v is not None]
    return min(found) if found else None


def refuse_if_short(needed, what):
    """A ``MemoryError`` naming ``what`` and both figures where ``needed`` bytes
    exceed :func:`available_bytes`."""
    available = available_bytes()
    if available is not None and needed > available:
        raise MemoryError(
            f"{what} would need about {needed / _GIB:.1f} GiB; {available / _GIB:.1f} "
            "GiB of memory is available. Use fewer or narrower layers, a smaller "
            "batch_size, or float32 data."
        )
