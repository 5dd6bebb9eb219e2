"""What ``fastnet train`` checks before it reads or trains anything: that its
outputs can be written and destroy nothing, and that a ``--resume`` run changes
none of the checkpoint's settings."""

import os

from ..errors import CliError

#: train options a --resume run takes; every other one is the checkpoint's
RESUME_OPTIONS = {
    "data",
    "sep",
    "header",
    "checkpoint",
    "resume",
    "epochs",
    "out",
    "plot",
}


def check_outputs(args):
    """Refuse, before training, outputs that cannot be written or that would
    destroy something: the data file, the checkpoint, a file that is not a model."""
    outs = [
        (args.out, "--out"),
        (args.plot, "--plot"),
        (args.checkpoint, "--checkpoint"),
    ]
    for path, what in outs:
        if path:
            _check_writable(path, what)
    data = os.path.abspath(args.data) if args.data else None
    for path, what in outs:
        if path and os.path.abspath(path) == data:
            raise CliError(f"{what} {path} is the data file: it would be overwritten")
    if args.checkpoint and os.path.abspath(args.checkpoint) == os.path.abspath(
        args.out
    ):
        raise CliError("--checkpoint and --out must be different files")
    from ..._runtime.atomic import is_npz

    for path, what in ((args.out, "--out"), (args.checkpoint, "--checkpoint")):
        if path and os.path.isfile(path) and not is_npz(path):
            raise CliError(
                f"{what} {path} exists and is not a model file: fastnet will not "
                "overwrite it"
            )


def check_resume(args):
    """A checkpoint to resume from, and no option given that it fixes."""
    if not args.checkpoint:
        raise CliError("--resume needs --checkpoint PATH of an earlier run")
    if not os.path.exists(args.checkpoint):
        raise CliError(f"--resume: no such checkpoint {args.checkpoint}")
    fixed = sorted(set(vars(args.given)) - RESUME_OPTIONS - {"command"})
    if fixed:
        flags = ", ".join("--" + f.replace("_", "-") for f in fixed)
        raise CliError(
            f"--resume continues the checkpoint's run with its own settings: {flags} "
            "cannot change (train anew without --resume to change them)"
        )


def _check_writable(path, what):
    """Refuse, before any training, an output path that cannot be written."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise CliError(f"{what} {path} is a folder")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise CliError(f"{what} {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK) or (
        os.path.exists(path) and not os.access(path, os.W_OK)
    ):
        raise CliError(f"{what} {path}: permission denied")
