"""``Graph``: an EdF-style computation graph with fan-out and learned parameter nodes.

Nodes are kept in creation order, which is a topological order (a node can only use
nodes made before it). ``forward`` evaluates them in that order; ``backward`` visits
them in reverse and **sums the gradients of a node that feeds several nodes** — the
chain rule ``dl/dx = Σ_consumers dl/dy · ∂y/∂x`` (seed 004's
``x.grad = u.grad (y.grad ∂g/∂x + z.grad ∂h/∂x)``).
"""

import numpy as np

from .._runtime.checks import as_float_array, check_shape
from .base import Module
from .sequential import _check_module


class Node:
    """A value in a graph: an input, a learned parameter, or a module's output.

    ``value`` is set by ``forward`` (or, for parameters, by you); ``grad`` by
    ``backward`` (``None`` where no gradient reaches the node).
    """

    def __init__(self, graph, name, kind, module=None, inputs=()):
        self.graph = graph
        self.name = name
        self.kind = kind  # "input", "param" or "op"
        self.module = module
        self.inputs = tuple(inputs)
        self.value = None
        self.grad = None

    def __getstate__(self):
        # a pickle keeps parameter values; inputs and outputs are the last call's
        state = self.__dict__.copy()
        if self.kind != "param":
            state.update(value=None, grad=None)
        return state

    def __repr__(self):
        return f"Node({self.name!r}, {self.kind})"


