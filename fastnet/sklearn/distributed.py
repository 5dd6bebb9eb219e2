"""Training where the data lives: :func:`fit_distributed` (``fastnet.dask``).

The row blocks of ``X``, ``y`` (and ``sample_weight``) are computed once on the
workers, block ``i`` on worker ``i * n_workers // n_blocks`` (a loose restriction:
Dask recomputes a lost block anywhere), and held there as futures until the fit
ends. Only the weights (and the optimizer's state) go out each iteration, and only
sums come back, added in a fixed tree: the blocks of each worker in block order on
that worker, then the workers' sums in worker order. The result depends on the
number of workers at the start, never on where a task ran, so a fit that lost a
worker ends with the same bits as one that did not.

``solver='lbfgs'``: the exact loss and gradient of all rows. A task per block
returns its loss and gradient times its rows (or its sum of sample weights), the
client adds the L2 term once and runs scikit-learn's L-BFGS (the estimator's own
``scipy.optimize.minimize`` call and options) on the sums.

``solver='sgd'`` / ``'adam'``: local SGD. Each round every worker starts from the
client's weights and optimizer state, takes ``sync_every`` minibatch steps over its
own blocks (``partial_fit`` on each block's rows in the planned order), and the
client averages weights and optimizer state weighted by rows. The learning rate
and its schedule stay on the client (updated at each epoch's end, as a local fit).
"""

import copy
import itertools
import threading
import uuid
import warnings
from dataclasses import dataclass

import dask.array as da
import numpy as np
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.utils import check_random_state

from .._runtime.checks import check_positive_int
from . import lbfgs, stochastic


def fit_distributed(
    estimator,
    X,
    y,
    *,
    sample_weight=None,
    classes=None,
    client=None,
    sync_every=None,
):
    """Fit ``estimator`` on the rows of ``X``, ``y`` without moving them.

    .. math::

        L(W) = \\frac{\\sum_b s_b L_b(W)}{\\sum_b s_b}
               + \\frac{\\alpha}{2 \\sum_b s_b} \\sum_l \\|W_l\\|^2,
        \\qquad \\nabla L = \\frac{\\sum_b s_b \\nabla L_b}{\\sum_b s_b}
               + \\frac{\\alpha}{\\sum_b s_b} W

    where :math:`L_b` is the mean loss of block :math:`b` (fastnet's loss kernels)
    and :math:`s_b` its rows or its sum of sample weights: L-BFGS minimises exactly
    the objective a local fit on all rows minimises.

    Parameters
    ----------
    estimator : ``fastnet.MLPClassifier`` or ``fastnet.MLPRegressor``; its
        parameters are used as a local ``fit`` uses them (``max_iter``, ``tol``,
        ``max_fun``, ``early_stopping``, ``validation_fraction``,
        ``n_iter_no_change``, ``batch_size``, ``random_state``, ...).
    X : dask.array.Array (2-D) or dask DataFrame, rows in blocks.
    y : dask.array.Array, dask Series / DataFrame, or array-like of ``X``'s rows.
    sample_weight : like ``y`` (1-D), or None.
    classes : a classifier's labels; None finds them in ``y`` (one pass).
    client : a ``dask.distributed.Client``; None takes the default client.
    sync_every : ``'sgd'`` / ``'adam'``: minibatch steps each worker takes between
        averagings; None is one pass over its blocks (a round is an epoch). Not
        used by ``'lbfgs'``.
        ``max_iter`` counts epochs: passes over the largest worker's rows.

    With ``early_stopping``, the last blocks holding at least
    ``validation_fraction`` of the rows are held out and scored on their workers.
    ``callbacks`` are not run. Returns ``estimator``, fitted: the attributes of a
    local fit, usable as one (``predict``, ``fastnet.save``, ``predict_blocks``).
    """
    from .dask import _check_X, _client, _rows_like
    from .estimators import MLPClassifier, MLPRegressor

    if not isinstance(estimator, (MLPClassifier, MLPRegressor)):
        raise TypeError(
            "fit_distributed trains fastnet.MLPClassifier or fastnet.MLPRegressor, "
            f"got {type(estimator).__name__}"
        )
    if sync_every is not None:
        sync_every = check_positive_int(sync_every, "sync_every")
    estimator._validate_params()
    if estimator.callbacks:
        raise ValueError("fit_distributed does not run callbacks; set callbacks=None")
    if estimator.solver == "lbfgs" and estimator.dropout > 0:
        raise ValueError("dropout needs a stochastic solver ('sgd' or 'adam')")
    X, columns = _as_array(X, "X")
    X = _check_X(X, "X")
    rows = X.chunks[0]
    y, _ = _as_array(y, "y")
    y = _rows_like(_checked_rows(y, "y", X.shape[0]), "y", X.shape[0], rows)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    w = None
    if sample_weight is not None:
        w, _ = _as_array(sample_weight, "sample_weight")
        w = _checked_rows(w, "sample_weight", X.shape[0])
        w = _rows_like(w, "sample_weight", X.shape[0], rows)
        if w.ndim != 1:
            raise ValueError(f"sample_weight must be 1-D, got shape {w.shape}")
    client = _client(client)
    if client is None:
        raise ValueError("fit_distributed needs a dask.distributed Client")
    data = _Data.persist(client, X, y, w)
    try:
        model = _initialize(estimator, data, columns, classes)
        if estimator.solver == "lbfgs":
            _fit_lbfgs(estimator, model, data)
        else:
            _fit_stochastic(estimator, model, data, sync_every)
    finally:
        data.release()
    return estimator


