"""Which models have an ONNX form: the one rule that :func:`fastnet.to_onnx` applies
and ``fastnet info`` reports, importable without the ``onnx`` extra."""

from .nn.activations import Activation
from .nn.dropout import Dropout
from .nn.graph import Graph
from .nn.linear import Linear
from .nn.softmax import Softmax

#: the modules a ``Sequential`` may hold to be exported (``Dropout``: the identity)
EXPORTED_MODULES = (Linear, Activation, Softmax, Dropout)


def refusal(model):
    """Why ``model`` has no ONNX form, or None where it has one."""
    if isinstance(model, Graph):
        return (
            "a Graph has no ONNX form (fastnet export takes the estimators, "
            "Sequential models and the models fastnet train writes)"
        )
    for i, module in enumerate(getattr(model, "modules", ())):
        if not isinstance(module, EXPORTED_MODULES):
            return (
                f"module {i} ({type(module).__name__}) has no ONNX form: export "
                "takes Linear, the activations, Softmax and Dropout"
            )
    if hasattr(model, "modules") and not any(
        isinstance(m, Linear) for m in model.modules
    ):
        return (
            "a Sequential needs a Linear layer to be exported (its input width "
            "and dtype come from the first one)"
        )
    return None
