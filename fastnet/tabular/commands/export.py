"""``fastnet export MODEL OUT``: a model file as an ONNX graph, written by
:func:`fastnet.onnx.to_onnx` (the ``onnx`` extra), and what ``info`` says of it."""

import importlib.util
import os

from ... import onnx_forms
from ..errors import CliError
from ..table import few

#: the packages of the ``onnx`` extra that an export imports
EXTRA = ("onnx", "skl2onnx")
INSTALL = "pip install 'fastnet[onnx]'"


def run(args):
    """``fastnet export``: check the files, load the model, write the graph."""
    from ... import model_files as io

    if not os.path.exists(args.model):
        raise CliError(f"no such file: {args.model}")
    _check_out(args.out, args.model)
    model = io.load(args.model)
    why = onnx_forms.refusal(model)
    if why:
        raise CliError(f"{args.model}: {why}")
    try:
        from ... import onnx as onnx_export
    except ImportError as exc:
        cause = exc.__cause__ or exc
        raise CliError(
            f"fastnet export needs the onnx extra: {INSTALL} ({cause})"
        ) from None
    proto = onnx_export.to_onnx(model, path=args.out)
    inputs = [v.name for v in proto.graph.input]
    outputs = [v.name for v in proto.graph.output]
    print(
        f"exported {args.model} to {args.out}: {len(inputs)} "
        f"input{'s' if len(inputs) > 1 else ''} ({few(inputs)}), outputs "
        f"{', '.join(outputs)}"
    )
    return 0


def info_line(model, path):
    """``fastnet info``'s line on exporting ``model`` (read from ``path``)."""
    why = onnx_forms.refusal(model)
    if why:
        return f"none: {why}"
    line = f"fastnet export {path} OUT.onnx writes it as an ONNX graph"
    missing = [p for p in EXTRA if importlib.util.find_spec(p) is None]
    return line + (f" (after {INSTALL})" if missing else "")


def _check_out(out, model):
    """Refuse an output that cannot be written or that would destroy a model
    file."""
    path = os.path.abspath(out)
    if os.path.isdir(path):
        raise CliError(f"{out} is a folder")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise CliError(f"{out}: no such folder {folder}")
    if os.path.exists(path):
        from ..._runtime.atomic import is_npz

        if os.path.samefile(path, model) or is_npz(path):
            raise CliError(
                f"{out} is a model file: fastnet export will not write over it"
            )