def _as_array(a, name):
    """A dask DataFrame / Series as a dask array with known chunks, and its column
    names (None for anything else)."""
    to_array = getattr(a, "to_dask_array", None)
    if to_array is None:
        return a, None
    columns = getattr(a, "columns", None)
    return to_array(lengths=True), (None if columns is None else list(columns))


def _checked_rows(a, name, n):
    """An in-memory ``a`` as an array of ``n`` rows (a ``ValueError`` otherwise)."""
    if isinstance(a, da.Array):
        return a
    a = np.asarray(a)
    if a.ndim == 0 or a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0] if a.ndim else 0} rows, X has {n}")
    return a


# -- the data on the workers ----------------------------------------------------------
class _Data:
    """The blocks as futures on the workers, grouped by worker, and what is known
    of them: ``groups[g]`` the block indices of worker ``g``, ``rows[i]`` block
    ``i``'s rows."""

    def __init__(self, client, raw, rows, groups, workers, n_features):
        self.client, self.raw, self.rows = client, raw, rows
        self.groups, self.workers, self.n_features = groups, workers, n_features
        self.blocks = None  # prepared blocks (futures), after prepare()
        self.token = uuid.uuid4().hex[:12]

    @classmethod
    def persist(cls, client, X, y, w):
        parts = [a.to_delayed(optimize_graph=False).ravel() for a in (X, y)]
        parts.append([None] * len(parts[0]) if w is None else w.to_delayed().ravel())
        keep = [i for i, n in enumerate(X.chunks[0]) if n > 0]
        if not keep:
            raise ValueError("X has no rows")
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        if not workers:
            raise ValueError("the Dask cluster has no workers")
        groups = [[] for _ in workers]
        for k, i in enumerate(keep):
            groups[k * len(workers) // len(keep)].append(i)
        groups = [g for g in groups if g]
        raw = {}
        for g, blocks in enumerate(groups):
            for i in blocks:
                # one block per call: the restriction places it (and the tasks
                # that make it) on its worker; loose, so that a lost block is
                # recomputed wherever Dask can
                raw[i] = client.compute(
                    [p[i] for p in parts],
                    workers=[workers[g]],
                    allow_other_workers=True,
                )
        rows = {i: X.chunks[0][i] for i in keep}
        return cls(client, raw, rows, groups, workers, X.shape[1])

    def submit(self, fn, *args, group, key):
        """``fn(*args)`` as a task on ``group``'s worker (loosely)."""
        workers = [self.workers[group]] if group < len(self.workers) else None
        return self.client.submit(
            fn,
            *args,
            key=f"fastnet-{key}-{self.token}-{uuid.uuid4().hex[:8]}",
            workers=workers,
            allow_other_workers=True,
            pure=False,
        )

    def labels(self):
        """The sorted labels of every block of ``y``."""
        futures = [
            self.submit(_labels, self.raw[i][1], group=g, key="labels")
            for g, blocks in enumerate(self.groups)
            for i in blocks
        ]
        return np.unique(np.concatenate(self.client.gather(futures)))

    def head(self, n):
        i = self.groups[0][0]
        return self.client.gather(
            self.submit(_head, *self.raw[i], n, group=0, key="head")
        )

    def prepare(self, model, kind):
        """Each block checked by the estimator's own input validation and prepared
        for ``kind`` (``'lbfgs'`` or ``'stochastic'``) on its worker; a
        ``ValueError`` naming the first bad block."""
        order = sorted(self.rows)
        ends = itertools.accumulate(self.rows[i] for i in order)
        starts = dict(zip(order, [0, *ends], strict=False))
        blocks, checks, self.models = {}, [], []
        for g, members in enumerate(self.groups):
            # the model goes to each worker once; tasks take it by its future
            m = self.submit(_put, model, group=g, key="model")
            self.models.append(m)
            for i in members:
                where = _Where(i, starts[i], self.rows[i], self.n_features)
                blocks[i] = self.submit(
                    _prepare, m, *self.raw[i], where, kind, group=g, key="block"
                )
                checks.append(self.submit(_ok, blocks[i], group=g, key="check"))
        for problem in self.client.gather(checks):
            if problem is not None:
                raise ValueError(problem)
        self.blocks = blocks
        self.raw = None  # the prepared blocks keep their lineage

    def release(self):
        self.raw = self.blocks = self.models = None


@dataclass(frozen=True)
class _Where:
    """Block ``index``: its first row, its rows and the width ``X`` declares."""

    index: int
    start: int
    rows: int
    width: int

    def name(self):
        return f"block {self.index} (rows {self.start}-{self.start + self.rows - 1})"


def _labels(yb):
    return np.unique(np.asarray(yb))


def _head(xb, yb, wb, n):
    return np.asarray(xb[:n]), np.asarray(yb[:n])


def _put(value):
    return value


def _ok(block):
    return block if isinstance(block, str) else None


@dataclass
class _Block:
    """A block as the worker trains on it: ``X`` in the weights' dtype, ``y`` as
    given (stochastic) or the loss's prepared targets (L-BFGS), weights."""

    X: np.ndarray
    y: np.ndarray
    w: object
    weight: float  # rows, or the sum of the sample weights


def _prepare(model, xb, yb, wb, where, kind):
    """The block validated as ``partial_fit`` validates it; a message naming the
    block where it is not valid (returned, so that the client raises it)."""
    shape = np.shape(xb)
    if len(shape) != 2 or shape[1] != where.width or shape[0] != where.rows:
        return (
            f"{where.name()} of X has shape {shape}, expected "
            f"({where.rows}, {where.width}): the dask array's chunks do not "
            "describe its blocks"
        )
    est = model.local()
    try:
        Xc, yc = est._validate_input(np.asarray(xb), np.asarray(yb), True, False)
        if wb is not None:
            wb = np.asarray(wb, dtype=Xc.dtype)
            if wb.shape != (shape[0],) or not np.isfinite(wb).all():
                raise ValueError("sample_weight has non-finite values or bad shape")
            if (wb < 0).any():
                raise ValueError("sample_weight has negative values")
    except (ValueError, TypeError) as exc:
        return f"{where.name()}: {exc}"
    weight = float(wb.sum()) if wb is not None else float(shape[0])
    if weight == 0:  # all its weights zero: the block adds nothing (a local fit's
        return _Block(Xc, None, None, 0.0)  # sums have zero terms for its rows)
    if kind == "lbfgs":
        target, weights = est._targets(yc, shape[0], Xc.dtype, wb)
        return _Block(Xc, target, weights, weight)
    return _Block(Xc, np.asarray(yb), wb, weight)


# -- the estimator on the client and on the workers ------------------------------------
class _Model:
    """The initialised estimator as the workers use it; each worker thread keeps
    its own copy (weights and buffers are set per task), made once per fit."""

    _local = threading.local()

    def __init__(self, estimator, **params):
        est = copy.deepcopy(estimator)
        est.set_params(callbacks=None, verbose=False, early_stopping=False, **params)
        # the workers pass arrays, not the frames the names came from
        est.__dict__.pop("feature_names_in_", None)
        self.estimator = est
        self.token = uuid.uuid4().hex

    def local(self):
        cache = self._local.__dict__
        if cache.get("token") != self.token:
            cache["token"], cache["est"] = self.token, copy.deepcopy(self.estimator)
        return cache["est"]


def _initialize(est, data, columns, classes):
    """``est`` initialised as its own ``fit`` does (validation, labels, the same
    draws of the weights from ``random_state``), from a few rows of the first
    block; then every block checked and prepared on its worker. Returns the
    :class:`_Model` the workers train."""
    X0, y0 = data.head(8)
    if is_classifier(est) and np.ndim(y0) == 1:
        labels = data.labels() if classes is None else np.unique(np.asarray(classes))
        # every label once, on rows of the head: the label binarizer sees them all
        X0, y0 = X0[np.arange(labels.size) % X0.shape[0]], labels
    if columns is not None:
        import pandas as pd

        X0 = pd.DataFrame(X0, columns=columns)
    first = not (est.warm_start and hasattr(est, "coefs_"))
    try:
        X0, y0 = est._validate_input(X0, y0, False, reset=first)
    except ValueError as exc:  # the head is the first block's
        raise ValueError(f"block {data.groups[0][0]}: {exc}") from exc
    y0 = y0.reshape(-1, 1) if y0.ndim == 1 else y0
    if first:
        hidden = est.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if any(h <= 0 for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        est.n_outputs_ = y0.shape[1]
        est._random_state = check_random_state(est.random_state)
        est._initialize(y0, [X0.shape[1], *hidden, est.n_outputs_], X0.dtype)
    est._network()
    params = {"alpha": 0.0} if est.solver == "lbfgs" else {"shuffle": False}
    model = _Model(est, **params)
    data.prepare(model, "lbfgs" if est.solver == "lbfgs" else "stochastic")
    return model


# -- sums over blocks ------------------------------------------------------------------
@dataclass
class _Sum:
    """Weighted sums from blocks: ``vector`` (float64), ``loss``, ``weight``,
    ``steps``; added in :func:`_tree`."""

    vector: np.ndarray
    loss: float
    weight: float
    steps: float = 0.0

    def __add__(self, other):
        if not other.weight:  # nothing trained or summed there (zero weights)
            return self
        if not self.weight:
            return other
        return _Sum(
            self.vector + other.vector,
            self.loss + other.loss,
            self.weight + other.weight,
            self.steps + other.steps,
        )


def _add(a, b):
    return a + b


def _tree(data, parts, group, name):
    """Pairwise sums of ``parts`` (futures), in their order, on ``group``'s
    worker."""
    while len(parts) > 1:
        pairs = [parts[k : k + 2] for k in range(0, len(parts), 2)]
        parts = [
            p[0] if len(p) == 1 else data.submit(_add, *p, group=group, key=name)
            for p in pairs
        ]
    return parts[0]


def _reduce(data, per_group, name):
    """The sum over groups of each group's futures, as one future: within each
    worker first, then across workers."""
    sums = [_tree(data, parts, g, name) for g, parts in enumerate(per_group)]
    return _tree(data, sums, 0, name)


# -- L-BFGS ----------------------------------------------------------------------------
def _block_loss_grad(model, packed, block):
    """Block loss and gradient at ``packed``, times the block's weight (the
    model's ``alpha`` is 0 here: the client adds the L2 term once)."""
    if block.weight == 0:
        return _Sum(np.zeros_like(packed), 0.0, 0.0)
    est = model.local()
    loss, grad = lbfgs.packed_loss_grad(est, packed, block.X, block.y, block.w)
    return _Sum(grad * block.weight, float(loss) * block.weight, block.weight)


def _fit_lbfgs(est, model, data):
    packed = lbfgs.pack(est)
    n_coef = sum(W.size for W in est.coefs_)

    def objective(packed):
        per_group = []
        for g, members in enumerate(data.groups):
            p = data.submit(_put, packed, group=g, key="weights")
            per_group.append(
                [
                    data.submit(
                        _block_loss_grad,
                        data.models[g],
                        p,
                        data.blocks[i],
                        group=g,
                        key="lossgrad",
                    )
                    for i in members
                ]
            )
        total = data.client.gather(_reduce(data, per_group, "gradsum"))
        if total.weight <= 0:
            raise ValueError("sample_weight must have a positive sum")
        W = packed[:n_coef]
        loss = total.loss / total.weight
        loss += 0.5 * est.alpha * float(W @ W) / total.weight
        grad = total.vector / total.weight
        grad[:n_coef] += (est.alpha / total.weight) * W
        return loss, grad

    lbfgs.minimize(est, objective, packed)
    _check_finite(est)


def _check_finite(est):
    if not all(np.isfinite(a).all() for a in [*est.coefs_, *est.intercepts_]):
        raise ValueError(stochastic.NON_FINITE_WEIGHTS)


# -- local SGD -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    """Steps ``start`` to ``end`` (excluded) of a worker's stream of minibatches of
    ``batch`` rows; local epoch ``e`` visits the worker's blocks in an order drawn
    from ``(seed, group, e)`` and each block's rows in an order drawn from it
    too."""

    seed: int
    group: int
    start: int
    end: int
    batch: int


def _segments(plan, rows):
    """``(block position, row indices)`` to train on, in order, for ``plan`` over
    blocks of ``rows`` rows; every segment whole batches of one block."""
    per_block = [-(-n // plan.batch) for n in rows]
    per_epoch = sum(per_block)
    out = []
    k, end = plan.start, plan.end
    while k < end:
        epoch, j = divmod(k, per_epoch)
        rng = np.random.default_rng([plan.seed, plan.group, epoch])
        order = rng.permutation(len(rows))
        for pos in order:
            if j < per_block[pos]:
                take = min(per_block[pos] - j, end - k)
                perm = rng.permutation(rows[pos])
                out.append((pos, perm[j * plan.batch : (j + take) * plan.batch]))
                k += take
                if k == end:
                    break
                j = 0
            else:
                j -= per_block[pos]
                rng.permutation(rows[pos])  # keep the draws independent of j
    return out


def _local_round(model, state, plan, *blocks):
    """``plan``'s minibatch steps from ``state``'s weights and optimizer state;
    the new weights and state times the rows trained on."""
    est = model.local()
    for dst, src in zip([*est.coefs_, *est.intercepts_], state.arrays, strict=True):
        np.copyto(dst, src)
    est._optimizer = copy.deepcopy(state.optimizer)
    lr = est._optimizer.lr
    est.n_iter_, est.t_ = 0, state.t
    est.batch_size = plan.batch  # the worker's part of the batch (_fit_stochastic)
    loss, rows = 0.0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the client warns, as a local fit would
        for pos, idx in _segments(plan, [b.X.shape[0] for b in blocks]):
            b = blocks[pos]
            if b.weight == 0:
                continue  # every weight zero: no step (a local fit's adds nothing)
            est.loss_curve_, est.best_loss_, est._no_improvement_count = [], np.inf, 0
            w = None if b.w is None else b.w[idx]
            est.partial_fit(b.X[idx], b.y[idx], sample_weight=w)
            est._optimizer.lr = lr  # the schedule runs on the client
            loss += float(est.loss_) * idx.size
            rows += idx.size
    if not rows:  # every block of this round weighted zero
        return _Sum(np.zeros(0), 0.0, 0.0)
    vector = _flatten(est, est._optimizer) * rows
    return _Sum(vector, loss, float(rows), float(est._optimizer.t) * rows)


@dataclass
class _State:
    arrays: list
    optimizer: object
    t: int


def _slot_names(optimizer):
    return [(n, s) for n in sorted(optimizer.state) for s in optimizer.slots]


def _flatten(est, optimizer):
    parts = [a.reshape(-1) for a in [*est.coefs_, *est.intercepts_]]
    parts += [optimizer.state[n][s] for n, s in _slot_names(optimizer)]
    return np.concatenate(parts).astype(np.float64)


def _unflatten(est, optimizer, vector, names):
    lo = 0
    for a in [*est.coefs_, *est.intercepts_]:
        np.copyto(a, vector[lo : lo + a.size].reshape(a.shape), casting="unsafe")
        lo += a.size
    dtype = est.coefs_[0].dtype
    params, _ = est._network().parameters()
    for n, s in names:
        size = params[n].size
        optimizer.state.setdefault(n, {})[s] = vector[lo : lo + size].astype(dtype)
        lo += size


def _fit_stochastic(est, model, data, sync_every):
    stochastic._ensure_optimizer(est, incremental=False)
    val = _validation_groups(est, data)
    train = [[i for i in g if i not in val] for g in data.groups]
    train = [(g, members) for g, members in enumerate(train) if members]
    n_train = sum(data.rows[i] for _, members in train for i in members)
    # the estimator's batch is shared by the workers (each takes its part, at least
    # a row): an epoch takes as many averaged steps as a local fit's, not fewer
    # (with the whole batch on each worker, n workers halved, thirded... the
    # updates an epoch makes, and local SGD lagged a local fit by its epochs)
    batch = max(1, -(-stochastic._batch_size(est, n_train) // len(train)))
    steps_per_epoch = {
        g: sum(-(-data.rows[i] // batch) for i in members) for g, members in train
    }
    longest = max(steps_per_epoch.values())
    # an epoch is one pass over every worker's blocks: rounds of sync_every steps
    # (the last one shorter), each worker stopping at the end of its own pass
    step = longest if sync_every is None else min(sync_every, longest)
    rounds = -(-longest // step)
    seed = check_random_state(est.random_state).randint(2**31)
    est.n_iter_ = 0
    for epoch in range(est.max_iter):
        loss = rows = 0.0
        for r in range(rounds):
            spans = {}
            for g, _ in train:
                first = epoch * steps_per_epoch[g]
                start = first + r * step
                end = min(start + step, first + steps_per_epoch[g])
                if start < end:
                    spans[g] = (start, end)
            total = _round(est, model, data, train, spans, seed, batch)
            loss += total.loss
            rows += total.weight
        if not all(np.isfinite(a).all() for a in [*est.coefs_, *est.intercepts_]):
            raise ValueError(
                f"{stochastic.NON_FINITE_WEIGHTS} Training stopped in iteration "
                f"{est.n_iter_ + 1}."
            )
        est.n_iter_ += 1
        est.loss_ = np.float64(loss / rows)
        est.t_ += n_train
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        _no_improvement(est, model, data, val)
        est._optimizer.epoch_end(est.n_iter_ - 1, est.t_, est.loss_)
        if stochastic._stopping(est):
            break
        if est.n_iter_ == est.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
    if est.early_stopping:
        for dst, src in zip(est.coefs_, est._best_coefs, strict=True):
            np.copyto(dst, src)
        for dst, src in zip(est.intercepts_, est._best_intercepts, strict=True):
            np.copyto(dst, src)


def _round(est, model, data, train, spans, seed, batch):
    """One round on every worker with steps in it (``spans``: group -> the steps
    of its stream); the client's weights and optimizer state become the
    row-weighted means of theirs."""
    state = _State(
        [a.copy() for a in [*est.coefs_, *est.intercepts_]],
        est._optimizer,
        est.t_,
    )
    per_group = []
    for g, members in train:
        if g not in spans:
            continue
        plan = _Plan(seed, g, *spans[g], batch)
        per_group.append(
            [
                data.submit(
                    _local_round,
                    data.models[g],
                    state,
                    plan,
                    *[data.blocks[i] for i in members],
                    group=g,
                    key="round",
                )
            ]
        )
    total = data.client.gather(_reduce(data, per_group, "roundsum"))
    opt = est._optimizer
    if not opt.state:  # the first round made the slots
        params, _ = est._network().parameters()
        for name, p in params.items():
            opt.state[name] = {s: np.zeros(p.size, p.dtype) for s in opt.slots}
    _unflatten(est, opt, total.vector / total.weight, _slot_names(opt))
    opt.t = round(total.steps / total.weight)
    return total


def _validation_groups(est, data):
    """The held-out blocks with early stopping: the last blocks holding at least
    ``validation_fraction`` of the rows (at least one block left to train)."""
    if not est.early_stopping:
        return set()
    order = sorted(data.rows)
    need = est.validation_fraction * sum(data.rows.values())
    held, got = set(), 0
    for i in reversed(order[1:]):
        if got >= need:
            break
        held.add(i)
        got += data.rows[i]
    if got < 2 or got < need:
        raise ValueError(
            "The validation set is too small: early stopping holds out whole "
            f"blocks, and the last blocks of {len(order)} cannot hold "
            f"validation_fraction={est.validation_fraction} of the rows"
        )
    return held


def _block_score(model, arrays, block):
    """Sums for the validation score of ``block``: accuracy's weighted hits, or
    R^2's per output ``(weight, mean, squared deviations, squared errors)``."""
    est = model.local()
    for dst, src in zip([*est.coefs_, *est.intercepts_], arrays, strict=True):
        np.copyto(dst, src)
    pred = est.predict(block.X)
    w = np.ones(block.X.shape[0]) if block.w is None else np.asarray(block.w, float)
    if is_classifier(est):
        return w.sum(), accuracy_score(block.y, pred, sample_weight=w, normalize=False)
    y = np.asarray(block.y, float).reshape(len(w), -1)
    p = np.asarray(pred, float).reshape(len(w), -1)
    if not np.isfinite(p).all():
        return None
    mean = w @ y / w.sum()
    return w.sum(), mean, w @ (y - mean) ** 2, w @ (y - p) ** 2


def _validation_score(est, model, data, held):
    arrays = [a.copy() for a in [*est.coefs_, *est.intercepts_]]
    futures = [
        data.submit(
            _block_score, data.models[g], arrays, data.blocks[i], group=g, key="score"
        )
        for g, members in enumerate(data.groups)
        for i in members
        if i in held
    ]
    parts = data.client.gather(futures)
    if is_classifier(est):
        return sum(p[1] for p in parts) / sum(p[0] for p in parts)
    if any(p is None for p in parts):
        return np.nan
    total = sum(p[0] for p in parts)
    mean = sum(p[0] * p[1] for p in parts) / total
    dev = sum(p[2] + p[0] * (p[1] - mean) ** 2 for p in parts)
    err = sum(p[3] for p in parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(dev > 0, 1 - err / dev, np.where(err == 0, 1.0, 0.0))
    return float(np.mean(r2))


def _no_improvement(est, model, data, held):
    """scikit-learn's ``_update_no_improvement_count``, the validation score
    computed on the held-out blocks' workers."""
    if not est.early_stopping:
        est._update_no_improvement_count(False, None, None, None)
        return
    score = _validation_score(est, model, data, held)
    est.validation_scores_.append(score)
    if est.verbose:
        print(f"Validation score: {score:f}")
    if score < est.best_validation_score_ + est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    if score > est.best_validation_score_:
        est.best_validation_score_ = score
        est._best_coefs = [c.copy() for c in est.coefs_]
        est._best_intercepts = [i.copy() for i in est.intercepts_]
