"""Optimizers over the fused update kernels, learning-rate schedules, clipping.

An optimizer is made without parameters (``SGD(lr=0.1)``) and updates a model's
``params`` from its ``grads`` — two dicts mapping the same names to arrays — with
``step(params, grads)``. Its state (velocities, moments, step count, schedule) lives
in arrays and numbers: ``state_dict()`` / ``load_state_dict()`` save and restore it.
"""

import math
import numbers

import numpy as np

from . import kernels


def _positive(value, name, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")
    return float(value)


def _unit_interval(value, name):
    value = _positive(value, name, allow_zero=True)
    if value >= 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return value


# -- learning-rate schedules ---------------------------------------------------------
class Constant:
    """The initial learning rate throughout."""

    def epoch_end(self, lr, base_lr, epoch, samples_seen, loss):
        return lr

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class InverseScaling(Constant):
    r"""scikit-learn's ``'invscaling'``: :math:`\eta_0 / (t + 1)^{p}` after each epoch,
    with :math:`t` the number of samples seen."""

    def __init__(self, power_t=0.5):
        self.power_t = _positive(power_t, "power_t", allow_zero=True)

    def epoch_end(self, lr, base_lr, epoch, samples_seen, loss):
        return base_lr / (samples_seen + 1) ** self.power_t


class ReduceOnPlateau(Constant):
    """Divide the rate by ``1/factor`` after ``patience`` epochs whose loss did not
    improve on the best by ``tol`` (scikit-learn's ``'adaptive'``: factor 0.2)."""

    def __init__(self, factor=0.2, patience=2, tol=1e-4, min_lr=1e-6):
        self.factor = _unit_interval(factor, "factor")
        self.patience = int(patience)
        self.tol = _positive(tol, "tol", allow_zero=True)
        self.min_lr = _positive(min_lr, "min_lr", allow_zero=True)
        self.best = math.inf
        self.bad_epochs = 0

    def epoch_end(self, lr, base_lr, epoch, samples_seen, loss):
        if loss < self.best - self.tol:
            self.best = loss
            self.bad_epochs = 0
            return lr
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.bad_epochs = 0
            return max(lr * self.factor, self.min_lr)
        return lr

    def state_dict(self):
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])


class Cosine(Constant):
    r"""Cosine annealing over ``t_max`` epochs:
    :math:`\eta_{min} + \tfrac12(\eta_0 - \eta_{min})(1 + \cos(\pi\, e / t_{max}))`."""

    def __init__(self, t_max, min_lr=0.0):
        if (
            isinstance(t_max, bool)
            or not isinstance(t_max, numbers.Integral)
            or t_max < 1
        ):
            raise ValueError(f"t_max must be a positive integer, got {t_max!r}")
        self.t_max = int(t_max)
        self.min_lr = _positive(min_lr, "min_lr", allow_zero=True)

    def epoch_end(self, lr, base_lr, epoch, samples_seen, loss):
        e = min(epoch + 1, self.t_max)
        return self.min_lr + 0.5 * (base_lr - self.min_lr) * (
            1 + math.cos(math.pi * e / self.t_max)
        )


SCHEDULES = {
    "constant": Constant,
    "invscaling": InverseScaling,
    "adaptive": ReduceOnPlateau,
    "cosine": Cosine,
}


