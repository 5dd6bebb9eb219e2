"""One thread setting for Numba and BLAS together."""

import contextlib
import os
import sys
import threading

from .checks import check_positive_int


def in_dask_worker():
    """True while running a task on a ``dask.distributed`` worker.

    A context-variable lookup, and only once ``distributed`` is imported at all, so
    single-row predictions outside Dask pay nothing for it.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def resolve_threads(n_threads):
    """The thread count ``n_threads`` means here: itself when given; ``None`` is all
    cores, except in a Dask worker's task, where it is 1 (a worker runs one task per
    thread, and every task taking every core would oversubscribe them)."""
    if n_threads is not None:
        return check_positive_int(n_threads, "n_threads")
    return 1 if in_dask_worker() else None


# BLAS's thread count is one setting per library for the whole process, while
# Numba's is per thread. Every limit fastnet sets goes through one ledger of
# requests (``requests``: a request's id -> the :class:`BlasLimit`, its ``count``
# and the ``libs`` it covers): each library runs with the smallest count that a
# request in force asks of it, the count it had before the first request covering
# it (``saved``; ``current``: what it is set to) once none is left. Requests may
# begin and end in any order from any thread (each thread saving and restoring on
# its own could leave BLAS at another thread's limit forever, depending on the order
# they finish in). "libraries": threadpoolctl's controllers of the BLAS libraries
# loaded, found once (finding them walks every loaded library and takes longer
# than a whole one-row prediction) and again after an import, which may load one
# (``modules``: how many modules were imported when they were found); "kernels":
# the ones the compiled kernels call (SciPy's BLAS, :func:`_kernel_libraries`).
_blas = {"lock": threading.Lock(), "requests": {}, "saved": {}, "current": {},
         "libraries": None, "kernels": None, "modules": -1}  # fmt: skip


def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries in this process (call with
    the lock held). SciPy's BLAS, which the kernels call, is imported first, so it
    is among them even before the first kernel has run."""
    # found again only while no request is in force: the ledger's saved counts
    # are those of the libraries found when its first request began
    if _blas["modules"] != len(sys.modules) and not _blas["requests"]:
        import scipy.linalg.cython_blas  # noqa: F401
        from threadpoolctl import ThreadpoolController

        found = ThreadpoolController().select(user_api="blas").lib_controllers
        _blas["libraries"] = [_Library(lib) for lib in found]
        _blas["kernels"] = _kernel_libraries(_blas["libraries"])
        _blas["modules"] = len(sys.modules)
    return _blas["libraries"]


class _Library:
    """A BLAS library's thread count: read and set through OpenBLAS's own C
    functions where it is OpenBLAS on its pthreads pool (a call of a microsecond
    or less, where threadpoolctl's setter takes several: inference sets it twice
    per call), else through threadpoolctl's controller."""

    __slots__ = ("controller", "filepath", "get", "set")

    def __init__(self, controller):
        self.controller = controller
        self.filepath = controller.filepath
        get = set_ = None
        if (
            controller.internal_api == "openblas"
            and getattr(controller, "threading_layer", None) == "pthreads"
        ):
            # threadpoolctl's own names for the symbols (its _get_symbol, 3.x)
            affix = getattr(controller, "_get_symbol", lambda name: None)
            get = affix("openblas_get_num_threads")
            set_ = affix("openblas_set_num_threads")
        self.get = get or controller.get_num_threads
        self.set = set_ if get and set_ else None

    def get_num_threads(self):
        return self.get()

    def set_num_threads(self, count):
        if self.set is not None:
            self.set(count)
        else:
            _set_blas_threads([(self.controller, count)])


#: the names SciPy's ``cython_blas`` may import ``sgemm`` under (SciPy's own
#: OpenBLAS wheels prefix it; other builds link a system BLAS)
_SGEMM_NAMES = ("scipy_sgemm_", "sgemm_", "sgemm", "scipy_sgemm_64_", "sgemm_64_")


