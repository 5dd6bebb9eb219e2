"""One thread setting for Numba and BLAS together."""

import contextlib
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


# BLAS's thread count is one setting for the whole process, while Numba's is per
# thread. Threads that limit BLAS at the same time share one limit: the first sets
# it, the last restores it (each saving and restoring on its own could leave BLAS
# at another thread's limit forever, depending on the order they finish in).
# "libraries": threadpoolctl's controllers of the BLAS libraries loaded, found once
# (finding them walks every loaded library and takes longer than a whole one-row
# prediction, which with n_threads set paid it on every call) and again after an
# import, which may load one (``modules``: how many modules were imported when they
# were found).
_blas = {"lock": threading.Lock(), "users": 0, "saved": [], "libraries": None,
         "modules": -1}  # fmt: skip


def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries in this process (call with
    the lock held). SciPy's BLAS, which the kernels call, is imported first, so it
    is among them even before the first kernel has run."""
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController

    if _blas["modules"] != len(sys.modules):
        found = ThreadpoolController().select(user_api="blas").lib_controllers
        _blas["libraries"] = found
        _blas["modules"] = len(sys.modules)
    return _blas["libraries"]


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


_NO_LIMIT = contextlib.nullcontext()


def thread_limit(n_threads):
    """Run the block with ``n_threads`` Numba threads and ``n_threads`` BLAS threads,
    restoring both afterwards. ``None`` leaves both as they are (all cores), except in
    a Dask worker's task, where it means one thread (:func:`resolve_threads`).

    Safe to enter from several threads at once. Numba's setting is per thread; BLAS's
    is per process, so while blocks in several threads overlap, BLAS keeps the limit
    of the first of them. Without a limit the block's context is a shared
    ``nullcontext``, several times cheaper to enter than a generator's: a one-row
    prediction enters it on every call.
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
    with _blas["lock"]:
        if _blas["users"] == 0:
            libraries = _blas_libraries()
            _blas["saved"] = [(lib, lib.get_num_threads()) for lib in libraries]
            _set_blas_threads([(lib, n) for lib in libraries])
        _blas["users"] += 1
    try:
        yield
    finally:
        with _blas["lock"]:
            _blas["users"] -= 1
            if _blas["users"] == 0:
                _set_blas_threads(_blas["saved"])
                _blas["saved"] = []
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
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._held = {}  # thread ident -> its nested predictions
        self._writer = None
        self._depth = 0

    def _busy(self, action):
        return RuntimeError(
            f"cannot {action}: this estimator is being fitted in another thread; "
            "wait for fit/partial_fit to return (or predict with a copy made by "
            "sklearn.base.clone and fitted separately)"
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
        with guard._cond:
            nested = guard._held.get(me, 0)
            if not nested and guard._writer is not None and guard._writer != me:
                raise guard._busy("predict")
            guard._held[me] = nested + 1
            guard._readers += 1

    def __exit__(self, *exc):
        guard, me = self.guard, self.me
        with guard._cond:
            guard._readers -= 1
            if guard._held[me] == 1:
                del guard._held[me]
            else:
                guard._held[me] -= 1
            if guard._readers == 0:
                guard._cond.notify_all()
        return False
