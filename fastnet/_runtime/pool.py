"""fastnet's own threads for inference: one pool per process, shared by every call.

The process has :func:`cores` cores to run on and the pool as many tokens. A call
takes one token for its own thread (waiting while every core is busy with other
calls: N Python threads calling at once do not oversubscribe the cores), then as
many more as it wants and are free at once, and runs its share of the work on
that many threads: its own and the pool's workers (``cores() - 1`` of them,
started on first use and kept). The work of a call goes to native code that
releases the GIL, so the threads run at once.
"""

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor


def cores():
    """The cores this process may run on (its affinity mask where the system has
    one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Pool:
    """``size`` tokens and ``size - 1`` worker threads. Thread-safe."""

    def __init__(self, size):
        self.size = size
        self._free = size  # tokens not taken
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self._waiting = 0  # callers waiting for a token
        self._workers = None

    def _executor(self):
        with self._lock:
            if self._workers is None:
                self._workers = ThreadPoolExecutor(
                    self.size - 1, thread_name_prefix="fastnet-pool"
                )
            return self._workers

    def share(self, want):
        """A context manager giving the number of threads (1 to ``want``) this
        call may use: one token waited for, the others taken if free."""
        return _Share(self, want)

    def run(self, parts):
        """Call each of ``parts`` (callables returning a value), the first in this
        thread and the others on the workers, and return their values in order.
        Call with a :meth:`share` of ``len(parts)`` threads held."""
        if len(parts) == 1:
            return [parts[0]()]
        executor = self._executor()
        futures = [executor.submit(part) for part in parts[1:]]
        try:
            first = parts[0]()
        finally:
            rest = [f.result() for f in futures]  # waits even when the first raised
        return [first, *rest]


class _Share:
    __slots__ = ("pool", "taken", "want")

    def __init__(self, pool, want):
        self.pool = pool
        self.want = want

    # a lock and a counter, not a Semaphore: a one-row prediction takes and gives
    # back a token on every call, and a Semaphore costs several times more
    def __enter__(self):
        pool = self.pool
        with pool._lock:
            while not pool._free:
                pool._waiting += 1
                try:
                    pool._freed.wait()
                finally:
                    pool._waiting -= 1
            taken = min(self.want, pool._free)
            pool._free -= taken
        self.taken = taken
        return taken

    def __exit__(self, *exc):
        pool = self.pool
        with pool._lock:
            pool._free += self.taken
            if pool._waiting:
                pool._freed.notify_all()
        return False


def in_shares(work, shares):
    """Call ``work(part)`` for every part of ``range(shares)``, on as many of the
    pool's threads as are free (up to ``shares``; at least this one), each taking
    parts ``t, t + k, ...``: for work that releases the GIL and whose result does
    not depend on which thread runs a part."""
    workers = pool()
    with workers.share(shares) as k:

        def run(t):
            for part in range(t, shares, k):
                work(part)

        workers.run([functools.partial(run, t) for t in range(k)])


_pool = {"pool": None, "lock": threading.Lock()}


def _forget_after_fork():
    # a forked child has none of the parent's threads: a pool made before the
    # fork would queue work no worker takes, and keep tokens no thread gives back
    _pool["pool"] = None
    _pool["lock"] = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def pool():
    """The process's pool (made on first use, with :func:`cores` tokens)."""
    found = _pool["pool"]
    if found is None:
        with _pool["lock"]:
            if _pool["pool"] is None:
                _pool["pool"] = Pool(cores())
            found = _pool["pool"]
    return found
