"""``Sequential``: modules applied in order, gradients in reverse."""

from .base import Module


def _check_module(module, where):
    if not (callable(getattr(module, "forward", None)) and hasattr(module, "backward")):
        raise TypeError(
            f"{where} must be a module with forward and backward, got "
            f"{type(module).__name__}"
        )
    return module


def _part(arrays, i, module, attr):
    """Module ``i``'s entries of a ``"<index>.<name>"`` dictionary, by its names."""
    return {name: arrays[f"{i}.{name}"] for name in getattr(module, attr, {})}


class Sequential(Module):
    """``forward`` runs ``x`` through every module in turn; ``backward`` runs ``dy``
    back in reverse order, each module filling its own ``grads``.

    ``params`` / ``grads`` join the modules' dictionaries with names
    ``"<index>.<name>"`` (``"0.W"``, ``"0.b"``, ``"2.W"``, ...): the same arrays,
    so an optimizer updating them updates the modules.
    """

    def __init__(self, *modules):
        super().__init__()
        if not modules:
            raise ValueError("Sequential needs at least one module")
        self.modules = [
            _check_module(m, f"Sequential item {i}") for i, m in enumerate(modules)
        ]

    @property
    def params(self):
        return self._joined("params")

    @params.setter
    def params(self, value):  # Module.__init__ sets it; the children own the arrays
        pass

    @property
    def grads(self):
        return self._joined("grads")

    @grads.setter
    def grads(self, value):
        pass

    def _joined(self, attr):
        return {
            f"{i}.{name}": arr
            for i, m in enumerate(self.modules)
            for name, arr in getattr(m, attr, {}).items()
        }

    def forward(self, x, train=True):
        for m in self.modules:
            x = m.forward(x, train=train)
        return x

    def backward(self, dy):
        for m in reversed(self.modules):
            dy = m.backward(dy)
        return dy

    def tangent_forward(self, tx, *, tparams):
        """The tangent of the last ``forward``, through every module in turn;
        ``tparams`` uses this model's ``"<index>.<name>"`` parameter names."""
        for i, m in enumerate(self.modules):
            tx = m.tangent_forward(tx, tparams=_part(tparams, i, m, "params"))
        return tx

    def tangent_backward(self, dy, ddy, hgrads, need_dx=True):
        """``(dx, ddx)`` back through the modules in reverse, each writing the
        tangents of its gradients into ``hgrads["<index>.<name>"]``."""
        for i in range(len(self.modules) - 1, -1, -1):
            m = self.modules[i]
            part = _part(hgrads, i, m, "grads")
            dy, ddy = m.tangent_backward(dy, ddy, part, need_dx=need_dx or i > 0)
        return dy, ddy

    def children(self):
        """The modules, in order (for code that walks a model, like checkpoints)."""
        return list(self.modules)

    def __len__(self):
        return len(self.modules)

    def __getitem__(self, i):
        return self.modules[i]

    def __iter__(self):
        return iter(self.modules)

    def __repr__(self):
        inner = ", ".join(repr(m) for m in self.modules)
        return f"Sequential({inner})"