def _kernel_libraries(libraries):
    """Those of ``libraries`` that SciPy's ``cython_blas`` (what the kernels call,
    through Numba's ``numba_xxgemm``) resolves ``sgemm`` to: the library that
    defines the symbol as the dynamic loader finds it from ``cython_blas``'s
    dependencies. All of them where that cannot be told."""
    import ctypes
    import os

    import scipy.linalg.cython_blas as cython_blas

    class _Info(ctypes.Structure):
        _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p),
                    ("sname", ctypes.c_char_p), ("saddr", ctypes.c_void_p)]  # fmt: skip

    try:
        handle = ctypes.CDLL(cython_blas.__file__)
        dladdr = ctypes.CDLL(None).dladdr
    except (OSError, AttributeError):
        return list(libraries)
    for name in _SGEMM_NAMES:
        function = getattr(handle, name, None)
        if function is None:
            continue
        info = _Info()
        if not dladdr(ctypes.cast(function, ctypes.c_void_p), ctypes.byref(info)):
            break
        path = os.path.realpath(os.fsdecode(info.fname))
        found = [lib for lib in libraries if os.path.realpath(lib.filepath) == path]
        return found or list(libraries)
    return list(libraries)


def _set_blas_threads(settings):
    """Give each library of ``(library controller, count)`` its thread count, from
    whichever thread (call with the lock held).

    Since threadpoolctl 3.8, setting OpenBLAS's (process-wide) count makes the
    calling thread the only one whose settings take effect, silently, until it
    gives that up: a limit set by one predicting thread and restored by another
    would stay, and every other thread's limit would do nothing. fastnet's own
    users take turns under the lock, so each setting takes that control and gives
    it back.
    """
    from threadpoolctl import OpenBLASController

    release = getattr(OpenBLASController, "clear_controlling_thread", None)
    if release is not None:
        release(force=True)
    for lib, count in settings:
        lib.set_num_threads(count)
    if release is not None:
        release()


class BlasLimit:
    """A context manager: BLAS at most ``count`` threads inside, in every library
    (``kernels_only=False``) or in those the compiled kernels call. Safe to enter
    from several threads at once, in any order (one ledger of requests); each
    instance is entered once at a time. A plain class, not a generator, and only
    the libraries a request covers are read and set: inference enters one on every
    call (a one-row prediction's largest cost in Python once was this ledger)."""

    __slots__ = ("count", "kernels_only", "libs")

    def __init__(self, count, kernels_only=False):
        self.count = count
        self.kernels_only = kernels_only

    def __enter__(self):
        count = self.count
        with _blas["lock"]:
            requests = _blas["requests"]
            if not requests:
                _blas_libraries()  # found again if an import may have loaded one
            self.libs = libs = _blas["kernels" if self.kernels_only else "libraries"]
            saved, current = _blas["saved"], _blas["current"]
            requests[id(self)] = self
            try:
                for lib in libs:
                    now = current.get(lib)
                    if now is None:  # its own count, read when first covered
                        now = saved[lib] = current[lib] = lib.get()
                    if now > count:  # a new request can only lower a count
                        lib.set_num_threads(count)
                        current[lib] = count
            except BaseException:  # the request is not in force: undo it
                del requests[id(self)]
                self._settle(requests)
                raise
        return self

    def __exit__(self, *exc):
        with _blas["lock"]:
            requests = _blas["requests"]
            if requests.pop(id(self), None) is not None:  # else forgotten by a fork
                self._settle(requests)
        return False

    def _settle(self, requests):
        """Set each library of this ended request to the smallest count a request
        still in force asks of it, else to its own (call with the lock held)."""
        saved, current = _blas["saved"], _blas["current"]
        for lib in self.libs:
            if lib not in saved:
                continue  # never read (its count could not be read)
            count = saved[lib]
            for other in requests.values():
                if other.count < count and lib in other.libs:
                    count = other.count
            if current[lib] != count:
                lib.set_num_threads(count)
                current[lib] = count
        if not requests:  # read afresh next time: the user may change them
            saved.clear()
            current.clear()