class Graph(Module):
    """Build with :meth:`input`, :meth:`param` and :meth:`add`; run with
    ``forward(**inputs)`` and ``backward(dout)``.

    ``params`` / ``grads``: parameter nodes by name plus every module's parameters as
    ``"<node name>.<param name>"`` — the same arrays, so optimizers update them.
    """

    _transient = ("_tangents",)

    def __init__(self):
        super().__init__()
        self.nodes = []
        self._names = set()
        self._tangents = None

    # -- building --------------------------------------------------------------
    def input(self, name):
        """A named input, given to :meth:`forward` as a keyword argument."""
        return self._new(Node(self, self._unique(name), "input"))

    def param(self, name, array):
        """A learned parameter node; ``node.value`` is the array (float32/float64)."""
        node = Node(self, self._unique(name), "param")
        value = as_float_array(array, f"param {name!r}")
        node.value = (
            value.copy() if value is array or not value.flags.writeable else value
        )
        node.grad = np.zeros_like(node.value)
        return self._new(node)

    def add(self, module, *inputs, name=None):
        """A node computing ``module.forward(*(n.value for n in inputs))``."""
        _check_module(module, "Graph.add module")
        if not inputs:
            raise ValueError("Graph.add needs at least one input node")
        for n in inputs:
            if not isinstance(n, Node) or n.graph is not self:
                raise ValueError(f"Graph.add input {n!r} is not a node of this graph")
        if any(n.module is module for n in self.nodes):
            raise ValueError(
                f"{module!r} is already in this graph: a module keeps the state of one "
                "call for its backward, so use a new module for each use"
            )
        name = self._unique(name or f"{type(module).__name__.lower()}{len(self.nodes)}")
        return self._new(Node(self, name, "op", module, inputs))

    def _unique(self, name):
        if not isinstance(name, str) or not name:
            raise ValueError(f"node names must be non-empty strings, got {name!r}")
        if name in self._names:
            raise ValueError(f"a node named {name!r} already exists in this graph")
        return name

    def _new(self, node):
        self._names.add(node.name)
        self.nodes.append(node)
        return node

    # -- parameters --------------------------------------------------------------
    @property
    def params(self):
        return self._joined("value", "params")

    @params.setter
    def params(self, value):
        pass

    @property
    def grads(self):
        return self._joined("grad", "grads")

    @grads.setter
    def grads(self, value):
        pass

    def _joined(self, node_attr, module_attr):
        out = {}
        for n in self.nodes:
            if n.kind == "param":
                out[n.name] = getattr(n, node_attr)
            elif n.kind == "op":
                for pname, arr in getattr(n.module, module_attr, {}).items():
                    out[f"{n.name}.{pname}"] = arr
        return out

    def children(self):
        return [n.module for n in self.nodes if n.kind == "op"]

    @property
    def input_names(self):
        return [n.name for n in self.nodes if n.kind == "input"]

    # -- running -----------------------------------------------------------------
    def forward(self, *args, train=True, **inputs):
        """Evaluate every node; return the last node's value.

        Inputs are keyword arguments by name; a graph with one input also takes it
        positionally (so ``Trainer`` can drive a graph like any module).
        """
        names = self.input_names
        if args:
            if len(args) != 1 or len(names) != 1 or inputs:
                raise TypeError(
                    "pass graph inputs by name: forward("
                    + ", ".join(f"{n}=..." for n in names)
                    + ")"
                )
            inputs = {names[0]: args[0]}
        missing = [n for n in names if n not in inputs]
        unknown = [k for k in inputs if k not in names]
        if missing or unknown:
            raise ValueError(
                f"Graph.forward inputs: missing {missing}, unknown {unknown}; "
                f"the graph's inputs are {names}"
            )
        if not self.nodes or self.nodes[-1].kind != "op":
            raise ValueError("the graph's last node must be a module's output")
        for node in self.nodes:
            if node.kind == "input":
                node.value = inputs[node.name]
            elif node.kind == "op":
                node.value = node.module.forward(
                    *(n.value for n in node.inputs), train=train
                )
        return self.nodes[-1].value

    def backward(self, dout):
        """Propagate ``dout`` (the gradient of the last node's value) to every node.

        Fills parameter nodes' ``grad`` and every module's ``grads``; returns
        ``{input name: gradient}`` (``None`` for an input no gradient reaches).
        """
        last = self.nodes[-1] if self.nodes else None
        if last is None or last.value is None:
            raise RuntimeError("Graph.backward called before forward")
        value = np.asarray(last.value)
        dout = as_float_array(dout, "Graph output gradient", value.dtype)
        check_shape(dout, value.shape, "Graph output gradient")
        acc = {id(last): dout}
        owned = set()  # nodes whose gradient sits in a graph-owned buffer
        for node in reversed(self.nodes):
            g = acc.pop(id(node), None)
            if node.kind == "param":
                if g is None:
                    node.grad[...] = 0.0
                else:
                    np.copyto(node.grad, g, casting="same_kind")
                continue
            if node.kind == "input":
                node.grad = g
                continue
            node.grad = g
            if g is None:
                continue  # nothing downstream depends on this node
            dxs = node.module.backward(g)
            if len(node.inputs) == 1 and not isinstance(dxs, tuple):
                dxs = (dxs,)
            for src, dx in zip(node.inputs, dxs, strict=True):
                self._accumulate(acc, owned, src, dx)
        return {n.name: n.grad for n in self.nodes if n.kind == "input"}

    # -- second order ----------------------------------------------------------------
    def tangent_forward(self, *args, tparams, **tinputs):
        """Tangents of every node of the last ``forward``, in creation order: an
        input's from ``tinputs`` (absent or None: zero), a parameter node's from
        ``tparams[name]``, a module's by its ``tangent_forward``, with
        ``tparams["<node>.<name>"]`` for its parameters. Returns the last node's."""
        names = self.input_names
        if args:
            if len(args) != 1 or len(names) != 1 or tinputs:
                raise TypeError("pass graph input tangents by name")
            tinputs = {names[0]: args[0]}
        unknown = [k for k in tinputs if k not in names]
        if unknown:
            raise ValueError(f"Graph input tangents for unknown inputs {unknown}")
        last = self.nodes[-1] if self.nodes else None
        if last is None or last.value is None:
            raise RuntimeError("Graph.tangent_forward called before forward")
        self._tangents = tangents = {}
        for node in self.nodes:
            if node.kind == "input":
                t = tinputs.get(node.name)
            elif node.kind == "param":
                t = tparams[node.name]
            else:
                ins = [tangents.get(id(n)) for n in node.inputs]
                part = {
                    p: tparams[f"{node.name}.{p}"]
                    for p in getattr(node.module, "params", {})
                }
                t = node.module.tangent_forward(*ins, tparams=part)
            if t is not None:
                tangents[id(node)] = t
        return tangents.get(id(last))

    def tangent_backward(self, dy, ddy, hgrads, need_dx=True):
        """``backward(dy)`` and its tangent for ``ddy``, summed over fan-out as the
        gradients are: writes the tangent of each gradient into ``hgrads`` (by the
        names of ``grads``) and returns ``({input: dx}, {input: ddx})``. ``dy=None``
        keeps the Gauss-Newton terms only."""
        last = self.nodes[-1] if self.nodes else None
        if last is None or getattr(self, "_tangents", None) is None:
            raise RuntimeError("Graph.tangent_backward called before tangent_forward")
        value = np.asarray(last.value)
        if dy is not None:
            dy = as_float_array(dy, "Graph output gradient", value.dtype)
            check_shape(dy, value.shape, "Graph output gradient")
        ddy = as_float_array(ddy, "Graph output gradient tangent", value.dtype)
        check_shape(ddy, value.shape, "Graph output gradient tangent")
        acc, tacc = {id(last): dy}, {id(last): ddy}
        owned, towned = set(), set()
        dxs, ddxs = {}, {}
        for node in reversed(self.nodes):
            g = acc.pop(id(node), None)
            tg = tacc.pop(id(node), None)
            if node.kind == "param":
                out = hgrads[node.name]
                if tg is None:
                    out[...] = 0.0
                else:
                    np.copyto(out, tg, casting="same_kind")
                continue
            if node.kind == "input":
                dxs[node.name], ddxs[node.name] = g, tg
                continue
            part = {
                p: hgrads[f"{node.name}.{p}"] for p in getattr(node.module, "grads", {})
            }
            if g is None and tg is None:
                for arr in part.values():
                    arr[...] = 0.0  # nothing downstream depends on this node
                continue
            if tg is None:
                tg = np.zeros_like(np.asarray(node.value))
            needs = [n.kind != "input" or need_dx for n in node.inputs]
            dx, ddx = node.module.tangent_backward(
                g, tg, part, need_dx=needs if len(needs) > 1 else needs[0]
            )
            if len(node.inputs) == 1 and not isinstance(ddx, tuple):
                dx, ddx = (dx,), (ddx,)
            for src, d, dd in zip(node.inputs, dx, ddx, strict=True):
                if d is not None:
                    self._accumulate(acc, owned, src, d)
                if dd is not None:
                    self._accumulate(tacc, towned, src, dd, "tgrad")
        self._tangents = None
        return dxs, ddxs

    def _accumulate(self, acc, owned, src, dx, prefix="grad"):
        key = id(src)
        prev = acc.get(key)
        if prev is None:
            acc[key] = dx  # by reference: the producing module's buffer
            return
        if key not in owned:
            # A second consumer: sum into a buffer of the graph's own, so no
            # module's buffer is written to.
            buf = self._buffer(
                f"{prefix}:{src.name}", np.shape(prev), np.result_type(prev)
            )
            np.copyto(buf, prev)
            acc[key] = prev = buf
            owned.add(key)
        np.add(prev, dx, out=prev, casting="same_kind")

    def __repr__(self):
        return f"Graph({', '.join(n.name for n in self.nodes)})"