# -- optimizers ----------------------------------------------------------------------
class Optimizer:
    """Shared bookkeeping: schedule, clipping, per-parameter state, checks."""

    slots = ()  # names of the per-parameter state arrays

    def __init__(self, lr, schedule=None, clip_norm=None):
        self.base_lr = _positive(lr, "lr")
        self.lr = self.base_lr
        self.schedule = Constant() if schedule is None else schedule
        if isinstance(self.schedule, str):
            if self.schedule not in SCHEDULES or self.schedule == "cosine":
                raise ValueError(
                    f"schedule must be a schedule object or one of "
                    f"{sorted(set(SCHEDULES) - {'cosine'})}, got {schedule!r}"
                )
            self.schedule = SCHEDULES[self.schedule]()
        self.clip_norm = (
            None if clip_norm is None else _positive(clip_norm, "clip_norm")
        )
        self.t = 0  # update steps taken
        self.weight_decay = 0.0
        self.state = {}  # param name -> {slot: array}

    #: the compiled epoch's update kernel of this optimizer ("adam", "sgd"), or
    #: None: no compiled form
    compiled_update = None

    def compiled_form(self):
        """The name of this optimizer's update in the compiled epoch
        (``fastnet._runtime.mlp``), or None where it has none there (its own weight
        decay, decoupled decay, clipping): the epoch then takes the module path."""
        if self.weight_decay or self.clip_norm or getattr(self, "decoupled", False):
            return None
        return self.compiled_update

    def step(self, params, grads, weight_decay=None):
        """Update every array of ``params`` in place from ``grads`` (same keys).

        ``weight_decay``: optional per-parameter L2 coefficients (name -> float) that
        replace the optimizer's own for this step (scikit-learn's MLP decays weights
        but not intercepts, by ``alpha / batch size``).
        """
        if params.keys() != grads.keys():
            raise ValueError(
                f"params and grads name different arrays: {sorted(params)} vs "
                f"{sorted(grads)}"
            )
        for name, p in params.items():
            self._check(name, p, grads[name])
        if self.clip_norm is not None:
            self._clip(grads)
        self.t += 1
        for name, p in params.items():
            l2 = self.weight_decay
            if weight_decay is not None:
                l2 = weight_decay.get(name, 0.0)
            self._update(
                p.reshape(-1), grads[name].reshape(-1), self._slots(name, p), l2
            )

    @property
    def learning_rate(self):
        """scikit-learn's name for the current rate: its MLP optimizers'
        ``learning_rate`` attribute, which code in the wild reads and sets."""
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value):
        self.lr = float(value)

    def epoch_end(self, epoch, samples_seen, loss):
        """Advance the learning-rate schedule after an epoch."""
        self.lr = self.schedule.epoch_end(
            self.lr, self.base_lr, epoch, samples_seen, loss
        )

    def _check(self, name, p, g):
        ok = (
            isinstance(p, np.ndarray)
            and isinstance(g, np.ndarray)
            and p.dtype in (np.float32, np.float64)
            and g.dtype == p.dtype
            and g.shape == p.shape
            and p.flags.c_contiguous
            and g.flags.c_contiguous
            and p.flags.writeable
        )
        if not ok:
            raise ValueError(
                f"parameter {name!r} and its gradient must be C-contiguous float "
                f"arrays of one dtype and shape; got {getattr(p, 'dtype', type(p))}"
                f"{getattr(p, 'shape', '')} and {getattr(g, 'dtype', type(g))}"
                f"{getattr(g, 'shape', '')}"
            )

    def _slots(self, name, p):
        st = self.state.get(name)
        if st is None or any(
            a.shape != (p.size,) or a.dtype != p.dtype for a in st.values()
        ):
            st = self.state[name] = {s: np.zeros(p.size, p.dtype) for s in self.slots}
        return st

    def _clip(self, grads):
        total = math.sqrt(
            sum(kernels.sum_squares(g.reshape(-1)) for g in grads.values())
        )
        if total > self.clip_norm:
            factor = self.clip_norm / total
            for g in grads.values():
                kernels.scale_inplace(g.reshape(-1), g.dtype.type(factor))

    def state_dict(self):
        """Numbers and arrays that restore this optimizer exactly."""
        return {
            "t": self.t,
            "lr": self.lr,
            "schedule": self.schedule.state_dict(),
            "slots": {n: dict(st) for n, st in self.state.items()},
        }

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self.lr = float(state["lr"])
        self.schedule.load_state_dict(state["schedule"])
        self.state = {
            n: {s: np.array(a, copy=True) for s, a in st.items()}
            for n, st in state["slots"].items()
        }