def _ledger_after_fork():
    # a forked child has only the forking thread: the requests of the others
    # will never end there, and the lock may have been held by one of them
    _blas["lock"] = threading.Lock()
    if _blas["requests"]:
        for lib, count in _blas["saved"].items():
            if _blas["current"].get(lib) != count:
                lib.set_num_threads(count)
        _blas["requests"], _blas["saved"], _blas["current"] = {}, {}, {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ledger_after_fork)


_NO_LIMIT = contextlib.nullcontext()


def thread_limit(n_threads):
    """Run the block with ``n_threads`` Numba threads and ``n_threads`` BLAS threads,
    restoring both afterwards. ``None`` leaves both as they are (all cores), except in
    a Dask worker's task, where it means one thread (:func:`resolve_threads`).

    Safe to enter from several threads at once. Numba's setting is per thread; BLAS's
    is per process, so while blocks in several threads overlap, BLAS runs with the
    smallest of their limits (:class:`BlasLimit`). Without a limit the block's
    context is a shared ``nullcontext``, several times cheaper to enter than a
    generator's.
    """
    n_threads = resolve_threads(n_threads)
    if n_threads is None:
        return _NO_LIMIT
    return _limited(n_threads)


@contextlib.contextmanager
def _limited(n_threads):
    import numba  # here: a process that sets no limit may never import Numba

    n = min(n_threads, numba.config.NUMBA_NUM_THREADS)
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with BlasLimit(n):
            yield
    finally:
        numba.set_num_threads(before)


class FitGuard:
    """Keeps an estimator's training and its predictions apart, without making
    predictions wait for each other.

    Any number of threads may predict at once (:meth:`reading`). A fit
    (:meth:`writing`) claims the estimator at once, waits for the predictions
    already running to finish, then owns the weights until it returns: a
    prediction from another thread meanwhile (also while the fit waits), or a
    second fit, raises ``RuntimeError`` instead of reading half-updated weights.
    The fitting thread itself may predict (scikit-learn's early stopping scores
    the validation set from inside ``fit``).
    """

    def __init__(self):
        # predictions take the lock itself (a Condition's own enter and exit are
        # Python calls); a fit waits on the condition over it
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._readers = 0
        self._held = {}  # thread ident -> its nested predictions
        self._writer = None
        self._depth = 0

    def _busy(self, action):
        instead = "fit" if action == "fit" else "fit and predict with"
        return RuntimeError(
            f"cannot {action}: this estimator is being fitted in another thread; "
            f"wait for fit/partial_fit to return (or {instead} a copy made by "
            "sklearn.base.clone)"
        )

    def reading(self):
        """A context manager for one prediction (a plain object, not a generator:
        it is entered on every call, single rows included)."""
        return _Reading(self)

    @contextlib.contextmanager
    def writing(self):
        me = threading.get_ident()
        with self._cond:
            if self._writer is not None and self._writer != me:
                raise self._busy("fit")
            if self._writer is None:
                # claimed before waiting: predictions arriving from now on are
                # refused, so a steady stream of them cannot hold a fit off forever
                self._writer = me
                self._cond.wait_for(lambda: self._readers == 0)
            self._depth += 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._writer = None


class _Reading:
    """:meth:`FitGuard.reading`: enter counts a prediction of this thread, exit
    uncounts it. A prediction already running in this thread (score calls
    predict) goes on even if a fit has claimed the estimator meanwhile."""

    __slots__ = ("guard", "me")

    def __init__(self, guard):
        self.guard = guard

    def __enter__(self):
        guard = self.guard
        self.me = me = threading.get_ident()
        with guard._lock:
            nested = guard._held.get(me, 0)
            if not nested and guard._writer is not None and guard._writer != me:
                raise guard._busy("predict")
            guard._held[me] = nested + 1
            guard._readers += 1

    def __exit__(self, *exc):
        guard, me = self.guard, self.me
        with guard._lock:
            guard._readers -= 1
            if guard._held[me] == 1:
                del guard._held[me]
            else:
                guard._held[me] -= 1
            # only a fit waits for the count to reach 0, and it claims the
            # estimator (sets _writer) before it waits
            if guard._readers == 0 and guard._writer is not None:
                guard._cond.notify_all()
        return False
