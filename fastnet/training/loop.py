"""The training loop's core, shared by ``Trainer`` and the estimators' stochastic
solvers: which networks run as one compiled epoch (and with which parameter names),
the minibatches' row buffers, and the last finite weights.

Each caller keeps its own rule for the order of the rows (the estimators shuffle
the previous order with scikit-learn's ``RandomState``, ``Trainer`` draws a
permutation from a NumPy ``Generator``) and its own bookkeeping; what they share
is here, once.
"""

import contextlib
import itertools

import numpy as np

from .._runtime.mlp import fused_epoch, step_shares
from .._runtime.pool import pool
from .._runtime.threads import BlasLimit
from ..nn.activations import Activation
from ..nn.linear import Linear


def mlp_chain(modules):
    """``(linears, hidden)`` where ``modules`` is a chain the compiled epoch runs:
    ``Linear``, activation, ``Linear``, ..., ``Linear``, every activation of one
    kind and setting, every ``Linear`` of one dtype; else None (the module path)."""
    linears, hidden = list(modules[0::2]), list(modules[1::2])
    if not linears or len(linears) != len(hidden) + 1:
        return None
    if not all(type(m) is Linear for m in linears):
        return None
    if hidden and not all(
        isinstance(h, Activation)
        and (h.kernel_name, h.alpha) == (hidden[0].kernel_name, hidden[0].alpha)
        for h in hidden
    ):
        return None
    if len({lin.dtype for lin in linears}) != 1:
        return None
    return linears, hidden


@contextlib.contextmanager
def module_shares(modules, batch):
    """Run the block (training through the modules ``modules``, a ``Sequential``'s,
    in steps of ``batch`` rows) with every ``Linear`` among them computing its
    products in the shares the compiled epoch takes for such a network
    (``fastnet._runtime.mlp.step_shares``: by the layers' sizes, the batch and the
    process's cores; ``Linear.shares``, on fastnet's pool) and BLAS held at one
    thread, as in the compiled epoch's threads (OpenBLAS's threads give other bits
    than its one thread): the same bits for any thread count, and for a chain the
    compiled epoch runs, its bits. Without a ``Linear``, the block runs as it is."""
    linears = [m for m in modules if type(m) is Linear]
    if not linears:
        yield
        return
    products = sum(lin.n_in * lin.n_out for lin in linears)
    shares = step_shares(products, batch, pool().size)
    for lin in linears:
        lin.shares = shares
    try:
        with BlasLimit(1, kernels_only=True):
            yield
    finally:
        for lin in linears:
            del lin.shares  # the class's: whole products


def parameter_names(n_layers):
    """``(W name, b name)`` of each of ``n_layers`` chained ``Linear`` layers, as
    ``Sequential`` names them (the module index, then the parameter): the keys of
    the optimizer's state, whichever path (compiled or modules) trains them."""
    return [(f"{2 * i}.W", f"{2 * i}.b") for i in range(n_layers)]


def compiled_epoch(modules, loss, optimizer, X, target, weights, batch, **settings):
    """``fused_epoch`` (``fastnet._runtime.mlp``) for the chain ``modules``, with
    the parameter names ``Sequential`` gives them (``"{module index}.W"``); None
    where the epoch takes the module path: not a chain (:func:`mlp_chain`), sample
    weights, another dtype than ``X``'s, or an optimizer with no compiled form.
    ``settings``: ``fused_epoch``'s keywords (``l2``, ``loss_scale``,
    ``grad_scale``, ``reuse``)."""
    chain = mlp_chain(modules)
    if chain is None or weights.size:
        return None
    linears, hidden = chain
    if linears[0].dtype != X.dtype:
        return None
    return fused_epoch(
        linears,
        hidden[0] if hidden else None,
        parameter_names(len(linears)),
        loss,
        optimizer,
        X,
        target,
        batch,
        **settings,
    )


class Batches:
    """Row buffers for minibatches of ``X``, its targets and its weights, one set
    per batch size (allocated on first use): a step allocates nothing."""

    def __init__(self, X, target, weights):
        self.X, self.target, self.weights = X, target, weights
        self._buffers = {}

    def gather(self, idx):
        """``(X[idx], target[idx], weights[idx])`` in this size's buffers (weights:
        an empty array where there are none)."""
        m = idx.shape[0]
        buffers = self._buffers.get(m)
        X, t, w = self.X, self.target, self.weights
        if buffers is None:
            buffers = self._buffers[m] = (
                np.empty((m, *X.shape[1:]), X.dtype),
                np.empty((m, *t.shape[1:]), t.dtype),
                np.empty(m if w.size else 0, w.dtype),
            )
        xb, tb, wb = buffers
        # mode="clip": with the default "raise", take() buffers its output in a
        # temporary array; the callers' indices are in range (a permutation)
        np.take(X, idx, axis=0, out=xb, mode="clip")
        np.take(t, idx, axis=0, out=tb, mode="clip")
        if w.size:
            np.take(w, idx, out=wb, mode="clip")
        return xb, tb, wb


class LastFinite:
    """The weights after the last epoch that left them all finite, in two flat
    buffers used in turn (of the arrays' common dtype, so a copy back is exact).

    :meth:`keep` copies the weights into the spare buffer and checks that buffer in
    one pass, cheaper than a copy and a check per array."""

    def __init__(self, arrays):
        arrays = list(arrays)
        dtype = np.result_type(*arrays)
        offsets = list(itertools.accumulate((a.size for a in arrays), initial=0))
        self._flat = [np.empty(offsets[-1], dtype) for _ in range(2)]
        self._views = [
            [
                f[o : o + a.size].reshape(a.shape)
                for o, a in zip(offsets[:-1], arrays, strict=True)
            ]
            for f in self._flat
        ]
        self._copy(0, arrays)
        self._good = 0

    def _copy(self, into, arrays):
        for dst, src in zip(self._views[into], arrays, strict=True):
            np.copyto(dst, src)

    def keep(self, arrays):
        """Keep ``arrays`` and return True where all are finite; else False,
        keeping the last finite ones."""
        spare = 1 - self._good
        self._copy(spare, arrays)
        if not np.isfinite(self._flat[spare]).all():
            return False
        self._good = spare
        return True

    def restore(self, arrays):
        """Copy the last finite weights back into ``arrays``."""
        for dst, src in zip(arrays, self._views[self._good], strict=True):
            np.copyto(dst, src)