class SGD(Optimizer):
    r"""Stochastic gradient descent with (Nesterov) momentum and L2 weight decay.

    :math:`v \leftarrow \mu v - \eta (g + \lambda\theta)`, :math:`\theta \leftarrow
    \theta + v` (Nesterov: :math:`\theta + \mu v - \eta g`), scikit-learn's form.
    """

    compiled_update = "sgd"

    def __init__(
        self,
        lr=0.01,
        momentum=0.0,
        nesterov=False,
        weight_decay=0.0,
        schedule=None,
        clip_norm=None,
    ):
        super().__init__(lr, schedule, clip_norm)
        self.momentum = _unit_interval(momentum, "momentum")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self.weight_decay = _positive(weight_decay, "weight_decay", allow_zero=True)
        self.slots = ("velocity",) if self.momentum else ()
        self._empty = {}

    def _update(self, p, g, st, l2):
        dt = p.dtype.type
        velocity = st.get("velocity")
        if velocity is None:
            velocity = self._empty.setdefault(p.dtype, np.empty(0, p.dtype))
        kernel = kernels.pick(kernels.sgd_update, p.size)
        kernel(
            p,
            g,
            velocity,
            dt(self.lr),
            dt(self.momentum),
            self.nesterov,
            dt(l2),
        )


class Adam(Optimizer):
    r"""Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``;
    ``weight_decay`` adds :math:`\lambda\theta` to the gradient (L2).

    ``eps_placement="sklearn"`` puts :math:`\epsilon` outside the bias correction as
    scikit-learn's MLP does (the estimators use it to reproduce scikit-learn).
    """

    slots = ("m", "v")
    decoupled = False
    compiled_update = "adam"

    def __init__(
        self,
        lr=0.001,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        schedule=None,
        clip_norm=None,
        eps_placement="torch",
    ):
        super().__init__(lr, schedule, clip_norm)
        self.beta1 = _unit_interval(beta1, "beta1")
        self.beta2 = _unit_interval(beta2, "beta2")
        self.eps = _positive(eps, "eps")
        self.weight_decay = _positive(weight_decay, "weight_decay", allow_zero=True)
        if eps_placement not in ("torch", "sklearn"):
            raise ValueError(
                f"eps_placement must be 'torch' or 'sklearn', got {eps_placement!r}"
            )
        self.eps_placement = eps_placement

    @property
    def learning_rate(self):
        r"""The last update's bias-corrected step size
        :math:`\eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)` (:math:`\eta` before the first),
        as scikit-learn's ``AdamOptimizer.learning_rate``; setting it sets ``lr``."""
        if self.t == 0:
            return self.lr
        return self.lr * math.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)

    @learning_rate.setter
    def learning_rate(self, value):
        self.lr = float(value)

    def _update(self, p, g, st, l2):
        dt = p.dtype.type
        correction = math.sqrt(1 - self.beta2**self.t)
        step_size = self.lr * correction / (1 - self.beta1**self.t)
        eps = self.eps * correction if self.eps_placement == "torch" else self.eps
        if self.decoupled:
            l2, decay = 0.0, 1.0 - self.lr * l2
        else:
            decay = 1.0
        kernel = kernels.pick(kernels.adam_update, p.size)
        kernel(
            p,
            g,
            st["m"],
            st["v"],
            dt(step_size),
            dt(self.beta1),
            dt(self.beta2),
            dt(eps),
            dt(l2),
            dt(decay),
        )


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter), as
    ``torch.optim.AdamW``: :math:`\theta \leftarrow (1 - \eta\lambda)\theta - \ldots`.
    """

    decoupled = True

    def __init__(
        self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, **kw
    ):
        super().__init__(lr, beta1, beta2, eps, weight_decay, **kw)
